import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BuildonceError } from '@buildonce/errors';

/** Waiting for another task's hold on a build output took longer than allowed. */
export class OutputLockTimeoutError extends BuildonceError {
  override name = 'OutputLockTimeoutError';
}

/** What the lock file says about its holder. */
interface Holder {
  pid: number;
  task: string;
  since: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `fn` while holding `<outputDir>.lock`, so that tasks of one workspace that write or read one
 * project's build output take turns. Without it, two `nx run p:promote` in one checkout (two terminals,
 * two CI steps) both rebuild into the same directory: each build first empties it, so the other task's
 * publish or promote finds `artifact.json` missing. The lock file sits next to the output directory, not in
 * it (so Nx never caches it), and records the holder's pid, task and start time; a holder whose process is
 * gone is stale and taken over. A waiting task logs one line naming what it waits for.
 * @param outputDir absolute build output directory
 * @param task who takes it, for the other side's message (`express-api:build`)
 * @param o.waitMs how long to wait for another holder (default 30 min), o.pollMs how often to look (default 250 ms)
 * @param o.reader a task that only reads the output (publish, promote): when the folder the lock would sit in
 *   does not exist, no build can be running (a build creates it to take the lock), so `fn` runs without a lock
 *   and nothing is created (its "run build first" failure leaves the workspace as it was)
 * @throws OutputLockTimeoutError when another live task holds it longer than `waitMs`
 */
export async function withOutputLock<T>(
  outputDir: string,
  task: string,
  log: (line: string) => void,
  fn: () => Promise<T>,
  o: { waitMs?: number; pollMs?: number; reader?: boolean } = {},
): Promise<T> {
  const path = `${outputDir.replace(/\/+$/, '')}.lock`;
  const waitMs = o.waitMs ?? 30 * 60_000;
  const pollMs = o.pollMs ?? 250;
  if (o.reader && !existsSync(dirname(path))) return fn();
  await mkdir(dirname(path), { recursive: true });
  const deadline = Date.now() + waitMs;
  let announced = '';
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      const me: Holder = { pid: process.pid, task, since: new Date().toISOString() };
      await fh.writeFile(JSON.stringify(me));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = await readFile(path, 'utf8')
      .then((t) => JSON.parse(t) as Holder)
      .catch(() => undefined);
    if (holder && Number.isInteger(holder.pid) && !alive(holder.pid)) {
      // its process is gone: stale (two waiters taking over the same stale lock at once is not guarded)
      await rm(path, { force: true });
      continue;
    }
    const who = holder ? `${holder.task} (pid ${holder.pid}, since ${holder.since})` : 'another task';
    if (Date.now() >= deadline) {
      throw new OutputLockTimeoutError(
        `${task}: ${who} has held ${path} for over ${Math.round(waitMs / 1000)} s: wait for it, or delete the file if that process is gone`,
      );
    }
    // an unreadable holder is most likely one that is still writing its lock file: look again before saying so
    if (holder && announced !== who) {
      announced = who;
      log(`${task}: waiting for ${who}, which is using ${outputDir} in this workspace (lock ${path})`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  try {
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}
