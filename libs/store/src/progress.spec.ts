import { describe, expect, it } from 'vitest';
import { transferProgress } from './progress';

const MB = 1_000_000;

describe('transferProgress', () => {
  it('off a terminal: one log line per 10 % step, whatever the chunking (and none for small files)', () => {
    for (const chunk of [1, 3, 7, 13, 50]) {
      const lines: string[] = [];
      let t = 0;
      const p = transferProgress({ label: 'uploading a.zip', log: (l) => lines.push(l), tty: { isTTY: false, write: () => true }, now: () => t });
      const total = 100 * MB;
      for (let done = 0; done < total;) {
        const next = Math.min(total, done + chunk * MB);
        t += ((next - done) / MB) * 100; // 10 MB/s
        done = next;
        p(done, total);
      }
      p.done();
      const steps = lines.map((l) => Number(/: (\d+)% of 100\.0 MB/.exec(l)![1]));
      expect(steps).toEqual([...new Set(steps)].sort((a, b) => a - b));
      expect(steps.at(-1)).toBe(100);
      expect(steps.length).toBeLessThanOrEqual(11);
      expect(lines.at(-1)).toMatch(/10\.0 MB\/s$/);
    }
    const small: string[] = [];
    transferProgress({ label: 'x', log: (l) => small.push(l), tty: { isTTY: false, write: () => true } })(1, 1000);
    expect(small).toEqual([]);
  });

  it('on a terminal: a live line with bytes, rate and ETA, at most every 250 ms, ended by done()', () => {
    const out: string[] = [];
    let t = 1000;
    const p = transferProgress({ label: 'downloading b.tgz', log: () => expect.unreachable(), tty: { isTTY: true, write: (s) => out.push(s) }, now: () => t });
    p(0, 200 * MB);
    t += 100;
    p(1 * MB, 200 * MB); // within 250 ms: not drawn
    t += 900;
    p(50 * MB, 200 * MB);
    p.done();
    expect(out).toHaveLength(3);
    expect(out[1]).toBe('\r\x1b[Kdownloading b.tgz: 50.0 MB of 200.0 MB (25%), 50.0 MB/s, ETA 3 s');
    expect(out[2]).toBe('\n');
  });
});
