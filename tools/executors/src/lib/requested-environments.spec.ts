import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskGraph } from '@nx/devkit';
import { afterAll, describe, expect, it } from 'vitest';
import { checkRequestedEnvironments, requestedEnvironments } from './requested-environments';

const root = mkdtempSync(join(tmpdir(), 'requested-env-'));
writeFileSync(
  join(root, 'buildonce.json'),
  JSON.stringify({ environments: [{ name: 'dev' }, { name: 'prod', requires: ['dev'] }], preview: { enabled: true } }),
);
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The task graph Nx gives the executors of `nx run api:promote --env=<env>` (build → publish → promote). */
function graph(project: string, env: unknown): { taskGraph: TaskGraph } {
  const task = (target: string, overrides: Record<string, unknown>) => ({
    id: `${project}:${target}`,
    target: { project, target },
    overrides,
    outputs: [],
    projectRoot: `apps/${project}`,
    parallelism: true,
  });
  return {
    taskGraph: {
      roots: [`${project}:build`],
      tasks: {
        [`${project}:build`]: task('build', {}),
        [`${project}:publish`]: task('publish', {}),
        [`${project}:promote`]: task('promote', { env }),
        'other:promote': { ...task('promote', { env: 'Nope' }), id: 'other:promote', target: { project: 'other', target: 'promote' } },
      },
      dependencies: {},
      continuousDependencies: {},
    } as unknown as TaskGraph,
  };
}

describe('environments a run will promote to, checked before publish uploads', () => {
  it("reads the project's own --env overrides only", () => {
    expect(requestedEnvironments(graph('api', 'prod'), 'api')).toEqual(['prod']);
    expect(requestedEnvironments(graph('api', 'prod'), 'none')).toEqual([]);
    expect(requestedEnvironments({ taskGraph: undefined }, 'api')).toEqual([]);
  });

  it('accepts configured and preview environments, refuses typos, bad names and numbers in one line', async () => {
    await expect(checkRequestedEnvironments(graph('api', 'prod'), 'api', root, {})).resolves.toBeUndefined();
    await expect(checkRequestedEnvironments(graph('api', 'pr-12'), 'api', root, {})).resolves.toBeUndefined();
    await expect(checkRequestedEnvironments(graph('api', 'prdo'), 'api', root, {})).rejects.toThrow(
      /^unknown environment "prdo": known environments are dev, prod and previews pr-<n>/,
    );
    await expect(checkRequestedEnvironments(graph('api', '../prod'), 'api', root, {})).rejects.toThrow(/^invalid environment name "\.\.\/prod"/);
    await expect(checkRequestedEnvironments(graph('api', 123), 'api', root, {})).rejects.toThrow(/^invalid environment name "123"/);
    await expect(checkRequestedEnvironments(graph('api', true), 'api', root, {})).rejects.toThrow(/no environment given/);
  });
});
