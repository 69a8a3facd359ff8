/**
 * HTML built only through the {@link html} tagged template: every interpolated value is escaped unless it
 * is itself {@link SafeHtml} made by this module, so a ledger string (commit subject, actor, reason) can
 * only ever become text. There is no other way to produce SafeHtml.
 */

const SAFE = Symbol('safe-html');

/** A fragment of markup produced by {@link html} (or {@link raw} for the module's own constants). */
export interface SafeHtml {
  readonly [SAFE]: true;
  readonly value: string;
}

const safe = (value: string): SafeHtml => ({ [SAFE]: true, value });

/** True for fragments made by this module. */
export function isSafeHtml(v: unknown): v is SafeHtml {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[SAFE] === true;
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/**
 * Escapes text for an HTML text node or a quoted attribute value (HTML Living Standard, "escaping a
 * string"): `& < > " ' \``. Control characters other than tab/newline are dropped (they are never
 * meaningful in a ledger string and some are parse errors).
 */
export function escapeHtml(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '').replace(/[&<>"'`]/g, (c) => ENTITIES[c]!);
}

type Part = SafeHtml | string | number | boolean | null | undefined | readonly Part[];

function render(v: Part): string {
  if (v === null || v === undefined || v === false) return '';
  if (Array.isArray(v)) return v.map(render).join('');
  if (isSafeHtml(v)) return v.value;
  return escapeHtml(String(v));
}

/** Tagged template: literal parts are markup, interpolations are escaped (arrays joined, null/false/undefined empty). */
export function html(strings: TemplateStringsArray, ...values: Part[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return safe(out);
}

/** Markup this module's callers own (constants such as the CSS link); never pass ledger data here. */
export function raw(markup: string): SafeHtml {
  return safe(markup);
}

/**
 * A URL for an `href`: `https:`/`http:` URLs and scheme-less (relative) URLs pass; any other scheme
 * (`javascript:`, `data:`) becomes `#`. The result is still escaped by {@link html} as an attribute value.
 */
export function safeUrl(url: string): string {
  if (/^https?:\/\//i.test(url)) return url;
  return /^[^/?#]*:/.test(url) ? '#' : url;
}
