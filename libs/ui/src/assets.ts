/**
 * The dashboard's only assets, served by the command itself and copied into a static export (no CDN,
 * no framework). Kept as strings so the bundled CLI carries them.
 */

export const CSS = `:root{color-scheme:light;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--ok:#116329;--okbg:#dafbe1;--bad:#a40e26;--badbg:#ffebe9;--warn:#7d4e00;--warnbg:#fff8c5;--accent:#0550ae}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:#fff}
header{display:flex;gap:1rem;align-items:baseline;justify-content:space-between;padding:.5rem 1rem;border-bottom:1px solid var(--line);background:#f6f8fa}
header nav a{font-weight:600;color:var(--fg);text-decoration:none}
header .store{margin:0;color:var(--muted)}
main{padding:1rem}
footer{padding:.5rem 1rem;color:var(--muted);border-top:1px solid var(--line)}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,summary:focus-visible{outline:3px solid #0969da;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:.5rem;background:#fff;padding:.25rem .5rem;z-index:1}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
h1{font-size:1.4rem;margin:.25rem 0 1rem}h2{font-size:1.1rem;margin:1.25rem 0 .5rem}
table{border-collapse:collapse;margin:.5rem 0;min-width:30rem}
caption{text-align:left;color:var(--muted);padding:.25rem 0}
th,td{border:1px solid var(--line);padding:.4rem .5rem;vertical-align:top;text-align:left}
thead th{background:#f6f8fa}
.matrix td{min-width:13rem}
.matrix td.differs{background:#fffbea}
.matrix p{margin:.2rem 0}
.version{font-family:ui-monospace,monospace;font-weight:600}
code{font-family:ui-monospace,SFMono-Regular,monospace;font-size:.92em;word-break:break-all}
.badge{display:inline-block;border-radius:1rem;padding:0 .5rem;font-size:.85em;border:1px solid transparent}
.badge.ok{color:var(--ok);background:var(--okbg)}.badge.bad{color:var(--bad);background:var(--badbg)}.badge.warn{color:var(--warn);background:var(--warnbg)}.badge.muted{color:var(--muted);background:#eaeef2}
.muted{color:var(--muted)}
.drift{color:var(--warn)}
.cell-error,.page-error,.error-text{color:var(--bad)}
.page-error{background:var(--badbg);padding:.5rem;border-radius:4px}
.filter,.picker,.login{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap;margin:.5rem 0 1rem}
input,select,button{font:inherit;padding:.25rem .4rem}
button{cursor:pointer;border:1px solid var(--line);background:#f6f8fa;border-radius:4px}
details summary{cursor:pointer;color:var(--accent)}
.cmd{display:flex;gap:.25rem;align-items:center;margin:.2rem 0}
.cmd code{background:#f6f8fa;padding:.1rem .3rem}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
.facts dt{color:var(--muted)}.facts dd{margin:0}
.why .reason{display:block}
.detail{color:var(--muted);font-size:.9em}
.commits li{margin:.2rem 0}
.change-added td:nth-child(2){color:var(--ok)}.change-removed td:nth-child(2){color:var(--bad)}
[hidden]{display:none!important}
`;

/**
 * Progressive enhancement, identical served and static: applies the pipeline filter from the URL
 * (`?project=<substring>&env=<name>`, so a filtered view is a shareable link), copy buttons, the diff
 * picker's navigation, and (served only, `data-live`) polls the ledger fingerprint and reloads the page
 * when a pointer moved. Reads everything it shows from the DOM: no string is ever turned into markup.
 */
export const JS = `(function () {
  'use strict';
  var body = document.body;
  var params = new URLSearchParams(location.search);
  var form = document.querySelector('form.filter');
  if (form) {
    var project = (params.get('project') || '').trim();
    var env = (params.get('env') || '').trim();
    form.elements.project.value = project;
    form.elements.env.value = env;
    var needle = project.toLowerCase();
    document.querySelectorAll('tr[data-project]').forEach(function (tr) {
      tr.hidden = needle !== '' && tr.getAttribute('data-project').toLowerCase().indexOf(needle) < 0;
    });
    document.querySelectorAll('table.matrix').forEach(function (table) {
      var has = !env || table.querySelector('th[data-env="' + CSS.escape(env) + '"]');
      table.closest('section').hidden = !has;
      table.querySelectorAll('[data-env]').forEach(function (c) {
        c.hidden = env !== '' && c.getAttribute('data-env') !== env;
      });
    });
  }
  document.querySelectorAll('button.copy').forEach(function (b) {
    b.addEventListener('click', function () {
      var text = b.getAttribute('data-copy');
      var done = function () { b.textContent = 'Copied'; setTimeout(function () { b.textContent = 'Copy'; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, function () {});
      else { var r = document.createRange(); r.selectNodeContents(b.previousElementSibling); var s = getSelection(); s.removeAllRanges(); s.addRange(r); }
    });
  });
  document.querySelectorAll('form.picker').forEach(function (f) {
    f.addEventListener('submit', function (ev) {
      var from = f.elements.from.value, to = f.elements.to.value;
      if (!/^[0-9]+$/.test(from) || !/^[0-9]+$/.test(to)) return;
      ev.preventDefault();
      location.href = f.getAttribute('data-diff-base') + from + '-' + to + '.html';
    });
  });
  var live = body.getAttribute('data-live');
  if (live) {
    var seen = null, status = document.getElementById('live');
    var poll = function () {
      fetch(live, { cache: 'no-store', credentials: 'same-origin' }).then(function (r) { return r.ok ? r.json() : null; }).then(function (j) {
        if (!j) return;
        if (seen === null) seen = j.fingerprint;
        else if (j.fingerprint !== seen) { if (status) status.textContent = 'ledger changed: reloading'; location.reload(); return; }
        setTimeout(poll, 2000);
      }, function () { if (status) status.textContent = 'live: server unreachable, retrying'; setTimeout(poll, 5000); });
    };
    poll();
  }
})();
`;
