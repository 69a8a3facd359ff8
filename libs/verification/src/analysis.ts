import { MAX_RECORDED_MEASUREMENTS, type AnalysisResult, type Measurement, type Verdict } from '@buildonce/ledger';

/**
 * Decisions over the measured checks (alarm, metric) of one verification: pure functions of the
 * measurements so far (the kargo / Argo Rollouts analysis model). The recorded shapes are
 * @buildonce/ledger's analysis-record.ts.
 */

/** Limits of one check's analysis. */
export interface AnalysisLimits {
  failureLimit: number;
  inconclusiveLimit: number;
}

/**
 * Decides one check's analysis from its verdicts so far (pure).
 * - `failed` as soon as failed measurements exceed `failureLimit` (also mid-run: the canary stops);
 * - while `complete` is false otherwise `running`;
 * - at the end `inconclusive` when inconclusive measurements exceed `inconclusiveLimit`, or when
 *   nothing was measured (no measurement is not a pass); else `passed`.
 */
export function decideCheck(verdicts: readonly Verdict[], limits: AnalysisLimits, complete: boolean): AnalysisResult | 'running' {
  let failed = 0;
  let inconclusive = 0;
  for (const v of verdicts) {
    if (v === 'failed') failed++;
    else if (v === 'inconclusive') inconclusive++;
  }
  if (failed > limits.failureLimit) return 'failed';
  if (!complete) return 'running';
  if (inconclusive > limits.inconclusiveLimit || verdicts.length === 0) return 'inconclusive';
  return 'passed';
}

/** What a check's result asks for (from its `onFailure` / `onInconclusive`). */
export interface CheckDecision {
  result: AnalysisResult;
  onFailure: 'rollback' | 'hold';
  onInconclusive: 'rollback' | 'hold' | 'promote';
}

/**
 * Combines the checks' results into the verification's (pure): any `failed` check fails it (its
 * `onFailure`; `rollback` wins over `hold` when several failed); else any `inconclusive` makes it
 * inconclusive and the strictest `onInconclusive` of those checks decides (rollback > hold > promote);
 * else it passed. No checks: passed.
 */
export function combineDecisions(ds: readonly CheckDecision[]): { result: AnalysisResult; action: 'promote' | 'rollback' | 'hold' } {
  const failed = ds.filter((d) => d.result === 'failed');
  if (failed.length) return { result: 'failed', action: failed.some((d) => d.onFailure === 'rollback') ? 'rollback' : 'hold' };
  const inc = ds.filter((d) => d.result === 'inconclusive');
  if (inc.length) {
    const rank = { rollback: 2, hold: 1, promote: 0 } as const;
    const worst = inc.reduce((a, d) => (rank[d.onInconclusive] > rank[a] ? d.onInconclusive : a), 'promote' as CheckDecision['onInconclusive']);
    return { result: 'inconclusive', action: worst };
  }
  return { result: 'passed', action: 'promote' };
}

/**
 * Bounds a series for the history entry (pure): keeps every failed and inconclusive measurement and
 * fills up with the newest passed ones, at most `max`, in time order.
 * @returns the kept measurements and how many were left out
 */
export function boundMeasurements(ms: readonly Measurement[], max = MAX_RECORDED_MEASUREMENTS): { measurements: Measurement[]; omitted: number } {
  if (ms.length <= max) return { measurements: [...ms], omitted: 0 };
  const idx = ms.map((m, i) => ({ m, i }));
  const bad = idx.filter((x) => x.m.verdict !== 'passed');
  const keep = new Set<number>();
  // the failing measurements first: the newest of them when even they do not fit
  for (const x of bad.slice(-max)) keep.add(x.i);
  for (let i = ms.length - 1; i >= 0 && keep.size < max; i--) keep.add(i);
  const measurements = idx.filter((x) => keep.has(x.i)).map((x) => x.m);
  return { measurements, omitted: ms.length - measurements.length };
}

/** A number for a one-line message: at most 4 significant digits, no exponent for ordinary values. */
export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return String(Number(n.toPrecision(4)));
}
