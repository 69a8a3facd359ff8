import type { DeployResult } from '@buildonce/deploy';
import { boundMeasurements, combineDecisions, decideCheck, fmt, type CheckDecision } from './analysis';
import { type Analysis, type Measurement } from '@buildonce/ledger';
import { alarmTargets, measureAlarms } from './alarm-check';
import type { VerifyCheck } from '@buildonce/config';
import type { Verification } from '@buildonce/ledger';
import { measurementSettings, type MeasuredCheck, type MeasurementSettings } from '@buildonce/config';
import type { MeasureContext, Reading } from './measure-context';
import { measureMetric, metricLabel } from './metric-check';

/**
 * Verification over time (docs/promotion.md "Alarm and metric checks", "Stepped canary"): the
 * one-look checks run at the start (and, with a canary, again after the last step); the measured
 * checks (alarm, metric) take a measurement every `intervalSeconds` through every step; a failed
 * check stops at once (the caller restores the previous version), an inconclusive one is decided at
 * the end by its `onInconclusive`. With a stepped canary each step first moves the alias weight to
 * the step's percent. SIGINT / SIGTERM during a step end the verification as a failure.
 */

/** One canary step (or the single step of a promotion without canary). */
export interface Step {
  percent: number;
  minutes: number;
}

/** When a check measures within a step, ms after the step starts (pure). */
export function measurementTimes(s: Pick<MeasurementSettings, 'intervalMs' | 'count'>, windowMs: number): number[] {
  const count = s.count ?? (windowMs > 0 ? Math.max(1, Math.floor(windowMs / s.intervalMs)) : 1);
  return Array.from({ length: count }, (_, k) => (k + 1) * s.intervalMs);
}

/** Label of a measured check (logs, the history's `check`); with `facts` the alarm names are expanded. */
export function measuredLabel(c: MeasuredCheck, facts?: Pick<MeasureContext, 'project' | 'environment' | 'version'>): string {
  if (c.kind === 'metric') return `metric ${metricLabel(c)}`;
  const t = facts ? alarmTargets(c, facts) : { names: c.alarms ?? [], prefix: c.alarmPrefix };
  return `alarm ${[...t.names, ...(t.prefix !== undefined ? [`${t.prefix}*`] : [])].join(', ')}`;
}

/** Outcome of the measured part of a verification. */
export interface SteppedOutcome {
  /** the deploy result after the last weight shift */
  result: DeployResult;
  analysis: Analysis;
  measurements: number;
  /** set when the verification must not promote: the one-line reason */
  failure?: string;
  /** what to do about `failure` */
  onFailure?: 'rollback' | 'hold';
  /** the deciding check's kind */
  kind: 'alarm' | 'metric';
}

interface CheckRun {
  check: MeasuredCheck;
  label: string;
  settings: MeasurementSettings;
  measurements: Measurement[];
  calls: number;
}

/**
 * Runs the measured checks through the steps. `shift(percent)` moves a running canary to the step's
 * weight (steps after the first); `signal` resolves with a signal's name to interrupt.
 */
export async function runSteps(o: {
  checks: MeasuredCheck[];
  steps: Step[];
  canary: boolean;
  started: DeployResult;
  measure: Omit<MeasureContext, 'lambda'>;
  shift?: (percent: number) => Promise<DeployResult>;
  log: (line: string) => void;
  signal: Promise<string>;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}): Promise<SteppedOutcome> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let result = o.started;
  const runs: CheckRun[] = o.checks.map((check) => ({
    check,
    label: measuredLabel(check, o.measure),
    settings: measurementSettings(check),
    measurements: [],
    calls: 0,
  }));
  const all: Measurement[] = [];
  const stepOf = (n: number) => (o.canary && o.steps.length > 0 ? ` at step ${n}` : '');
  const finish = (
    r: Omit<SteppedOutcome, 'analysis' | 'measurements' | 'result' | 'kind'> & {
      result: Analysis['result'];
      action: Analysis['action'];
      summary: string;
      step?: number;
      kind: 'alarm' | 'metric';
    },
  ): SteppedOutcome => {
    const bounded = boundMeasurements(all);
    const analysis: Analysis = {
      result: r.result,
      action: r.action,
      summary: r.summary,
      ...(r.step ? { step: r.step } : {}),
      steps: o.steps.length,
      checks: runs.map((x) => ({
        check: x.label,
        kind: x.check.kind,
        result: decideOf(x, true) as Analysis['result'],
        measurements: x.measurements.length,
        failed: x.measurements.filter((m) => m.verdict === 'failed').length,
        inconclusive: x.measurements.filter((m) => m.verdict === 'inconclusive').length,
        calls: x.calls,
      })),
      measurements: bounded.measurements,
      omitted: bounded.omitted,
    };
    return { result, analysis, measurements: all.length, kind: r.kind, ...(r.failure ? { failure: r.failure, onFailure: r.onFailure } : {}) };
  };
  const decideOf = (x: CheckRun, complete: boolean) =>
    decideCheck(
      x.measurements.map((m) => m.verdict),
      x.settings,
      complete,
    );
  const waitUntil = async (t: number): Promise<string | undefined> => {
    const ms = t - now();
    if (ms <= 0) return Promise.race([o.signal, Promise.resolve(undefined)]);
    return Promise.race([o.signal, sleep(ms).then(() => undefined)]);
  };

  for (let i = 0; i < o.steps.length; i++) {
    const step = o.steps[i]!;
    const n = i + 1;
    if (i > 0 && o.shift) {
      try {
        result = await o.shift(step.percent);
      } catch (e) {
        const why = `canary shift to ${step.percent}% failed at step ${n}: ${((e as Error).message ?? String(e)).split('\n')[0]}`;
        return finish({
          result: 'failed',
          action: 'rollback',
          summary: why,
          step: n,
          failure: why,
          onFailure: 'rollback',
          kind: runs[0]?.check.kind ?? 'metric',
        });
      }
    }
    const lambda =
      result.target === 'lambda'
        ? {
            functionName: result.functionName,
            alias: result.alias,
            executedVersion: result.functionVersion,
            ...(result.canary ? { baselineVersion: result.canary.stableVersion } : {}),
          }
        : undefined;
    const ctx: MeasureContext = { ...o.measure, ...(lambda ? { lambda } : {}) };
    const windowMs = o.canary ? step.minutes * 60_000 : 0;
    const plan = runs.map((x) => measurementTimes(x.settings, windowMs));
    const stepLen = Math.max(windowMs, ...plan.map((t) => t[t.length - 1] ?? 0));
    if (o.canary)
      o.log(
        `canary: step ${n}/${o.steps.length}: ${step.percent}% on version ${lambda?.executedVersion ?? '?'} for ${fmt(stepLen / 60_000)} min (Ctrl-C ends it and restores ${lambda?.baselineVersion ?? 'the previous version'})`,
      );
    const t0 = now();
    const times = [...new Set(plan.flat())].sort((a, b) => a - b);
    for (const t of times) {
      const sig = await waitUntil(t0 + t);
      if (sig) return interrupted(sig, n);
      const due = runs.filter((_, k) => plan[k]!.includes(t));
      const readings = await Promise.all(
        due.map((x) => (x.check.kind === 'alarm' ? measureAlarms(x.check, ctx) : measureMetric(x.check, ctx, x.settings.intervalMs))),
      );
      const at = new Date(now()).toISOString();
      due.forEach((x, k) => record(x, readings[k]!, n, at));
      const failed = due.find((x) => decideOf(x, false) === 'failed');
      if (failed) {
        const last = [...failed.measurements].reverse().find((m) => m.verdict === 'failed')!;
        const summary = `${failed.label.startsWith('alarm') ? 'alarm' : failed.label} ${last.detail}${stepOf(n)}`;
        return finish({
          result: 'failed',
          action: failed.settings.onFailure,
          summary,
          step: n,
          failure: summary,
          onFailure: failed.settings.onFailure,
          kind: failed.check.kind,
        });
      }
    }
    const sig = await waitUntil(t0 + stepLen);
    if (sig) return interrupted(sig, n);
  }

  const decisions: (CheckDecision & { run: CheckRun })[] = runs.map((x) => ({
    run: x,
    result: decideOf(x, true) as CheckDecision['result'],
    onFailure: x.settings.onFailure,
    onInconclusive: x.settings.onInconclusive,
  }));
  const d = combineDecisions(decisions);
  if (d.result === 'inconclusive') {
    const x = decisions.find((y) => y.result === 'inconclusive')!.run;
    const inc = x.measurements.filter((m) => m.verdict === 'inconclusive');
    const why = inc.length ? inc[inc.length - 1]!.detail : 'nothing measured';
    const summary = `${x.label} inconclusive: ${why} (${inc.length} of ${x.measurements.length} measurement(s) inconclusive, inconclusiveLimit ${x.settings.inconclusiveLimit}); onInconclusive ${d.action}`;
    if (d.action === 'promote') {
      o.log(`verify: ${summary}`);
      return finish({ result: 'inconclusive', action: 'promote', summary, kind: x.check.kind });
    }
    return finish({ result: 'inconclusive', action: d.action, summary, failure: summary, onFailure: d.action, kind: x.check.kind });
  }
  const summary = `${runs.map((x) => `${x.label} ×${x.measurements.length}`).join(', ')} passed`;
  return finish({ result: 'passed', action: 'promote', summary, kind: runs[runs.length - 1]?.check.kind ?? 'metric' });

  function record(x: CheckRun, r: Reading, step: number, at: string): void {
    const m: Measurement = {
      check: x.label,
      step,
      at,
      verdict: r.verdict,
      ...(r.value !== undefined ? { value: r.value } : {}),
      ...(r.baseline !== undefined ? { baseline: r.baseline } : {}),
      ...(r.samples !== undefined ? { samples: r.samples } : {}),
      calls: r.calls,
      detail: r.detail,
    };
    x.measurements.push(m);
    x.calls += r.calls;
    all.push(m);
    o.log(
      `measure: ${x.label}${stepOf(step)} #${x.measurements.length}: ${r.detail}${r.samples !== undefined && r.verdict !== 'inconclusive' ? ` (${fmt(r.samples)} samples)` : ''} → ${r.verdict}`,
    );
  }

  function interrupted(sig: string, n: number): SteppedOutcome {
    const why = `canary interrupted by ${sig}${stepOf(n)}`;
    return finish({ result: 'failed', action: 'rollback', summary: why, step: n, failure: why, onFailure: 'rollback', kind: runs[0]?.check.kind ?? 'metric' });
  }
}

/** Verification record of a stepped run plus the one-look checks' record (if any). */
export function steppedVerification(o: { outcome: SteppedOutcome; oneShot?: Verification; oneShotFailed?: boolean; durationMs: number }): Verification {
  const s = o.outcome;
  const passed = !s.failure && !o.oneShotFailed;
  const kind = o.oneShotFailed && o.oneShot ? o.oneShot.kind : s.kind;
  const detail = o.oneShotFailed && o.oneShot ? o.oneShot.detail : o.oneShot && passed ? `${s.analysis.summary}; ${o.oneShot.detail}` : s.analysis.summary;
  return {
    kind,
    passed,
    attempts: (o.oneShot?.attempts ?? 0) + s.measurements,
    durationMs: Math.max(0, Math.round(o.durationMs)),
    detail: detail.slice(0, 400),
    analysis: s.analysis,
  };
}

/** True when a canary or verification needs the stepped runner (measured checks, or more than one step). */
export function needsSteps(checks: VerifyCheck[], steps: Step[] | undefined): boolean {
  return checks.some((c) => c.kind === 'alarm' || c.kind === 'metric') || (steps?.length ?? 0) > 1;
}
