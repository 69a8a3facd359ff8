import { formatBytes as bytes } from './artifacts';
import type { ProgressFn } from './blob';

/** Files below this size (bytes) report no progress: they take well under a second. */
export const PROGRESS_MIN_BYTES = 8 * 1024 * 1024;

export interface TransferProgressOptions {
  /** what moves, e.g. `uploading bootstrap.zip` or `downloading app.tar.gz` */
  label: string;
  /** one line per step (the command's log): used when `tty` is not a terminal */
  log: (line: string) => void;
  /** where the live line goes when it is a terminal (default: process.stderr) */
  tty?: { isTTY?: boolean; write(s: string): unknown };
  /** ms clock (tests) */
  now?: () => number;
  /** files smaller than this (bytes) report nothing (default {@link PROGRESS_MIN_BYTES}) */
  minBytes?: number;
}

/** A progress callback plus `done()`, which ends a terminal's live line. */
export type TransferProgress = ProgressFn & { done(): void };

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.ceil(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/**
 * Progress of one long transfer. On a terminal: one live line rewritten at most every 250 ms with
 * bytes done, rate and ETA (`uploading x.zip: 52.4 MB of 209.7 MB (25%), 31.2 MB/s, ETA 5 s`),
 * ended by `done()`. Elsewhere (CI logs): one `log` line per 10 % step
 * (`uploading x.zip: 30% of 209.7 MB, 31.2 MB/s`). Bytes may go back (a retried part); the rate
 * is the average since the first call (bytes reported then excluded). Transfers below `minBytes` report nothing.
 */
export function transferProgress(o: TransferProgressOptions): TransferProgress {
  const now = o.now ?? Date.now;
  const tty = o.tty ?? process.stderr;
  const live = !!tty.isTTY;
  const min = o.minBytes ?? PROGRESS_MIN_BYTES;
  let start: number | undefined;
  let startLoaded = 0;
  let lastStep = -1;
  let lastDraw = 0;
  let drawn = false;
  const fn = ((loaded: number, total: number) => {
    if (total < min) return;
    const t = now();
    if (start === undefined) {
      start = t;
      startLoaded = loaded;
    }
    const secs = Math.max((t - start) / 1000, 1e-3);
    const rate = Math.max(0, loaded - startLoaded) / secs;
    if (live) {
      if (t - lastDraw < 250 && loaded < total) return;
      lastDraw = t;
      const eta = rate > 0 ? (total - loaded) / rate : Infinity;
      tty.write(`\r\x1b[K${o.label}: ${bytes(loaded)} of ${bytes(total)} (${Math.floor((loaded / total) * 100)}%), ${bytes(rate)}/s, ETA ${duration(eta)}`);
      drawn = true;
      return;
    }
    const step = Math.floor((loaded / total) * 10) * 10;
    if (step <= lastStep) return;
    lastStep = step;
    o.log(`${o.label}: ${step}% of ${bytes(total)}${t > start ? `, ${bytes(rate)}/s` : ''}`);
  }) as TransferProgress;
  fn.done = () => {
    if (drawn) tty.write('\n');
    drawn = false;
  };
  return fn;
}
