import { z } from 'zod';

/**
 * The recorded shape of an analysis of the measured checks (alarm, metric) of one verification: the measurements, their
 * verdicts and the decisions taken from them. Every decision here is a pure function of the
 * measurements so far (the kargo / Argo Rollouts analysis model: a measurement is Successful, Failed
 * or Inconclusive; a run fails when failures exceed `failureLimit`, is inconclusive when
 * inconclusive measurements exceed `inconclusiveLimit`).
 */

/** Verdict of one measurement. */
export const verdictSchema = z.enum(['passed', 'failed', 'inconclusive']);
export type Verdict = z.infer<typeof verdictSchema>;

/** One measurement as recorded in the history entry. */
export const measurementSchema = z
  .object({
    /** label of the check, e.g. `metric errorRate`, `alarm svc-staging-` */
    check: z.string(),
    /** canary step, 1-based (1 without a canary) */
    step: z.number().int().min(1),
    /** ISO 8601 time of the measurement */
    at: z.string(),
    verdict: verdictSchema,
    /** the measured value (metric checks; absent when there was no data) */
    value: z.number().optional(),
    /** the previous version's value in the same window (baseline comparison) */
    baseline: z.number().optional(),
    /** samples behind the value (Invocations, SampleCount) */
    samples: z.number().optional(),
    /** CloudWatch API calls this measurement made */
    calls: z.number().int().nonnegative(),
    /** one line: what was seen */
    detail: z.string(),
  })
  .strict();
export type Measurement = z.infer<typeof measurementSchema>;

/** Result of one check's analysis, or of all of them. */
export const analysisResultSchema = z.enum(['passed', 'failed', 'inconclusive']);
export type AnalysisResult = z.infer<typeof analysisResultSchema>;

/** The analysis stored in a history entry's `verification`: a summary per check plus a bounded series. */
export const analysisSchema = z
  .object({
    result: analysisResultSchema,
    /** what the result did: promote (pointer moves), rollback, hold */
    action: z.enum(['promote', 'rollback', 'hold']),
    /** one line, e.g. `metric errorRate 0.031 > 0.01 at step 2` */
    summary: z.string(),
    /** the step the result was decided at (failed: where it failed) */
    step: z.number().int().min(1).optional(),
    /** steps the canary had (1 without a canary) */
    steps: z.number().int().min(1),
    checks: z.array(
      z
        .object({
          check: z.string(),
          kind: z.enum(['alarm', 'metric']),
          result: analysisResultSchema,
          measurements: z.number().int().nonnegative(),
          failed: z.number().int().nonnegative(),
          inconclusive: z.number().int().nonnegative(),
          /** CloudWatch API calls over every measurement of the check */
          calls: z.number().int().nonnegative(),
        })
        .strict(),
    ),
    /** the series, bounded: every failed/inconclusive measurement first, then the newest passed ones */
    measurements: z.array(measurementSchema),
    /** measurements left out by the bound */
    omitted: z.number().int().nonnegative(),
  })
  .strict();
export type Analysis = z.infer<typeof analysisSchema>;

/** At most this many measurements are stored in one history entry. */
export const MAX_RECORDED_MEASUREMENTS = 60;
