import type { MetricDataQuery, MetricDataResult } from '@aws-sdk/client-cloudwatch';
import type { Verdict } from '@buildonce/ledger';
import { fmt } from './analysis';
import type { MetricCheck, MetricQuery } from '@buildonce/config';
import { awsErrorLine, expandCheckTemplate, templateVars, type MeasureContext, type Reading, type TemplateVars } from './measure-context';

/**
 * `metric` check (docs/promotion.md "Alarm and metric checks"): one value of the new version per
 * measurement, read with one CloudWatch `GetMetricData` call (API 2010-08-01) that also reads the
 * previous version's value when the check compares with it (`maxIncrease`).
 *
 * Built-ins on the Lambda target, per executed version of an alias (Lambda publishes `FunctionName`,
 * `Resource` = `<function>:<alias>`, `ExecutedVersion` dimensions for alias invocations):
 * - `errorRate`: Sum(Errors) / Sum(Invocations); samples = Sum(Invocations);
 * - `duration`: `stat` (p99) of Duration, ms; samples = SampleCount(Duration).
 * A `query` reads `stat` (Average) of one metric, samples its SampleCount; an `expression` is metric math
 * over `metrics`, samples the SampleCount of the first metric listed. Over a window of several periods
 * Sum statistics add up and any other statistic takes its highest period (the worst).
 */

/** Label of a metric check in logs, history and `releases`. */
export function metricLabel(c: MetricCheck): string {
  return c.name ?? c.metric ?? (c.query ? `${c.query.namespace}/${c.query.metricName}` : (c.expression ?? 'metric'));
}

/** Which statistic aggregates how over several periods. */
function isSum(stat: string): boolean {
  return stat === 'Sum' || stat === 'SampleCount';
}

/** Ids of the queries of one version (new or baseline). */
interface VersionQueries {
  queries: MetricDataQuery[];
  /** id of the value (or numerator for errorRate) */
  value: string;
  /** errorRate: id of the denominator */
  per?: string;
  samples: string;
  sumValue: boolean;
}

function metricStat(id: string, q: MetricQuery, vars: TemplateVars, period: number, stat: string, returnData = true): MetricDataQuery {
  return {
    Id: id,
    MetricStat: {
      Metric: {
        Namespace: q.namespace,
        MetricName: q.metricName,
        Dimensions: Object.entries(q.dimensions ?? {}).map(([Name, v]) => ({ Name, Value: expandCheckTemplate(v, vars) })),
      },
      Period: period,
      Stat: stat,
    },
    ReturnData: returnData,
  };
}

const lambdaMetric = (metricName: string): MetricQuery => ({
  namespace: 'AWS/Lambda',
  metricName,
  dimensions: { FunctionName: '{functionName}', Resource: '{functionName}:{alias}', ExecutedVersion: '{executedVersion}' },
});

/**
 * The GetMetricData queries of one version (pure). `suffix` keeps the ids of the new version (`n`) and
 * the baseline (`b`) apart; an expression's metric ids are renamed the same way.
 * @throws ConfigError for a template placeholder that does not exist here (e.g. `{functionName}` off Lambda)
 */
export function versionQueries(c: MetricCheck, vars: TemplateVars, period: number, suffix: string): VersionQueries {
  if (c.metric === 'errorRate') {
    const e = `errors_${suffix}`;
    const i = `invocations_${suffix}`;
    return {
      queries: [metricStat(e, lambdaMetric('Errors'), vars, period, 'Sum'), metricStat(i, lambdaMetric('Invocations'), vars, period, 'Sum')],
      value: e,
      per: i,
      samples: i,
      sumValue: true,
    };
  }
  if (c.metric === 'duration') {
    const stat = c.stat ?? 'p99';
    const d = `duration_${suffix}`;
    const s = `samples_${suffix}`;
    return {
      queries: [metricStat(d, lambdaMetric('Duration'), vars, period, stat), metricStat(s, lambdaMetric('Duration'), vars, period, 'SampleCount')],
      value: d,
      samples: s,
      sumValue: isSum(stat),
    };
  }
  if (c.query) {
    const stat = c.query.stat ?? 'Average';
    const v = `value_${suffix}`;
    const s = `samples_${suffix}`;
    return {
      queries: [metricStat(v, c.query, vars, period, stat), metricStat(s, c.query, vars, period, 'SampleCount')],
      value: v,
      samples: s,
      sumValue: isSum(stat),
    };
  }
  const metrics = Object.entries(c.metrics ?? {});
  const rename = (id: string) => `${id}_${suffix}`;
  const expr = metrics.reduce((x, [id]) => x.replace(new RegExp(`\\b${id}\\b`, 'g'), rename(id)), c.expression ?? '');
  const v = `expr_${suffix}`;
  const s = `samples_${suffix}`;
  const [first] = metrics;
  return {
    queries: [
      ...metrics.map(([id, q]) => metricStat(rename(id), q, vars, period, q.stat ?? 'Average', false)),
      { Id: v, Expression: expr, ReturnData: true },
      metricStat(s, first![1], vars, period, 'SampleCount'),
    ],
    value: v,
    samples: s,
    sumValue: false,
  };
}

/** Values of one version read from GetMetricData results (pure). */
export interface VersionValue {
  value?: number;
  samples: number;
}

/** Reduces the results of {@link versionQueries} to one value and its samples (pure). */
export function versionValue(q: VersionQueries, results: readonly MetricDataResult[]): VersionValue {
  // a metric-math division by zero can yield non-finite values: they are no data (and JSON could not store them)
  const values = (id: string) => (results.find((r) => r.Id === id)?.Values ?? []).filter(Number.isFinite);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const samples = sum(values(q.samples));
  const v = values(q.value);
  if (q.per) {
    const per = sum(values(q.per));
    return per > 0 ? { value: sum(v) / per, samples } : { samples };
  }
  if (!v.length) return { samples };
  return { value: q.sumValue ? sum(v) : Math.max(...v), samples };
}

/**
 * The verdict of one metric measurement (pure):
 * - fewer samples than `minSamples` (default 1), or no value: `inconclusive` (too little traffic is not a pass);
 * - value above `max`: `failed`;
 * - with a baseline: its samples below `minSamples` → `inconclusive`; value − baseline above `maxIncrease` → `failed`;
 * - else `passed`.
 * @param baseline the previous version in the same window (undefined: no comparison)
 */
export function metricVerdict(
  now: VersionValue,
  baseline: VersionValue | undefined,
  limits: { max?: number; maxIncrease?: number; minSamples?: number },
): { verdict: Verdict; detail: string } {
  const min = limits.minSamples ?? 1;
  if (now.samples < min || now.value === undefined)
    return { verdict: 'inconclusive', detail: now.samples ? `too few samples: ${fmt(now.samples)} < ${min}` : `no data (0 samples, minSamples ${min})` };
  const v = now.value;
  if (limits.max !== undefined && v > limits.max) return { verdict: 'failed', detail: `${fmt(v)} > ${fmt(limits.max)}` };
  if (baseline && limits.maxIncrease !== undefined) {
    if (baseline.samples < min || baseline.value === undefined)
      return { verdict: 'inconclusive', detail: `${fmt(v)}, but the previous version has too few samples: ${fmt(baseline.samples)} < ${min}` };
    if (v - baseline.value > limits.maxIncrease)
      return { verdict: 'failed', detail: `${fmt(v)} > previous ${fmt(baseline.value)} + ${fmt(limits.maxIncrease)}` };
    return {
      verdict: 'passed',
      detail: `${fmt(v)} ≤ previous ${fmt(baseline.value)} + ${fmt(limits.maxIncrease)}${limits.max !== undefined ? ` and ≤ ${fmt(limits.max)}` : ''}`,
    };
  }
  return { verdict: 'passed', detail: limits.max !== undefined ? `${fmt(v)} ≤ ${fmt(limits.max)}` : `${fmt(v)} (no previous version to compare with)` };
}

/**
 * The GetMetricData time range of a measurement at `nowMs` (pure): the periods covering the last
 * `lookbackMs` (at least one period), aligned to the period as CloudWatch aligns datapoints.
 */
export function metricWindow(nowMs: number, lookbackMs: number, periodSeconds: number): { start: Date; end: Date } {
  const p = periodSeconds * 1000;
  const start = Math.floor((nowMs - Math.max(lookbackMs, p)) / p) * p;
  const end = Math.ceil((nowMs + 1) / p) * p;
  return { start: new Date(start), end: new Date(end) };
}

/** Builds the whole GetMetricData request of a measurement (pure; see {@link measureMetric}). */
export function metricRequest(c: MetricCheck, ctx: Pick<MeasureContext, 'project' | 'environment' | 'version' | 'lambda'>) {
  const period = c.periodSeconds ?? 60;
  const n = versionQueries(c, templateVars(ctx), period, 'n');
  const base =
    c.maxIncrease !== undefined && ctx.lambda?.baselineVersion ? versionQueries(c, templateVars(ctx, ctx.lambda.baselineVersion), period, 'b') : undefined;
  return { period, n, base, queries: [...n.queries, ...(base?.queries ?? [])] };
}

/**
 * Takes one measurement of a metric check: one GetMetricData call over the last `lookbackMs` (the
 * check's interval), then {@link metricVerdict}. Never throws for an AWS error (unreadable: `failed`,
 * or `inconclusive` with `ignoreUnreadable`).
 */
export async function measureMetric(c: MetricCheck, ctx: MeasureContext, lookbackMs: number): Promise<Reading> {
  const r = metricRequest(c, ctx);
  const w = metricWindow((ctx.now ?? Date.now)(), lookbackMs, r.period);
  let results: MetricDataResult[];
  const { GetMetricDataCommand } = await import('@aws-sdk/client-cloudwatch'); // loaded only when a metric check runs
  try {
    const out = await ctx
      .cloudwatch()
      .send(new GetMetricDataCommand({ StartTime: w.start, EndTime: w.end, MetricDataQueries: r.queries, ScanBy: 'TimestampDescending' }));
    results = out.MetricDataResults ?? [];
  } catch (e) {
    const ignore = c.ignoreUnreadable ?? false;
    return {
      verdict: ignore ? 'inconclusive' : 'failed',
      calls: 1,
      detail: `unreadable: GetMetricData: ${awsErrorLine(e)}${ignore ? ' (ignoreUnreadable)' : ''}`,
    };
  }
  const now = versionValue(r.n, results);
  const baseline = r.base ? versionValue(r.base, results) : undefined;
  const v = metricVerdict(now, baseline, c);
  return {
    ...v,
    calls: 1,
    ...(now.value !== undefined ? { value: now.value } : {}),
    ...(baseline?.value !== undefined ? { baseline: baseline.value } : {}),
    samples: now.samples,
  };
}
