import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, parseStoreUrl } from '@buildonce/store';
import { appendEntry } from '@buildonce/ledger';
import { baseCommitForEnv, collectReleases, collectWorkspaceReleases, fieldOf, renderMarkdown, renderTable, sortByPipeline } from './releases';
import { draft, removeTempDirs, tempDir, gitIn } from '@buildonce/testing';
import { parseProjectName, type EnvironmentName, type ProjectName, type Version } from '@buildonce/values';

afterAll(removeTempDirs);

function gitRepo(): { dir: string; commits: string[] } {
  const dir = tempDir('base-git-');
  const git = (...a: string[]) => gitIn(dir, ...a);
  git('init', '-q', '-b', 'main');
  const commits: string[] = [];
  for (const n of ['1', '2', '3']) {
    writeFileSync(join(dir, 'f'), n);
    git('add', 'f');
    git('commit', '-qm', n);
    commits.push(git('rev-parse', 'HEAD'));
  }
  return { dir, commits };
}

describe('releases', () => {
  it('lists environments in pipeline order (buildonce.json chain), then others by name', async () => {
    const store = openStore(parseStoreUrl(`file://${tempDir('rel-order-')}`));
    for (const env of ['prod', 'pr-7', 'staging', 'dev', 'pr-3']) await appendEntry(store, { ...draft('11' as Version), environment: env as EnvironmentName });
    const rows = await collectReleases({ store, project: 'svc' as ProjectName, order: ['dev', 'staging', 'prod'] });
    expect(rows.map((r) => r.environment)).toEqual(['dev', 'staging', 'prod', 'pr-3', 'pr-7']);
    const ws = await collectWorkspaceReleases({ store, order: ['dev', 'staging', 'prod'] });
    expect(ws.get('svc' as ProjectName)?.map((r) => r.environment)).toEqual(['dev', 'staging', 'prod', 'pr-3', 'pr-7']);
    expect(sortByPipeline(rows, []).map((r) => r.environment)).toEqual(['dev', 'pr-3', 'pr-7', 'prod', 'staging']);
  });

  it('renders the table, markdown and single fields', async () => {
    const store = openStore(parseStoreUrl(`file://${tempDir('rel-')}`));
    await appendEntry(store, { ...draft('11' as Version), environment: 'dev' as EnvironmentName, commit: 'a'.repeat(40) });
    await appendEntry(store, {
      ...draft('12' as Version),
      environment: 'dev' as EnvironmentName,
      status: 'failed',
      error: 'boom',
      verification: { kind: 'http', passed: false, attempts: 12, durationMs: 60_000, detail: 'GET http://x → 503' },
    });
    await appendEntry(store, { ...draft('11' as Version), environment: 'prod' as EnvironmentName });
    const rows = await collectReleases({ store, project: 'svc' as ProjectName, env: 'dev' as EnvironmentName });
    expect(rows.map((r) => [r.seq, r.version, r.status])).toEqual([
      [2, '12', 'failed'],
      [1, '11', 'succeeded'],
    ]);
    const table = renderTable(rows, 'svc' as ProjectName);
    expect(table.split('\n')[0]).toBe('svc:');
    expect(table).toMatch(/environment.*#.*version.*status.*provenance.*verified.*commit.*when.*who.*previous/);
    expect(table).toContain('FAILED http ×12 60.0s');
    expect(rows[0]!.verification).toMatchObject({ passed: false, kind: 'http' });
    expect(table).toContain('FAILED');
    expect(table).toContain('#2 dev: boom');
    expect(renderMarkdown(rows, 'svc' as ProjectName)).toContain('| dev | 1 | 11 | ok | - | - | aaaaaaaaaaaa |');
    expect((await collectReleases({ store, project: 'svc' as ProjectName })).map((r) => r.environment)).toEqual(['dev', 'prod']);
    expect(fieldOf(rows[1], 'commit')).toBe('a'.repeat(40));
    expect(fieldOf(undefined, 'commit')).toBe('');
    expect([...(await collectWorkspaceReleases({ store })).keys()]).toEqual(['svc']);
    expect(renderTable([], 'svc' as ProjectName)).toBe('svc: no releases recorded yet');
  });

  it('shows whether each release was verified, signed or unsigned (- before provenance existed)', async () => {
    const store = openStore(parseStoreUrl(`file://${tempDir('rel-')}`));
    const withProvenance = (v: string, provenance: { signed: boolean; verified: boolean; rules: string[] }) => {
      const d = draft(v as Version);
      return { ...d, environment: 'prod' as EnvironmentName, artifact: { ...d.artifact, provenance } };
    };
    await appendEntry(store, { ...draft('1' as Version), environment: 'prod' as EnvironmentName });
    await appendEntry(store, withProvenance('2', { signed: false, verified: false, rules: [] }));
    await appendEntry(store, withProvenance('3', { signed: true, verified: false, rules: [] }));
    await appendEntry(
      store,
      withProvenance('4', { signed: true, verified: true, rules: ['present', 'envelope', 'signature', 'statement', 'subject', 'builder', 'ref'] }),
    );
    const rows = await collectReleases({ store, project: 'svc' as ProjectName, env: 'prod' as EnvironmentName });
    expect(rows.map((r) => [r.version, r.provenance])).toEqual([
      ['4', 'verified'],
      ['3', 'signed'],
      ['2', 'unsigned'],
      ['1', '-'],
    ]);
    expect(renderMarkdown(rows, 'svc' as ProjectName)).toContain('| prod | 4 | 4 | ok | verified |');
  });

  it('the workspace base commit is the merge-base of the commits current in the environment', async () => {
    const { dir, commits } = gitRepo();
    const store = openStore(parseStoreUrl(`file://${tempDir('rel-')}`));
    expect(await baseCommitForEnv({ store, env: 'prod' as EnvironmentName, workspaceRoot: dir })).toBeUndefined();
    await appendEntry(store, { ...draft('1' as Version), project: 'a' as ProjectName, commit: commits[2]! });
    expect(await baseCommitForEnv({ store, env: 'prod' as EnvironmentName, workspaceRoot: dir })).toBe(commits[2]);
    await appendEntry(store, { ...draft('2' as Version), project: 'b' as ProjectName, commit: commits[0]! });
    await appendEntry(store, { ...draft('3' as Version), project: 'c' as ProjectName, commit: commits[1]! });
    expect(await baseCommitForEnv({ store, env: 'prod' as EnvironmentName, workspaceRoot: dir })).toBe(commits[0]);
    await appendEntry(store, { ...draft('4' as Version), project: 'd' as ProjectName, commit: 'f'.repeat(40) });
    await expect(baseCommitForEnv({ store, env: 'prod' as EnvironmentName, workspaceRoot: dir })).rejects.toThrow(/fetch-depth: 0/);
  });
});

describe('releases with a path-like project name', () => {
  it('is an error on the file store, not an empty list', async () => {
    const dir = tempDir('releases-dotdot-');
    const store = openStore(parseStoreUrl(`file://${join(dir, 'store')}`));
    await appendEntry(store, draft('1' as Version, { project: 'x' as ProjectName, environment: 'dev' as EnvironmentName }));
    // the edge (executor, CLI) refuses it with one line; a value forged past the edge still fails in the store
    expect(() => parseProjectName('../x')).toThrow(/project name "..\/x" cannot be used by buildonce/);
    await expect(collectReleases({ store, project: '../x' as ProjectName })).rejects.toThrow(/invalid store key prefix/);
    await expect(collectReleases({ store, project: 'x' as ProjectName })).resolves.toHaveLength(1);
  });
});
