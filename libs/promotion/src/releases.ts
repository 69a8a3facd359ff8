import Table from 'cli-table3';
import { run } from '@buildonce/process';
import type { BlobStore } from '@buildonce/store';
import { listEnvironments, listLedgerProjects, readCurrent, readHistory, type HistoryEntry } from '@buildonce/ledger';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

/** One row of the release table. */
export interface ReleaseRow {
  project: ProjectName;
  environment: EnvironmentName;
  seq: number;
  version: Version;
  status: HistoryEntry['status'];
  rollback: boolean;
  commit: string | null;
  /** ISO 8601 finish time */
  when: string;
  who: string;
  runId: string | null;
  previous: string | null;
  /** artifact URI (version folder) */
  uri: string;
  /**
   * signed provenance: `verified` (the environment's policy checked it), `signed` (present, not
   * checked there), `unsigned`, or `-` for entries recorded before provenance existed
   */
  provenance: ProvenanceState;
  error?: string;
  /** why (`--reason`, or the failed verification behind an automatic rollback) */
  reason?: string;
  /** the environment's checks after the deploy (absent: none ran) */
  verification?: HistoryEntry['verification'];
}

/** Provenance state of a release (see {@link ReleaseRow.provenance}). */
export type ProvenanceState = 'verified' | 'signed' | 'unsigned' | '-';

/** The provenance state a history entry records. */
export function provenanceStateOf(e: HistoryEntry): ProvenanceState {
  const p = e.artifact.provenance;
  return !p ? '-' : p.verified ? 'verified' : p.signed ? 'signed' : 'unsigned';
}

/** Table row of a history entry. */
export function releaseRowOf(e: HistoryEntry): ReleaseRow {
  return {
    project: e.project,
    environment: e.environment,
    seq: e.seq,
    version: e.version,
    status: e.status,
    rollback: e.rollback,
    commit: e.commit,
    when: e.finishedAt,
    who: e.actor,
    runId: e.runId,
    previous: e.previousVersion,
    uri: e.artifact.uri,
    provenance: provenanceStateOf(e),
    ...(e.error ? { error: e.error } : {}),
    ...(e.reason ? { reason: e.reason } : {}),
    ...(e.verification ? { verification: e.verification } : {}),
  };
}

/**
 * Sorts rows by environment in pipeline order: the order of `order` (buildonce.json's chain, e.g. dev,
 * staging, prod) first, then any other environment (previews `pr-<n>`, removed ones) by name. Stable
 * within one environment (history keeps newest first).
 */
export function sortByPipeline(rows: ReleaseRow[], order: readonly string[]): ReleaseRow[] {
  const rank = (env: EnvironmentName) => {
    const i = order.indexOf(env);
    return i < 0 ? order.length : i;
  };
  return [...rows].sort(
    (a, b) => rank(a.environment) - rank(b.environment) || (rank(a.environment) === order.length ? a.environment.localeCompare(b.environment) : 0),
  );
}

/**
 * Rows for `releases`: with `env`, that environment's history newest first (at most `limit`, default
 * 20); without, the current release of every environment that has a ledger, in pipeline order
 * (`order`: the environment chain of buildonce.json; others after it by name).
 */
export async function collectReleases(o: {
  store: BlobStore;
  project: ProjectName;
  env?: EnvironmentName;
  limit?: number;
  order?: readonly string[];
}): Promise<ReleaseRow[]> {
  if (o.env) {
    const h = await readHistory(o.store, o.project, o.env, { limit: o.limit ?? 20 });
    return h.reverse().map(releaseRowOf);
  }
  const rows: ReleaseRow[] = [];
  for (const env of await listEnvironments(o.store, o.project)) {
    const cur = await readCurrent(o.store, o.project, env);
    if (cur) rows.push(releaseRowOf(cur.entry));
  }
  return sortByPipeline(rows, o.order ?? []);
}

/**
 * Rows of every project that has a ledger in the store (workspace-wide `releases`), keyed by project,
 * sorted by project name. Same row semantics as {@link collectReleases}.
 */
export async function collectWorkspaceReleases(o: {
  store: BlobStore;
  env?: EnvironmentName;
  limit?: number;
  order?: readonly string[];
}): Promise<Map<ProjectName, ReleaseRow[]>> {
  const out = new Map<ProjectName, ReleaseRow[]>();
  for (const project of await listLedgerProjects(o.store)) out.set(project, await collectReleases({ ...o, project }));
  return out;
}

const short = (c: string | null) => (c ? c.slice(0, 12) : '-');
const when = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
const note = (r: ReleaseRow) => [r.status === 'failed' ? 'FAILED' : '', r.rollback ? 'rollback' : ''].filter(Boolean).join(' ') || 'ok';

/** `passed lambda ×1 0.4s`, `FAILED http ×12 60.0s`, `FAILED metric errorRate 0.031 > 0.01 at step 2`, `-` when nothing was verified. */
export function verificationCell(v: ReleaseRow['verification']): string {
  if (!v) return '-';
  if (v.analysis && !v.passed) return `FAILED ${v.analysis.summary}`;
  return `${v.passed ? 'passed' : 'FAILED'} ${v.kind} ×${v.attempts} ${(v.durationMs / 1000).toFixed(1)}s`;
}

/** The columns of the release table (environment, version, commit, when, who, previous + seq, status, provenance and verification). */
export const RELEASE_COLUMNS = ['environment', '#', 'version', 'status', 'provenance', 'verified', 'commit', 'when', 'who', 'previous'] as const;

function cells(r: ReleaseRow): string[] {
  return [
    r.environment,
    String(r.seq),
    r.version,
    note(r),
    r.provenance,
    verificationCell(r.verification),
    short(r.commit),
    when(r.when),
    r.who,
    r.previous ?? '-',
  ];
}

/** Plain-text table (cli-table3, no colours) under a `<project>:` line. Empty input gives a one-line notice. */
export function renderTable(rows: ReleaseRow[], project: ProjectName): string {
  if (!rows.length) return `${project}: no releases recorded yet`;
  const t = new Table({ head: [...RELEASE_COLUMNS], style: { head: [], border: [] } });
  for (const r of rows) t.push(cells(r));
  const failures = rows.filter((r) => r.error).map((r) => `  #${r.seq} ${r.environment}: ${r.error}`);
  // the project's name heads its table: `buildonce releases` prints one table per project
  return [`${project}:`, t.toString(), ...failures].join('\n');
}

/** GitHub-flavoured Markdown table (for `$GITHUB_STEP_SUMMARY`). */
export function renderMarkdown(rows: ReleaseRow[], project: ProjectName): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [`#### ${project}`, ''];
  if (!rows.length) return [...lines, 'no releases recorded yet', ''].join('\n');
  lines.push(`| ${RELEASE_COLUMNS.join(' | ')} |`, `|${RELEASE_COLUMNS.map(() => ' --- ').join('|')}|`);
  for (const r of rows) lines.push(`| ${cells(r).map(esc).join(' | ')} |`);
  return [...lines, ''].join('\n');
}

/** A value of the current release, for scripts (`--field=commit`). */
export type ReleaseField = 'commit' | 'version' | 'uri' | 'seq' | 'when' | 'who';

/** Picks one field of a row as a string ('' when absent). */
export function fieldOf(row: ReleaseRow | undefined, field: ReleaseField): string {
  if (!row) return '';
  const v = row[field];
  return v === null || v === undefined ? '' : String(v);
}

/**
 * The commit to use as `nx affected --base` for an environment, workspace-wide: the common ancestor
 * (`git merge-base --octopus`) of the commits of every project's current release there, so every
 * project whose sources changed since the version it runs is affected. With one distinct commit it is
 * that commit; without any ledger for the environment, undefined (promote everything).
 * @param projects restrict to these projects (default: every project with a ledger)
 * @throws Error when git cannot resolve the commits (shallow clone: fetch with depth 0)
 */
export async function baseCommitForEnv(o: {
  store: BlobStore;
  env: EnvironmentName;
  workspaceRoot: string;
  projects?: ProjectName[];
}): Promise<string | undefined> {
  const projects = o.projects ?? (await listLedgerProjects(o.store));
  const commits = new Set<string>();
  for (const p of projects) {
    const cur = await readCurrent(o.store, p, o.env);
    if (cur?.entry.commit) commits.add(cur.entry.commit);
  }
  const list = [...commits];
  if (list.length <= 1) return list[0];
  const r = await run('git', ['merge-base', '--octopus', ...list], { cwd: o.workspaceRoot, reject: false });
  const sha = r.stdout.trim();
  if (r.exitCode !== 0 || !sha) {
    throw new Error(
      `git merge-base of the commits current in ${o.env} (${list.map((c) => c.slice(0, 12)).join(', ')}) failed: fetch the full history (fetch-depth: 0)`,
    );
  }
  return sha;
}

/** The current release of a project in an environment, with the immutable URI of its shipped file. */
export interface ResolvedRelease {
  entry: HistoryEntry;
  /**
   * URI of the shipped file, e.g. `s3://bucket/prefix/artifacts/rust-scorer/123/bootstrap.zip`; for an
   * oci-image the image URI by digest (`<registry>/<repo>@sha256:…`, Terraform's `lambda_image_uri`)
   */
  artifactUri: string;
}

/** Reads `current.json`; undefined when the environment has no release of the project. */
export async function resolveCurrent(store: BlobStore, project: ProjectName, env: EnvironmentName): Promise<ResolvedRelease | undefined> {
  const cur = await readCurrent(store, project, env);
  if (!cur) return undefined;
  const dir = cur.entry.artifact.uri.endsWith('/') ? cur.entry.artifact.uri : `${cur.entry.artifact.uri}/`;
  return { entry: cur.entry, artifactUri: cur.entry.artifact.imageUri ?? dir + cur.entry.artifact.file };
}
