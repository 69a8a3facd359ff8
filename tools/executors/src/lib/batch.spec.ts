import type { ExecutorContext, TaskGraph } from '@nx/devkit';
import { describe, expect, it } from 'vitest';
import { batchExecutor, type BatchTaskResult } from './batch';

/** A batch task graph of `publish` tasks; `deps` maps a project to the projects whose publish it depends on. */
function graph(projects: string[], deps: Record<string, string[]> = {}): TaskGraph {
  const id = (p: string) => `${p}:publish`;
  const tasks = Object.fromEntries(
    projects.map((p) => [id(p), { id: id(p), target: { project: p, target: 'publish' }, overrides: {}, outputs: [], parallelism: true }]),
  );
  const dependencies = Object.fromEntries(projects.map((p) => [id(p), (deps[p] ?? []).map(id)]));
  return { roots: projects.filter((p) => !deps[p]?.length).map(id), tasks, dependencies, continuousDependencies: {} } as unknown as TaskGraph;
}

const context = { root: '/ws', cwd: '/ws', isVerbose: false, projectsConfigurations: { version: 2, projects: {} } } as unknown as ExecutorContext;

async function collect(it: AsyncIterable<BatchTaskResult>): Promise<BatchTaskResult[]> {
  const out: BatchTaskResult[] = [];
  for await (const r of it) out.push(r);
  return out;
}

describe('batchExecutor', () => {
  it('runs every task once with its own options and project context, capturing its lines as its terminal output', async () => {
    const seen: string[] = [];
    const run = batchExecutor<{ n: number }>(async (o, ctx, out) => {
      seen.push(`${ctx.projectName}:${ctx.targetName}:${o.n}`);
      out.log(`[${ctx.projectName}] published ${o.n}`);
      return true;
    });
    const g = graph(['a', 'b', 'c']);
    const results = await collect(run(g, { 'a:publish': { n: 1 }, 'b:publish': { n: 2 }, 'c:publish': { n: 3 } }, {}, context));
    expect(seen.sort()).toEqual(['a:publish:1', 'b:publish:2', 'c:publish:3']);
    expect(results.map((r) => r.task).sort()).toEqual(['a:publish', 'b:publish', 'c:publish']);
    const b = results.find((r) => r.task === 'b:publish')!;
    expect(b.result).toMatchObject({ success: true, terminalOutput: '[b] published 2\n' });
    expect(b.result.endTime).toBeGreaterThanOrEqual(b.result.startTime);
  });

  it('never runs more than `concurrency` tasks at once and yields results as tasks finish', async () => {
    let running = 0;
    let peak = 0;
    const delays: Record<string, number> = { a: 60, b: 5, c: 30, d: 5, e: 5 };
    const run = batchExecutor(async (_o, ctx) => {
      peak = Math.max(peak, ++running);
      await new Promise((r) => setTimeout(r, delays[ctx.projectName!]));
      running--;
      return true;
    }, 2);
    const results = await collect(run(graph(Object.keys(delays)), {}, {}, context));
    expect(peak).toBe(2);
    expect(results).toHaveLength(5);
    // a (60 ms) started first but finished last
    expect(results.at(-1)!.task).toBe('a:publish');
  });

  it('runs a task after the tasks it depends on inside the batch, and not at all when one of them failed', async () => {
    const order: string[] = [];
    const run = batchExecutor(async (_o, ctx, out) => {
      order.push(ctx.projectName!);
      if (ctx.projectName === 'lib') {
        out.error('[lib] store refused the write');
        return false;
      }
      return true;
    });
    const g = graph(['app', 'lib', 'base', 'top'], { app: ['lib'], top: ['base'] });
    const results = await collect(run(g, {}, {}, context));
    const by = Object.fromEntries(results.map((r) => [r.task, r.result]));
    expect(by['lib:publish']).toMatchObject({ success: false, terminalOutput: '[lib] store refused the write\n' });
    expect(by['app:publish']).toMatchObject({ success: false, terminalOutput: '[app] not run: lib:publish failed\n' });
    expect(by['top:publish']!.success).toBe(true);
    expect(order).not.toContain('app');
    expect(order.indexOf('base')).toBeLessThan(order.indexOf('top'));
  });

  it('turns a runner that throws into a failed task whose output says it is a bug, and still finishes the others', async () => {
    const run = batchExecutor(async (_o, ctx) => {
      if (ctx.projectName === 'x') throw new TypeError('cannot read properties of undefined');
      return true;
    });
    const results = await collect(run(graph(['x', 'y']), {}, {}, context));
    const x = results.find((r) => r.task === 'x:publish')!.result;
    expect(x.success).toBe(false);
    expect(x.terminalOutput).toContain('[x] TypeError: cannot read properties of undefined');
    expect(x.terminalOutput).toContain('this is a bug in buildonce');
    expect(results.find((r) => r.task === 'y:publish')!.result.success).toBe(true);
  });
});
