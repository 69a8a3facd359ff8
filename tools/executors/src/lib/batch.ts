import type { ExecutorContext, TaskGraph } from '@nx/devkit';
import pLimit from 'p-limit';
import { describeFailure } from '@buildonce/errors';

/** Where one task of a batch writes its lines (captured into that task's terminal output). */
export interface TaskOutput {
  log: (line: string) => void;
  error: (line: string) => void;
}

/** Output of a task run on its own: stdout and stderr (Nx captures them). */
export const consoleOutput: TaskOutput = { log: (l) => console.log(l), error: (l) => console.error(l) };

/** One task's body in a batch: the same work the single-task executor does; resolves to its success. */
export type BatchTaskRunner<T> = (options: T, context: ExecutorContext, out: TaskOutput) => Promise<boolean>;

/** What Nx expects from each batch result (nx `BatchExecutorTaskResult`). */
export interface BatchTaskResult {
  task: string;
  result: { success: boolean; terminalOutput: string; startTime: number; endTime: number };
}

/**
 * Builds an Nx batch executor (executors.json `batchImplementation` + `preferBatch: true`; the Nx
 * `TaskGraphExecutor` contract: `(taskGraph, optionsByTaskId, overrides, context)` → an async iterator of
 * `{ task, result }`). Nx then runs every task of that executor in ONE process instead of forking one process
 * per task, which is what makes `nx run-many -t publish` with everything already published cost little more
 * than the Nx run itself.
 * - `concurrency` tasks run at once (they are I/O bound: store HEADs and uploads);
 * - a task starts only after the tasks it depends on inside the batch succeeded; when one failed it fails
 *   without running (one line saying which);
 * - each task's lines go to its own `terminalOutput` (Nx prints it under the task and stores it), results
 *   are yielded as tasks finish; `startTime`/`endTime` are epoch ms.
 * The per-task context is the batch context with that task's `projectName`, `targetName`, `configurationName`
 * (and `isVerbose` from `--verbose`, which Nx passes to a batch as NX_VERBOSE_LOGGING).
 */
export function batchExecutor<T>(run: BatchTaskRunner<T>, concurrency = 4) {
  return async function* batch(
    taskGraph: TaskGraph,
    inputs: Record<string, T>,
    _overrides: unknown,
    context: ExecutorContext,
  ): AsyncGenerator<BatchTaskResult> {
    const limit = pLimit(concurrency);
    const done = new Map<string, Promise<boolean>>();
    const finished: BatchTaskResult[] = [];
    let wake: (() => void) | undefined;

    const start = (id: string): Promise<boolean> => {
      const existing = done.get(id);
      if (existing) return existing;
      const deps = (taskGraph.dependencies[id] ?? []).filter((d) => d in taskGraph.tasks);
      const p = Promise.all(deps.map(start)).then(async (depOk) => {
        const lines: string[] = [];
        const out: TaskOutput = { log: (l) => lines.push(l), error: (l) => lines.push(l) };
        const task = taskGraph.tasks[id]!;
        const startTime = Date.now();
        let success = false;
        const failedDep = deps.find((_, i) => !depOk[i]);
        if (failedDep) {
          out.error(`[${task.target.project}] not run: ${failedDep} failed`);
        } else {
          // Nx gives a batch no isVerbose: `--verbose` reaches it as NX_VERBOSE_LOGGING
          const isVerbose = context.isVerbose || process.env.NX_VERBOSE_LOGGING === 'true';
          const taskContext = {
            ...context,
            isVerbose,
            projectName: task.target.project,
            targetName: task.target.target,
            configurationName: task.target.configuration,
          };
          success = await limit(() => run(inputs[id] as T, taskContext, out)).catch((e: unknown) => {
            // runners report their own failures; anything thrown here is a bug: its stack goes to this task's output
            for (const l of describeFailure(e, { prefix: `[${task.target.project}] ` }).lines) out.error(l);
            return false;
          });
        }
        finished.push({ task: id, result: { success, terminalOutput: lines.map((l) => `${l}\n`).join(''), startTime, endTime: Date.now() } });
        wake?.();
        return success;
      });
      done.set(id, p);
      return p;
    };

    const ids = Object.keys(taskGraph.tasks);
    const all = Promise.all(ids.map(start));
    let yielded = 0;
    while (yielded < ids.length) {
      if (finished.length === 0) {
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
        continue;
      }
      yielded++;
      yield finished.shift()!;
    }
    await all;
  };
}
