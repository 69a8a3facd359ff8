import { describe, expect, it } from 'vitest';
import { escapeHtml, html, raw, safeUrl } from './html';

/** Deterministic generator of hostile strings: markup, quotes, entities, backticks, controls, unicode. */
function* hostileStrings(n: number): Generator<string> {
  const atoms = [
    '<',
    '>',
    '"',
    "'",
    '`',
    '&',
    '&amp;',
    '&#60;',
    '</td>',
    '<script>',
    '</script>',
    '"><img src=x onerror=alert(1)>',
    "'-alert(1)-'",
    'javascript:',
    '\u0000',
    '\u001b[31m',
    '\n',
    ' ',
    'é',
    '😀',
    'a',
    '=',
    '/',
    '<!--',
    ']]>',
    '{{x}}',
    '${x}',
  ];
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < n; i++) {
    let s = '';
    const len = 1 + Math.floor(rnd() * 12);
    for (let j = 0; j < len; j++) s += atoms[Math.floor(rnd() * atoms.length)];
    yield s;
  }
}

const unescape = (s: string) =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&#96;/g, '`')
    .replace(/&amp;/g, '&');
// eslint-disable-next-line no-control-regex
const withoutControls = (s: string) => s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '');

describe('html', () => {
  it('escapes every interpolation: no markup character survives, and the text round-trips', () => {
    for (const s of hostileStrings(2000)) {
      const text = html`<td>${s}</td>`.value.slice(4, -5);
      const attr = html`<a title="${s}">`.value.slice(10, -2);
      for (const out of [text, attr]) {
        expect(out).not.toMatch(/[<>"'`]/);
        expect(unescape(out)).toBe(withoutControls(s));
      }
    }
  });

  it('nests fragments without escaping them twice, joins arrays, drops null/undefined/false', () => {
    const inner = html`<b>${'<i>'}</b>`;
    expect(html`<p>${inner}${['a', '<', html`<br>`]}${null}${undefined}${false}${0}</p>`.value).toBe('<p><b>&lt;i&gt;</b>a&lt;<br>0</p>');
    expect(raw('<hr>').value).toBe('<hr>');
  });

  it('a look-alike object is not trusted markup', () => {
    const fake = { value: '<script>x</script>' } as unknown as string;
    expect(html`${fake}`.value).not.toContain('<script>');
  });

  it('safeUrl lets http(s) and relative links through and neutralises other schemes', () => {
    expect(safeUrl('https://github.com/a/b/actions/runs/1')).toBe('https://github.com/a/b/actions/runs/1');
    expect(safeUrl('../../version/x/1.html')).toBe('../../version/x/1.html');
    for (const bad of ['javascript:alert(1)', 'JaVaScRiPt:alert(1)', 'data:text/html,x', 'vbscript:x', ' javascript:x']) expect(safeUrl(bad)).toBe('#');
    expect(escapeHtml('a\u0000b')).toBe('ab');
  });
});
