import { z } from 'zod';

/**
 * buildonce.json shapes of the measured checks (docs/promotion.md "Alarm and metric checks"): checks
 * that take measurements over time — CloudWatch alarm states (`alarm`) and CloudWatch metrics of the
 * new version (`metric`) — with the measurement settings of Argo Rollouts / Kargo analysis
 * (`intervalSeconds`, `count`, `failureLimit`, `inconclusiveLimit`) plus `minSamples`.
 */

/** What a check's `inconclusive` result does at the end of the verification. */
export const onInconclusiveSchema = z.enum(['rollback', 'hold', 'promote']);
export type OnInconclusive = z.infer<typeof onInconclusiveSchema>;

/** Settings every measured check has (defaults in {@link measurementSettings}). */
const measured = {
  /** projects this check applies to (Nx names); default: every project promoted to the environment */
  projects: z.array(z.string().min(1)).min(1).optional(),
  /** what a failed check does: `rollback` (default) or `hold` */
  onFailure: z.enum(['rollback', 'hold']).optional(),
  /** what an inconclusive check does at the end: `rollback` (default), `hold`, `promote` */
  onInconclusive: onInconclusiveSchema.optional(),
  /** seconds between measurements (default 60) */
  intervalSeconds: z.number().positive().max(3600).optional(),
  /** measurements per step (default: as many intervals as fit in the step's minutes; without a canary 1) */
  count: z.number().int().min(1).max(1000).optional(),
  /** inconclusive measurements tolerated over the whole verification (default 0) */
  inconclusiveLimit: z.number().int().min(0).max(1000).optional(),
  /** an unreadable measurement (missing alarm, access denied, throttled past retries) counts as inconclusive instead of failed */
  ignoreUnreadable: z.boolean().optional(),
};

/**
 * Alarm check: every CloudWatch alarm named in `alarms` or starting with `alarmPrefix` (templates
 * `{project}`, `{env}`, `{version}`) must be `OK` at every measurement. `ALARM` fails at once,
 * `INSUFFICIENT_DATA` is inconclusive, an alarm that cannot be read fails (unless `ignoreUnreadable`).
 */
export const alarmCheckSchema = z
  .object({
    kind: z.literal('alarm'),
    alarms: z.array(z.string().min(1).max(255)).min(1).max(100).optional(),
    alarmPrefix: z.string().min(1).max(255).optional(),
    ...measured,
  })
  .strict();

/** One CloudWatch metric (GetMetricData `MetricStat`); dimension values are templates. */
export const metricQuerySchema = z
  .object({
    namespace: z.string().min(1),
    metricName: z.string().min(1),
    /** name → value template (`{project}`, `{env}`, `{version}`, `{functionName}`, `{alias}`, `{executedVersion}`) */
    dimensions: z.record(z.string().min(1), z.string().min(1)).optional(),
    /** CloudWatch statistic (`Average`, `Sum`, `Maximum`, `p99`, …); default Average */
    stat: z.string().min(1).optional(),
  })
  .strict();
export type MetricQuery = z.infer<typeof metricQuerySchema>;

/**
 * Metric check: one value per measurement — a built-in Lambda metric of the executed version
 * (`errorRate` = Errors / Invocations, `duration` = p99 of Duration in ms), a `query`, or a metric-math
 * `expression` over `metrics` — compared with `max` and/or with the previous version in the same
 * window (`maxIncrease`, needs a canary).
 */
export const metricCheckSchema = z
  .object({
    kind: z.literal('metric'),
    metric: z.enum(['errorRate', 'duration']).optional(),
    query: metricQuerySchema.optional(),
    expression: z.string().min(1).optional(),
    metrics: z.record(z.string().regex(/^[a-z][a-zA-Z0-9_]*$/, 'metric ids start with a lower-case letter'), metricQuerySchema).optional(),
    /** label in logs and history (default: the built-in's name, the metric name or the expression) */
    name: z.string().min(1).max(64).optional(),
    /** statistic of the `duration` built-in (default p99) */
    stat: z.string().min(1).optional(),
    max: z.number().optional(),
    maxIncrease: z.number().nonnegative().optional(),
    /** fewer samples than this (Invocations, or the metric's SampleCount) make the measurement inconclusive (default 1) */
    minSamples: z.number().int().min(0).optional(),
    /** CloudWatch period, seconds (default 60; 1, 5, 10, 30 or a multiple of 60) */
    periodSeconds: z.number().int().positive().optional(),
    /** failed measurements tolerated over the whole verification (default 0) */
    failureLimit: z.number().int().min(0).max(1000).optional(),
    ...measured,
  })
  .strict();

export type AlarmCheck = z.infer<typeof alarmCheckSchema>;
export type MetricCheck = z.infer<typeof metricCheckSchema>;
export type MeasuredCheck = AlarmCheck | MetricCheck;

/** True for the checks that measure over time (alarm, metric) rather than look once. */
export function isMeasured(c: { kind: string }): c is MeasuredCheck {
  return c.kind === 'alarm' || c.kind === 'metric';
}

/** A measured check's settings with defaults applied. */
export interface MeasurementSettings {
  intervalMs: number;
  count?: number;
  failureLimit: number;
  inconclusiveLimit: number;
  onFailure: 'rollback' | 'hold';
  onInconclusive: OnInconclusive;
  ignoreUnreadable: boolean;
}

/** Defaults of {@link MeasurementSettings} (alarms never tolerate a failure: `ALARM` fails at once). */
export function measurementSettings(c: MeasuredCheck): MeasurementSettings {
  return {
    intervalMs: (c.intervalSeconds ?? 60) * 1000,
    ...(c.count ? { count: c.count } : {}),
    failureLimit: c.kind === 'metric' ? (c.failureLimit ?? 0) : 0,
    inconclusiveLimit: c.inconclusiveLimit ?? 0,
    onFailure: c.onFailure ?? 'rollback',
    onInconclusive: c.onInconclusive ?? 'rollback',
    ignoreUnreadable: c.ignoreUnreadable ?? false,
  };
}

/** Valid CloudWatch periods: 1, 5, 10, 30 (high resolution) or a multiple of 60. */
export function validPeriod(s: number): boolean {
  return [1, 5, 10, 30].includes(s) || (s > 0 && s % 60 === 0);
}

/**
 * Rules the schema cannot say for one measured check (pure).
 * @param hasCanary the environment has `strategy.canary` (a baseline needs the old version serving in the same window)
 * @returns the problem as `<field>: <text>`, or undefined when the check is valid
 */
export function measuredCheckProblem(c: MeasuredCheck, hasCanary: boolean): string | undefined {
  if (c.kind === 'alarm') return c.alarms || c.alarmPrefix ? undefined : 'alarms: name the alarms ("alarms": [...]) or a prefix ("alarmPrefix")';
  const sources = [c.metric, c.query, c.expression].filter((x) => x !== undefined).length;
  if (sources !== 1) return 'metric: give exactly one of "metric" (errorRate | duration), "query" or "expression"';
  if (c.expression && !c.metrics) return 'metrics: an "expression" needs the "metrics" it names (id → query)';
  if (c.metrics && !c.expression) return 'metrics: only used with "expression"';
  if (c.max === undefined && c.maxIncrease === undefined) return 'max: give a threshold ("max") or a baseline comparison ("maxIncrease"), or both';
  if (c.maxIncrease !== undefined && !hasCanary)
    return 'maxIncrease: compares with the previous version in the same window, which needs "strategy": { "canary": … }';
  if (c.maxIncrease !== undefined && !c.metric && !JSON.stringify(c.query ?? c.metrics).includes('{executedVersion}')) {
    return 'maxIncrease: the query must select the version with a {executedVersion} dimension value';
  }
  if (c.periodSeconds !== undefined && !validPeriod(c.periodSeconds)) return 'periodSeconds: must be 1, 5, 10, 30 or a multiple of 60';
  if (c.stat && c.metric !== 'duration') return 'stat: only for the "duration" built-in (a query has its own "stat")';
  return undefined;
}
