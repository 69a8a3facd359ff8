import type { AwsClients } from '@buildonce/aws';
import { run } from '@buildonce/process';
import type { StoredManifest } from '@buildonce/artifact';
import { isEnvironmentName, isPreviewEnvironment } from '@buildonce/values';
import {
  RELEASES_ROOT,
  artifactsRoot,
  currentKey,
  parseReleaseKey,
  projectFromKey,
  readStoredManifest,
  type ArtifactNamespace,
  type BlobStore,
} from '@buildonce/store';
import { inspectVersionProvenance, type VersionProvenanceReport } from '@buildonce/promotion';
import { isInterrupted, listEnvironments, readCurrent, readHistory, type HistoryEntry } from '@buildonce/ledger';
import { type BuildonceConfig } from '@buildonce/config';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

/**
 * What the dashboard reads, as plain data (the pages only render it). Every loader takes the
 * read-only store handle; a failure of one part (a malformed entry, an unreachable store) becomes an
 * `error` string on that part, so a page always renders.
 */
export interface DashboardSource {
  /** read-only handle (readOnlyStore) */
  store: BlobStore;
  config: BuildonceConfig;
  /** the command's AWS clients (KMS for `kms:` provenance keys), built by openWorkspaceStore */
  aws: AwsClients;
  /** workspace root whose git history gives commit subjects and counts (absent: no git facts) */
  workspaceRoot?: string;
  /** memo of git answers (commit pairs are immutable facts) */
  git?: GitFacts;
}

/** One-line message of any failure (first line only). */
export function messageOf(e: unknown): string {
  return ((e as Error)?.message ?? String(e)).split('\n')[0]!;
}

// ------------------------------------------------------------------------------------------- discovery

/** Every project and environment that has a ledger, from ONE listing of `releases/`. */
export interface LedgerIndex {
  /** project → environments (sorted) */
  projects: Map<ProjectName, EnvironmentName[]>;
}

/**
 * Every ledger of the store. With folder listings (S3 `Delimiter: /`, one readdir): `releases/`, then
 * each project's folder, concurrently, never touching the history entries; otherwise one walk of
 * `releases/` (ListObjectsV2 pages / a directory walk).
 * @throws StoreAccessError
 */
export async function discoverLedgers(store: BlobStore): Promise<LedgerIndex> {
  if (store.listFolders) {
    const keys = await store.listFolders(RELEASES_ROOT);
    const projects = new Map<ProjectName, EnvironmentName[]>();
    const found = await Promise.all(
      keys.map(async (key) => {
        let project: ProjectName;
        try {
          project = projectFromKey(key);
        } catch {
          return undefined; // not a ledger folder
        }
        const envs = (await store.listFolders!(`${RELEASES_ROOT}${key}/`)).filter(isEnvironmentName).sort();
        return envs.length ? ([project, envs] as const) : undefined;
      }),
    );
    for (const f of found.filter((x) => x !== undefined).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) projects.set(f[0], [...f[1]]);
    return { projects };
  }
  const found = new Map<ProjectName, Set<EnvironmentName>>();
  for await (const o of store.list(RELEASES_ROOT)) {
    const k = parseReleaseKey(o.key);
    if (!k) continue;
    let envs = found.get(k.project);
    if (!envs) found.set(k.project, (envs = new Set()));
    envs.add(k.env);
  }
  const projects = new Map<ProjectName, EnvironmentName[]>();
  for (const p of [...found.keys()].sort()) projects.set(p, [...found.get(p)!].sort());
  return { projects };
}

/**
 * Projects with a published version in the trusted namespace (one folder listing of `artifacts/`; stores without
 * folder listings, and a listing that fails, give none: the ledgers still show).
 */
export async function publishedProjects(store: BlobStore): Promise<ProjectName[]> {
  if (!store.listFolders) return [];
  const keys = await store.listFolders(artifactsRoot()).catch(() => [] as string[]);
  const out: ProjectName[] = [];
  for (const key of keys) {
    try {
      out.push(projectFromKey(key));
    } catch {
      // not a project folder
    }
  }
  return out;
}

// -------------------------------------------------------------------------------------------------- git

/** Git facts of the workspace (memoized): which commits exist, how many commits lie between two. */
export class GitFacts {
  private counts = new Map<string, Promise<number | undefined>>();
  private logs = new Map<string, Promise<CommitInfo[] | undefined>>();
  constructor(readonly cwd: string) {}

  /** sha → when it was last found missing (ms); present ones are remembered for good (commits never vanish) */
  private known = new Map<string, true | number>();

  /**
   * The subset of `shas` present in the repository (one `git rev-list --no-walk --ignore-missing` for
   * the ones not yet known; a missing sha is asked again after a minute, e.g. after a fetch).
   */
  async existing(shas: string[]): Promise<Set<string>> {
    const want = [...new Set(shas.filter((s) => /^[0-9a-f]{7,64}$/.test(s)))];
    const now = Date.now();
    const ask = want.filter((s) => {
      const k = this.known.get(s);
      return k === undefined || (k !== true && now - k > 60_000);
    });
    if (ask.length) {
      const r = await run('git', ['rev-list', '--no-walk', '--ignore-missing', ...ask], { cwd: this.cwd, reject: false }).catch(() => undefined);
      const have = r && r.exitCode === 0 ? r.stdout.split('\n').filter(Boolean) : [];
      for (const s of ask) this.known.set(s, have.some((h) => h.startsWith(s)) ? true : now);
    }
    return new Set(want.filter((s) => this.known.get(s) === true));
  }

  /** Commits reachable from `to` and not from `from` (`git rev-list --count from..to`); undefined when git cannot tell. */
  count(from: string, to: string): Promise<number | undefined> {
    const key = `${from}..${to}`;
    let p = this.counts.get(key);
    if (!p) {
      p = run('git', ['rev-list', '--count', key], { cwd: this.cwd, reject: false }).then(
        (r) => (r.exitCode === 0 ? Number(r.stdout.trim()) : undefined),
        () => undefined,
      );
      this.counts.set(key, p);
    }
    return p;
  }

  /** `git log from..to` (newest first, at most `max`): sha, author, subject; undefined when git cannot tell. */
  log(from: string, to: string, max = 500): Promise<CommitInfo[] | undefined> {
    const key = `${from}..${to}`;
    let p = this.logs.get(key);
    if (!p) {
      p = run('git', ['log', `--max-count=${max}`, '--format=%H%x1f%an%x1f%aI%x1f%s', key], { cwd: this.cwd, reject: false }).then(
        (r) =>
          r.exitCode === 0
            ? r.stdout
                .split('\n')
                .filter(Boolean)
                .map((l) => {
                  const [sha, author, date, subject] = l.split('\x1f');
                  return { sha: sha!, author: author ?? '', date: date ?? '', subject: subject ?? '' };
                })
            : undefined,
        () => undefined,
      );
      this.logs.set(key, p);
    }
    return p;
  }
}

/** One commit of a diff. */
export interface CommitInfo {
  sha: string;
  author: string;
  /** ISO 8601 author date */
  date: string;
  subject: string;
}

function gitOf(src: DashboardSource): GitFacts | undefined {
  if (!src.workspaceRoot) return undefined;
  return (src.git ??= new GitFacts(src.workspaceRoot));
}

// ------------------------------------------------------------------------------------------- pipeline

/** One cell of the matrix: the environment's current release, nothing, or why it could not be read. */
export type PipelineCell = { status: 'current'; entry: HistoryEntry } | { status: 'none' } | { status: 'error'; message: string };

/** How a cell's version relates to its upstream environment's current version. */
export interface Drift {
  upstream: EnvironmentName;
  upstreamVersion: Version;
  /** commits the upstream's commit is ahead of this cell's (git rev-list --count); undefined when git cannot tell */
  ahead?: number;
}

export interface PipelineModel {
  storeUrl: string;
  /** chain environments in buildonce.json order, then other non-preview environments found in the store */
  chain: EnvironmentName[];
  /** `pr-<n>` environments found in the store, by number */
  previews: EnvironmentName[];
  projects: ProjectName[];
  /** `${project}\u0000${env}` → cell */
  cells: Map<string, PipelineCell>;
  drift: Map<string, Drift>;
  /** the listing itself failed (store unreachable): nothing else could be read */
  error?: string;
  generatedAt: Date;
}

export const cellKey = (project: ProjectName, env: EnvironmentName) => `${project}\u0000${env}`;

/** The environment a chain environment promotes from (its first `requires`), if any. */
export function upstreamOf(config: BuildonceConfig, env: EnvironmentName): EnvironmentName | undefined {
  return config.environments.find((e) => e.name === env)?.requires[0];
}

/**
 * The pipeline: one listing of `releases/`, then `current.json` of every project × environment
 * (concurrently), then the upstream drift of every chain cell (git answers memoized).
 */
export async function loadPipeline(src: DashboardSource, now = new Date()): Promise<PipelineModel> {
  const chainNames = src.config.environments.map((e) => e.name);
  const model: PipelineModel = {
    storeUrl: src.store.location.url,
    chain: [...chainNames],
    previews: [],
    projects: [],
    cells: new Map(),
    drift: new Map(),
    generatedAt: now,
  };
  let index: LedgerIndex;
  try {
    index = await discoverLedgers(src.store);
  } catch (e) {
    model.error = messageOf(e);
    return model;
  }
  const extra = new Set<EnvironmentName>();
  const previews = new Set<EnvironmentName>();
  for (const envs of index.projects.values())
    for (const env of envs)
      if (isPreviewEnvironment(env)) previews.add(env);
      else if (!chainNames.includes(env)) extra.add(env);
  model.chain.push(...[...extra].sort());
  model.previews = [...previews].sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
  // published but never promoted (the first thing a new workspace has): a row of its own, every cell "not promoted"
  const published = await publishedProjects(src.store);
  model.projects = [...new Set([...index.projects.keys(), ...published])].sort();
  const jobs: Promise<void>[] = [];
  for (const [project, envs] of index.projects) {
    for (const env of envs) {
      jobs.push(
        readCurrent(src.store, project, env).then(
          (cur) => void model.cells.set(cellKey(project, env), cur ? { status: 'current', entry: cur.entry } : { status: 'none' }),
          (e) => void model.cells.set(cellKey(project, env), { status: 'error', message: messageOf(e) }),
        ),
      );
    }
  }
  await Promise.all(jobs);
  const git = gitOf(src);
  const pairs: { key: string; up: EnvironmentName; upEntry: HistoryEntry; entry: HistoryEntry }[] = [];
  for (const project of model.projects) {
    for (const env of chainNames) {
      const up = upstreamOf(src.config, env);
      const mine = model.cells.get(cellKey(project, env));
      const theirs = up ? model.cells.get(cellKey(project, up)) : undefined;
      if (!up || theirs?.status !== 'current') continue;
      const entry = mine?.status === 'current' ? mine.entry : undefined;
      if (entry?.version === theirs.entry.version) continue;
      if (!entry) {
        model.drift.set(cellKey(project, env), { upstream: up, upstreamVersion: theirs.entry.version });
        continue;
      }
      pairs.push({ key: cellKey(project, env), up, upEntry: theirs.entry, entry });
    }
  }
  const exists = git ? await git.existing(pairs.flatMap((p) => [p.entry.commit ?? '', p.upEntry.commit ?? ''])) : new Set<string>();
  await Promise.all(
    pairs.map(async (p) => {
      const d: Drift = { upstream: p.up, upstreamVersion: p.upEntry.version };
      if (git && p.entry.commit && p.upEntry.commit && exists.has(p.entry.commit) && exists.has(p.upEntry.commit))
        d.ahead = await git.count(p.entry.commit, p.upEntry.commit);
      model.drift.set(p.key, d);
    }),
  );
  return model;
}

/**
 * A cheap fingerprint of what the pipeline shows: the etags of every known `current.json` (one GET
 * each, no listing) plus the set of known cells. Changes whenever a pointer moves.
 */
export async function pipelineFingerprint(store: BlobStore, index: LedgerIndex): Promise<string> {
  const parts: Promise<string>[] = [];
  for (const [project, envs] of index.projects) {
    for (const env of envs) {
      parts.push(
        readCurrentEtag(store, project, env).then(
          (etag) => `${project}/${env}=${etag}`,
          (e) => `${project}/${env}!${messageOf(e)}`,
        ),
      );
    }
  }
  return (await Promise.all(parts)).join('\n');
}

async function readCurrentEtag(store: BlobStore, project: ProjectName, env: EnvironmentName): Promise<string> {
  const got = await store.getBytes(currentKey(project, env));
  return got ? got.etag : '-';
}

// -------------------------------------------------------------------------------------------- history

/** What kind of attempt a history entry records. */
export type EntryKind = 'succeeded' | 'failed' | 'verification-failed' | 'interrupted' | 'rollback' | 'automatic-rollback' | 'failed-rollback';

/** Classifies a history entry for display. */
export function entryKind(e: HistoryEntry): EntryKind {
  if (e.status === 'failed') {
    if (isInterrupted(e)) return 'interrupted';
    if (e.rollback) return 'failed-rollback';
    return e.verification && !e.verification.passed ? 'verification-failed' : 'failed';
  }
  if (e.rollback) return e.automatic ? 'automatic-rollback' : 'rollback';
  return 'succeeded';
}

export interface HistoryModel {
  project: ProjectName;
  env: EnvironmentName;
  storeUrl: string;
  /** newest first */
  entries: HistoryEntry[];
  /** GitHub repository (`owner/repo`) the versions were built in, from the newest version's stored manifest */
  repository?: string;
  error?: string;
}

/** Every history entry of one environment, newest first. */
export async function loadHistory(src: DashboardSource, project: ProjectName, env: EnvironmentName): Promise<HistoryModel> {
  const m: HistoryModel = { project, env, storeUrl: src.store.location.url, entries: [] };
  try {
    m.entries = (await readHistory(src.store, project, env)).reverse();
  } catch (e) {
    m.error = messageOf(e);
    return m;
  }
  const newest = m.entries[0];
  if (newest) {
    const stored = await readManifestAnywhere(src.store, project, newest.version).catch(() => undefined);
    m.repository = stored && repositoryOf(stored.stored);
  }
  return m;
}

/** `owner/repo` from a stored manifest's builder (`github-actions:owner/repo`). */
export function repositoryOf(s: StoredManifest): string | undefined {
  const m = /^github-actions:([A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+)$/.exec(s.publish.builder);
  return m?.[1];
}

/** The CI run URL of a run id (`123` or `123-2` for attempt 2) in a GitHub repository. */
export function runUrl(repository: string | undefined, runId: string | null): string | undefined {
  if (!repository || !runId) return undefined;
  const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(runId);
  if (!m) return undefined;
  return `https://github.com/${repository}/actions/runs/${m[1]}${m[2] ? `/attempts/${m[2]}` : ''}`;
}

/** The stored manifest of a version, trusted namespace first, then preview. */
export async function readManifestAnywhere(
  store: BlobStore,
  project: ProjectName,
  version: Version,
): Promise<{ stored: StoredManifest; namespace: ArtifactNamespace } | undefined> {
  const t = await readStoredManifest(store, project, version, 'trusted');
  if (t) return { stored: t, namespace: 'trusted' };
  const p = await readStoredManifest(store, project, version, 'preview');
  return p ? { stored: p, namespace: 'preview' } : undefined;
}

// -------------------------------------------------------------------------------------------- version

export interface VersionModel {
  project: ProjectName;
  version: Version;
  stored?: StoredManifest;
  namespace?: ArtifactNamespace;
  manifestError?: string;
  provenance?: VersionProvenanceReport;
  provenanceError?: string;
  /** environments where the version succeeded: seqs, and whether it is current there */
  /** `*` with an error: the environments could not be listed */
  environments: (
    | { env: EnvironmentName; seqs: number[]; current: boolean; error?: undefined }
    | { env: EnvironmentName | '*'; seqs: number[]; current: false; error: string }
  )[];
}

/** A version: stored manifest, provenance verdicts per environment policy, where it is or was current. */
export async function loadVersion(src: DashboardSource, project: ProjectName, version: Version): Promise<VersionModel> {
  const m: VersionModel = { project, version, environments: [] };
  try {
    const got = await readManifestAnywhere(src.store, project, version);
    if (got) Object.assign(m, got);
    else m.manifestError = `version ${version} of ${project} is not in the store (never published, or deleted by retention)`;
  } catch (e) {
    m.manifestError = messageOf(e);
  }
  if (m.stored) {
    try {
      m.provenance = await inspectVersionProvenance({ store: src.store, config: src.config, project, version, kms: src.aws.kms });
    } catch (e) {
      m.provenanceError = messageOf(e);
    }
  }
  let envs: EnvironmentName[] = [];
  try {
    envs = (await discoverProjectEnvs(src.store, project)) ?? [];
  } catch (e) {
    m.environments.push({ env: '*', seqs: [], current: false, error: messageOf(e) });
  }
  await Promise.all(
    envs.map(async (env) => {
      try {
        const [h, cur] = await Promise.all([readHistory(src.store, project, env), readCurrent(src.store, project, env)]);
        const seqs = h.filter((e) => e.version === version && e.status === 'succeeded').map((e) => e.seq);
        if (seqs.length) m.environments.push({ env, seqs, current: cur?.entry.version === version });
      } catch (e) {
        m.environments.push({ env, seqs: [], current: false, error: messageOf(e) });
      }
    }),
  );
  const order = src.config.environments.map((e) => e.name);
  const rank = (e: EnvironmentName | '*') => (order.includes(e as EnvironmentName) ? order.indexOf(e as EnvironmentName) : order.length);
  m.environments.sort((a, b) => rank(a.env) - rank(b.env) || a.env.localeCompare(b.env));
  return m;
}

function discoverProjectEnvs(store: BlobStore, project: ProjectName): Promise<EnvironmentName[]> {
  return listEnvironments(store, project);
}

// ----------------------------------------------------------------------------------------------- diff

/** One file's change between two manifests. */
export interface FileDelta {
  name: string;
  change: 'added' | 'removed' | 'changed' | 'same';
  fromSize?: number;
  toSize?: number;
  /** toSize - fromSize, bytes (added: +size, removed: -size) */
  delta: number;
}

export interface DiffModel {
  project: ProjectName;
  from: Version;
  to: Version;
  fromStored?: StoredManifest;
  toStored?: StoredManifest;
  errors: string[];
  files: FileDelta[];
  /** bytes */
  sizeDelta: number;
  /** manifest/publish fields that differ: name, from, to */
  facts: { name: string; from: string; to: string }[];
  /** commits in `to` not in `from` (newest first); undefined with a reason when git cannot tell */
  commits?: CommitInfo[];
  commitsNote?: string;
  /** versions for the picker (from the newest 50 entries of every environment's history, newest first) */
  known: string[];
}

/** Compares two manifests' files by name (pure). */
export function fileDeltas(from: StoredManifest['manifest']['files'], to: StoredManifest['manifest']['files']): FileDelta[] {
  const a = new Map(from.map((f) => [f.name, f]));
  const b = new Map(to.map((f) => [f.name, f]));
  const out: FileDelta[] = [];
  for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(name);
    const y = b.get(name);
    if (x && y) out.push({ name, change: x.sha256 === y.sha256 ? 'same' : 'changed', fromSize: x.size, toSize: y.size, delta: y.size - x.size });
    else if (y) out.push({ name, change: 'added', toSize: y.size, delta: y.size });
    else out.push({ name, change: 'removed', fromSize: x!.size, delta: -x!.size });
  }
  return out;
}

/** Fields of two stored manifests that differ (toolchain, runtime, architecture, glibc, image digest, builder, …) (pure). */
export function factDeltas(a: StoredManifest, b: StoredManifest): { name: string; from: string; to: string }[] {
  const facts = (s: StoredManifest): Record<string, string | undefined> => ({
    kind: s.manifest.kind,
    runtime: s.manifest.runtime,
    architecture: s.manifest.architecture,
    'glibc ceiling': s.manifest.glibcMax,
    toolchain: s.manifest.toolchain,
    handler: s.manifest.handler,
    entry: s.manifest.entry,
    'image digest': s.manifest.image?.digest,
    'image platform': s.manifest.image?.platform,
    builder: s.publish.builder,
    trusted: String(s.publish.trusted),
    commit: s.publish.commit,
    branch: s.publish.branch,
  });
  const fa = facts(a);
  const fb = facts(b);
  return Object.keys(fa)
    .filter((k) => fa[k] !== fb[k])
    .map((k) => ({ name: k, from: fa[k] ?? '-', to: fb[k] ?? '-' }));
}

/** Two versions of a project: file and size deltas, fact differences, the commits between them. */
export async function loadDiff(src: DashboardSource, project: ProjectName, from: Version, to: Version): Promise<DiffModel> {
  const m: DiffModel = { project, from, to, errors: [], files: [], sizeDelta: 0, facts: [], known: [] };
  const [a, b] = await Promise.all(
    [from, to].map((v) =>
      readManifestAnywhere(src.store, project, v).then(
        (r) => r ?? (m.errors.push(`version ${v} of ${project} is not in the store`), undefined),
        (e) => (m.errors.push(messageOf(e)), undefined),
      ),
    ),
  );
  m.fromStored = a?.stored;
  m.toStored = b?.stored;
  if (a && b) {
    m.files = fileDeltas(a.stored.manifest.files, b.stored.manifest.files);
    m.sizeDelta = m.files.reduce((s, f) => s + f.delta, 0);
    m.facts = factDeltas(a.stored, b.stored);
    const git = gitOf(src);
    const ca = a.stored.publish.commit;
    const cb = b.stored.publish.commit;
    if (!git) m.commitsNote = 'no workspace git history available';
    else if (!ca || !cb) m.commitsNote = 'a version records no commit (published outside CI and outside git)';
    else if (ca === cb) m.commits = [];
    else {
      const have = await git.existing([ca, cb]);
      if (!have.has(ca) || !have.has(cb))
        m.commitsNote = `the workspace's git history lacks ${!have.has(ca) ? ca.slice(0, 12) : cb.slice(0, 12)} (fetch with fetch-depth: 0)`;
      else {
        m.commits = await git.log(ca, cb);
        if (!m.commits) m.commitsNote = 'git log failed';
      }
    }
  }
  try {
    const index = (await discoverProjectEnvs(src.store, project)) ?? [];
    const seen = new Set<string>();
    // the picker offers recent versions (the newest 50 entries of each environment); any pair is a URL away
    const all = (await Promise.all(index.map((env) => readHistory(src.store, project, env, { limit: 50 }).catch(() => [] as HistoryEntry[])))).flat();
    all.sort((x, y) => y.finishedAt.localeCompare(x.finishedAt));
    for (const e of all) if (!seen.has(e.version)) seen.add(e.version);
    m.known = [...seen];
  } catch {
    // the picker is a convenience; the diff itself is above
  }
  return m;
}
