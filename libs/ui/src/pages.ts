import { formatBytes, projectKey } from '@buildonce/store';
import type { HistoryEntry } from '@buildonce/ledger';
import { html, safeUrl, type SafeHtml } from './html';
import {
  cellKey,
  entryKind,
  runUrl,
  type DiffModel,
  type EntryKind,
  type HistoryModel,
  type PipelineCell,
  type PipelineModel,
  type VersionModel,
} from './model';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

/**
 * Server-rendered pages of the dashboard. Every page is a complete HTML document built through `html`
 * (everything interpolated is escaped), with links RELATIVE to the page so the same bytes work served
 * and as a static export. URL layout (identical in both):
 *
 *   index.html                              pipeline (projects × environments, previews)
 *   history/<projectKey>/<env>.html         one environment's history, newest first
 *   version/<projectKey>/<version>.html     one version: manifest, provenance, where it ran
 *   diff/<projectKey>/<from>-<to>.html      two versions: commits, files, facts
 *   assets/ui.css, assets/ui.js             the only assets (no CDN)
 */

/** Paths of the pages (relative to the site root, no leading `/`). */
export const paths = {
  pipeline: () => 'index.html',
  history: (project: ProjectName, env: EnvironmentName) => `history/${encodeURIComponent(projectKey(project))}/${encodeURIComponent(env)}.html`,
  version: (project: ProjectName, version: Version) => `version/${encodeURIComponent(projectKey(project))}/${encodeURIComponent(version)}.html`,
  diff: (project: ProjectName, from: string, to: string) =>
    `diff/${encodeURIComponent(projectKey(project))}/${encodeURIComponent(from)}-${encodeURIComponent(to)}.html`,
};

/** Page chrome options. */
export interface LayoutOptions {
  title: string;
  /** relative prefix from the page to the site root (`''`, `'../../'`) */
  root: string;
  storeUrl: string;
  generatedAt: Date;
  /** server mode: the fingerprint endpoint the pipeline page polls to refresh itself */
  live?: boolean;
}

/** A full HTML document around `body`. */
export function layout(o: LayoutOptions, body: SafeHtml): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title} · buildonce</title>
<link rel="stylesheet" href="${o.root}assets/ui.css">
<script src="${o.root}assets/ui.js" defer></script>
</head>
<body data-root="${o.root}"${o.live ? html` data-live="${o.root}api/fingerprint"` : ''}>
<a class="skip" href="#main">Skip to content</a>
<header>
<nav aria-label="Main"><a href="${o.root}index.html">buildonce · pipeline</a></nav>
<p class="store">store <code>${o.storeUrl}</code> · read-only</p>
</header>
<main id="main">
${body}
</main>
<footer><p>generated <time datetime="${o.generatedAt.toISOString()}">${iso(o.generatedAt.toISOString())}</time>${o.live ? html` · <span id="live" role="status" aria-live="polite">live: refreshes when the ledger changes</span>` : ' · static export'}</p></footer>
</body>
</html>
`.value;
}

// ------------------------------------------------------------------------------------------- formatting

const short = (v: string | null | undefined, n = 12) => (v ? v.slice(0, n) : '-');
const iso = (s: string) => s.replace('T', ' ').replace(/\.\d+Z$/, 'Z');

/** `5 s ago`, `3 min ago`, `2 h ago`, `4 d ago`. */
export function age(isoTime: string, now: Date): string {
  const s = Math.max(0, Math.round((now.getTime() - Date.parse(isoTime)) / 1000));
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** `1.2 s`, `350 ms`. */
export function duration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Signed byte delta: `+1.2 KiB`, `-300 B`, `±0 B`. */
export function signedBytes(delta: number): string {
  return delta === 0 ? '±0 B' : `${delta > 0 ? '+' : '-'}${formatBytes(Math.abs(delta))}`;
}

const KIND_LABEL: Record<EntryKind, string> = {
  succeeded: 'succeeded',
  failed: 'failed',
  'verification-failed': 'failed verification',
  interrupted: 'interrupted',
  rollback: 'rollback',
  'automatic-rollback': 'automatic rollback',
  'failed-rollback': 'failed rollback',
};

function verificationBadge(e: HistoryEntry): SafeHtml {
  const v = e.verification;
  if (!v) return html`<span class="badge muted">no checks</span>`;
  return html`<span class="badge ${v.passed ? 'ok' : 'bad'}">${v.passed ? 'verified' : 'verification failed'} (${v.kind})</span>`;
}

function provenanceBadge(e: HistoryEntry): SafeHtml {
  const p = e.artifact.provenance;
  const state = !p ? 'not recorded' : p.verified ? 'verified' : p.signed ? 'signed' : 'unsigned';
  const cls = state === 'verified' ? 'ok' : state === 'signed' ? 'muted' : 'warn';
  return html`<span class="badge ${cls}">provenance ${state}</span>`;
}

function copyable(label: string, command: string): SafeHtml {
  return html`<div class="cmd"><code>${command}</code><button type="button" class="copy" data-copy="${command}" aria-label="Copy: ${label}">Copy</button></div>`;
}

// ------------------------------------------------------------------------------------------- pipeline

function pipelineCell(m: PipelineModel, project: ProjectName, env: EnvironmentName, chain: boolean): SafeHtml {
  const cell: PipelineCell | undefined = m.cells.get(cellKey(project, env));
  const root = '';
  const histLink = html`<a href="${root}${paths.history(project, env)}">history<span class="sr"> of ${project} in ${env}</span></a>`;
  const commands = html`<details><summary>CLI<span class="sr"> commands for ${project} in ${env}</span></summary>${copyable(`promote ${project} to ${env}`, `npx nx run ${project}:promote --env=${env}`)}${copyable(`roll back ${project} in ${env}`, `npx nx run ${project}:rollback --env=${env} --reason="…"`)}</details>`;
  if (!cell) return html`<td data-env="${env}" class="empty"><span class="muted">not promoted</span>${commands}</td>`;
  if (cell.status === 'error')
    return html`<td data-env="${env}" class="error"><p class="cell-error" role="status">could not read: ${cell.message}</p>${histLink}</td>`;
  if (cell.status === 'none') return html`<td data-env="${env}" class="empty"><span class="muted">no successful release</span> ${histLink}${commands}</td>`;
  const e = cell.entry;
  const drift = chain ? m.drift.get(cellKey(project, env)) : undefined;
  const driftNote = drift
    ? html`<p class="drift"><span class="mark" aria-hidden="true">▲</span> ${drift.upstream} ${drift.ahead !== undefined ? `is ${drift.ahead} commit${drift.ahead === 1 ? '' : 's'} ahead` : 'runs another version'} · <a href="${root}${paths.diff(project, e.version, drift.upstreamVersion)}">diff<span class="sr"> ${env} to ${drift.upstream}</span></a></p>`
    : '';
  return html`<td data-env="${env}" class="current${drift ? ' differs' : ''}">
<a class="version" href="${root}${paths.version(project, e.version)}" title="${e.version}">${short(e.version, 10)}</a>${e.rollback ? html` <span class="badge warn">${e.automatic ? 'automatic rollback' : 'rollback'}</span>` : ''}
<p class="meta"><time datetime="${e.finishedAt}" title="${iso(e.finishedAt)}">${age(e.finishedAt, m.generatedAt)}</time> · <span class="who">${e.actor}</span></p>
<p class="verdicts">${verificationBadge(e)} ${provenanceBadge(e)}</p>
${driftNote}<p>${histLink}</p>${commands}
</td>`;
}

function matrix(m: PipelineModel, envs: EnvironmentName[], caption: string, chain: boolean): SafeHtml {
  return html`<table class="matrix">
<caption>${caption}</caption>
<thead><tr><th scope="col">Project</th>${envs.map((env) => html`<th scope="col" data-env="${env}">${env}</th>`)}</tr></thead>
<tbody>
${m.projects.map((p) => html`<tr data-project="${p}"><th scope="row">${p}</th>${envs.map((env) => pipelineCell(m, p, env, chain))}</tr>\n`)}
</tbody>
</table>`;
}

/** The pipeline (home) page: projects × chain environments, previews in their own section. */
export function pipelinePage(m: PipelineModel, o: { live?: boolean } = {}): string {
  const envOptions = [...m.chain, ...m.previews];
  const previewProjects = m.projects.filter((p) => m.previews.some((env) => m.cells.has(cellKey(p, env))));
  const body = html`<h1>Pipeline</h1>
<form class="filter" role="search" method="get" action="index.html" aria-label="Filter the pipeline">
<label for="f-project">Project</label> <input id="f-project" name="project" type="search" list="projects" autocomplete="off">
<datalist id="projects">${m.projects.map((p) => html`<option value="${p}"></option>`)}</datalist>
<label for="f-env">Environment</label> <select id="f-env" name="env"><option value="">all</option>${envOptions.map((e) => html`<option value="${e}">${e}</option>`)}</select>
<button type="submit">Filter</button> <a href="index.html">Clear</a>
</form>
${m.error ? html`<p class="page-error" role="alert">the store could not be listed: ${m.error}</p>` : ''}
${!m.error && !m.projects.length ? html`<p>No releases recorded yet in this store: promote something first (<code>npx nx run &lt;project&gt;:promote --env=${m.chain[0] ?? 'dev'}</code>).</p>` : ''}
${m.projects.length ? html`<section aria-labelledby="chain-h"><h2 id="chain-h">Environments</h2>${matrix(m, m.chain, 'Current release of every project in every environment, in chain order', true)}</section>` : ''}
${m.previews.length ? html`<section aria-labelledby="preview-h"><h2 id="preview-h">Previews</h2>${matrix({ ...m, projects: previewProjects }, m.previews, 'Current release of every pull-request preview environment', false)}</section>` : ''}`;
  return layout({ title: 'Pipeline', root: '', storeUrl: m.storeUrl, generatedAt: m.generatedAt, live: o.live }, body);
}

// -------------------------------------------------------------------------------------------- history

/** One environment's history, newest first. */
export function historyPage(m: HistoryModel, now: Date): string {
  const root = '../../';
  const row = (e: HistoryEntry) => {
    const kind = entryKind(e);
    const run = runUrl(m.repository, e.runId);
    const dur = Date.parse(e.finishedAt) - Date.parse(e.startedAt);
    const why = e.rollback ? (e.reason ?? 'no reason given') : e.reason;
    const v = e.verification;
    return html`<tr data-seq="${e.seq}" class="kind-${kind}">
<td>${e.seq}</td>
<td><span class="badge ${kind === 'succeeded' ? 'ok' : kind.includes('rollback') || kind === 'interrupted' ? 'warn' : 'bad'}">${KIND_LABEL[kind]}</span></td>
<td><a href="${root}${paths.version(m.project, e.version)}" title="${e.version}">${short(e.version, 10)}</a>${e.previousVersion && e.previousVersion !== e.version ? html` <a class="muted" href="${root}${paths.diff(m.project, e.previousVersion, e.version)}">diff<span class="sr"> ${e.previousVersion} to ${e.version}</span></a>` : ''}</td>
<td><code title="${e.commit ?? ''}">${short(e.commit)}</code></td>
<td class="who">${e.actor}</td>
<td>${run ? html`<a href="${safeUrl(run)}">${e.runId}</a>` : (e.runId ?? '-')}</td>
<td><time datetime="${e.finishedAt}" title="${iso(e.finishedAt)}">${age(e.finishedAt, now)}</time></td>
<td>${Number.isFinite(dur) ? duration(dur) : '-'}</td>
<td>${v ? html`<span class="badge ${v.passed ? 'ok' : 'bad'}">${v.passed ? 'passed' : 'failed'}</span> ${v.kind} ×${v.attempts} ${duration(v.durationMs)}<br><span class="detail">${v.detail}</span>` : html`<span class="muted">-</span>`}</td>
<td class="why">${why ? html`<span class="reason">${why}</span>` : ''}${e.error ? html`<span class="error-text">${e.error}</span>` : ''}</td>
</tr>`;
  };
  const body = html`<nav aria-label="Breadcrumb" class="crumbs"><a href="${root}index.html">Pipeline</a> › ${m.project} › ${m.env}</nav>
<h1>${m.project} in ${m.env}</h1>
${m.error ? html`<p class="page-error" role="alert">the history could not be read: ${m.error}</p>` : ''}
${
  m.entries.length
    ? diffPicker(
        m.project,
        m.entries.map((e) => e.version),
        root,
        [...new Set(m.entries.map((e) => e.version))][1],
        m.entries[0]?.version,
      )
    : ''
}
<table class="history">
<caption>Every deploy attempt, newest first (${m.entries.length})</caption>
<thead><tr><th scope="col">#</th><th scope="col">What</th><th scope="col">Version</th><th scope="col">Commit</th><th scope="col">Actor</th><th scope="col">Run</th><th scope="col">When</th><th scope="col">Duration</th><th scope="col">Verification</th><th scope="col">Reason / error</th></tr></thead>
<tbody>
${m.entries.map(row)}
</tbody>
</table>`;
  return layout({ title: `${m.project} in ${m.env}`, root, storeUrl: m.storeUrl, generatedAt: now }, body);
}

function diffPicker(project: ProjectName, versions: string[], root: string, from?: string, to?: string): SafeHtml {
  const uniq = [...new Set(versions)];
  const opts = (sel?: string) => uniq.map((v) => html`<option value="${v}"${v === sel ? ' selected' : ''}>${v}</option>`);
  return html`<form class="picker" method="get" action="${root}diff/${encodeURIComponent(projectKey(project))}/pick.html" data-diff-base="${root}diff/${encodeURIComponent(projectKey(project))}/" aria-label="Compare two versions">
<label for="d-from">From</label> <select id="d-from" name="from">${opts(from)}</select>
<label for="d-to">To</label> <select id="d-to" name="to">${opts(to)}</select>
<button type="submit">Compare</button>
</form>`;
}

// -------------------------------------------------------------------------------------------- version

/** One version: manifest, commit and CI metadata, provenance verdicts, where it is or was current. */
export function versionPage(m: VersionModel, storeUrl: string, now: Date): string {
  const root = '../../';
  const s = m.stored;
  const man = s?.manifest;
  const facts: [string, string | undefined][] = man
    ? [
        ['kind', man.kind],
        ['runtime', man.runtime],
        ['architecture', man.architecture],
        ['glibc ceiling', man.glibcMax],
        ['toolchain', man.toolchain],
        ['handler', man.handler],
        ['entry', man.entry],
        ['image digest', man.image?.digest],
        ['image URI', s?.registry?.uri],
        ['namespace', m.namespace],
        ['published', s ? iso(s.publish.publishedAt) : undefined],
        ['builder', s?.publish.builder],
        ['trusted builder', s ? String(s.publish.trusted) : undefined],
        ['commit', s?.publish.commit],
        ['branch', s?.publish.branch],
        ['CI run', s?.publish.runId],
        ['pull request', s?.publish.pr],
        ['actor', s?.publish.actor],
      ]
    : [];
  const p = m.provenance;
  const body = html`<nav aria-label="Breadcrumb" class="crumbs"><a href="${root}index.html">Pipeline</a> › ${m.project} › ${m.version}</nav>
<h1>${m.project} <code>${m.version}</code></h1>
${m.manifestError ? html`<p class="page-error" role="alert">${m.manifestError}</p>` : ''}
${
  man
    ? html`<section aria-labelledby="facts-h"><h2 id="facts-h">Manifest</h2><dl class="facts">${facts.filter(([, v]) => v !== undefined).map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>
<table><caption>Files (${man.files.length}, ${formatBytes(man.files.reduce((a, f) => a + f.size, 0))})</caption><thead><tr><th scope="col">File</th><th scope="col">Bytes</th><th scope="col">sha256</th></tr></thead>
<tbody>${man.files.map((f) => html`<tr><td>${f.name}</td><td>${f.size} (${formatBytes(f.size)})</td><td><code>${f.sha256}</code></td></tr>`)}</tbody></table></section>`
    : ''
}
<section aria-labelledby="prov-h"><h2 id="prov-h">Provenance</h2>
${m.provenanceError ? html`<p class="page-error" role="status">${m.provenanceError}</p>` : ''}
${
  p
    ? html`<p>${p.signed ? 'signed' : 'unsigned'}${p.error ? html` · <span class="error-text">${p.error}</span>` : ''}${p.keyids.length ? html` · keys ${p.keyids.join(', ')}` : ''}</p>
${
  p.facts
    ? html`<dl class="facts">${Object.entries(p.facts)
        .filter(([, v]) => typeof v === 'string' || typeof v === 'number')
        .map(([k, v]) => html`<dt>${k}</dt><dd>${String(v)}</dd>`)}</dl>`
    : ''
}
${p.verdicts.length ? html`<ul class="verdicts">${p.verdicts.map((v) => html`<li><strong>${v.environment}</strong>: <span class="badge ${v.status === 'verified' ? 'ok' : v.status === 'refused' ? 'bad' : 'muted'}">${v.status}</span>${v.status === 'refused' ? html` ${v.rule}: ${v.reason}` : ''}</li>`)}</ul>` : html`<p class="muted">no environment has a provenance policy</p>`}`
    : ''
}
</section>
<section aria-labelledby="envs-h"><h2 id="envs-h">Environments</h2>
${m.environments.length ? html`<ul>${m.environments.map((e) => (e.error !== undefined ? html`<li>${e.env}: <span class="cell-error">${e.error}</span></li>` : html`<li><a href="${root}${paths.history(m.project, e.env)}">${e.env}</a>: ${e.current ? html`<strong>current</strong>, ` : 'was current, '}seq ${e.seqs.join(', ')}</li>`))}</ul>` : html`<p class="muted">never released to an environment</p>`}
</section>`;
  return layout({ title: `${m.project} ${m.version}`, root, storeUrl, generatedAt: now }, body);
}

// ----------------------------------------------------------------------------------------------- diff

/** Two versions of one project. */
export function diffPage(m: DiffModel, storeUrl: string, now: Date): string {
  const root = '../../';
  const changed = m.files.filter((f) => f.change !== 'same');
  const body = html`<nav aria-label="Breadcrumb" class="crumbs"><a href="${root}index.html">Pipeline</a> › ${m.project} › diff</nav>
<h1>${m.project}: <a href="${root}${paths.version(m.project, m.from)}">${short(m.from, 10)}</a> → <a href="${root}${paths.version(m.project, m.to)}">${short(m.to, 10)}</a></h1>
${m.known.length ? diffPicker(m.project, m.known, root, m.from, m.to) : ''}
${m.errors.map((e) => html`<p class="page-error" role="alert">${e}</p>`)}
${
  m.fromStored && m.toStored
    ? html`<p class="summary">size ${signedBytes(m.sizeDelta)} · ${changed.length} file${changed.length === 1 ? '' : 's'} changed${m.commits ? ` · ${m.commits.length} commit${m.commits.length === 1 ? '' : 's'}` : ''}</p>
<section aria-labelledby="commits-h"><h2 id="commits-h">Commits</h2>
${m.commits ? (m.commits.length ? html`<ol class="commits">${m.commits.map((c) => html`<li><code title="${c.sha}">${short(c.sha, 12)}</code> <span class="subject">${c.subject}</span> <span class="muted">— <span class="author">${c.author}</span></span></li>`)}</ol>` : html`<p>same commit</p>`) : html`<p class="muted">commits unknown: ${m.commitsNote ?? ''}</p>`}
</section>
<section aria-labelledby="files-h"><h2 id="files-h">Files</h2>
<table class="files"><caption>Files of the two manifests</caption><thead><tr><th scope="col">File</th><th scope="col">Change</th><th scope="col">From bytes</th><th scope="col">To bytes</th><th scope="col">Delta</th></tr></thead>
<tbody>${m.files.map((f) => html`<tr class="change-${f.change}"><td>${f.name}</td><td>${f.change}</td><td>${f.fromSize ?? '-'}</td><td>${f.toSize ?? '-'}</td><td>${signedBytes(f.delta)}</td></tr>`)}</tbody></table>
</section>
<section aria-labelledby="facts-h"><h2 id="facts-h">Toolchain, build and provenance facts</h2>
${m.facts.length ? html`<table><caption>Facts that differ</caption><thead><tr><th scope="col">Fact</th><th scope="col">From</th><th scope="col">To</th></tr></thead><tbody>${m.facts.map((f) => html`<tr><td>${f.name}</td><td>${f.from}</td><td>${f.to}</td></tr>`)}</tbody></table>` : html`<p>no differences besides the files</p>`}
</section>`
    : ''
}`;
  return layout({ title: `${m.project} diff`, root, storeUrl, generatedAt: now }, body);
}

// ----------------------------------------------------------------------------------------------- misc

/** The login form (server bound beyond loopback with BUILDONCE_UI_TOKEN). */
export function loginPage(o: { failed?: boolean; next?: string }): string {
  const body = html`<h1>Sign in</h1>
${o.failed ? html`<p class="page-error" role="alert">wrong token</p>` : ''}
<form method="post" action="/login" class="login">
<input type="hidden" name="next" value="${o.next ?? '/'}">
<label for="token">Dashboard token (BUILDONCE_UI_TOKEN)</label> <input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`;
  return layout({ title: 'Sign in', root: '/', storeUrl: '-', generatedAt: new Date() }, body);
}

/** A page for a request that failed (unknown path, bad parameter, unexpected error). */
export function errorPage(o: { status: number; message: string; root: string; storeUrl: string }): string {
  return layout(
    { title: `${o.status}`, root: o.root, storeUrl: o.storeUrl, generatedAt: new Date() },
    html`<h1>${o.status === 404 ? 'Not found' : 'Error'}</h1><p class="page-error" role="alert">${o.message}</p><p><a href="${o.root}index.html">Back to the pipeline</a></p>`,
  );
}
