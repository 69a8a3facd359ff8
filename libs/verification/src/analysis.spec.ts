import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';
import { describe, expect, it } from 'vitest';
import { boundMeasurements, combineDecisions, decideCheck, fmt, type CheckDecision } from './analysis';
import { MAX_RECORDED_MEASUREMENTS, type Measurement, type Verdict } from '@buildonce/ledger';
import { alarmVerdict } from './alarm-check';
import { metricVerdict, metricWindow, versionQueries, versionValue } from './metric-check';
import { measurementTimes } from './stepped';

/** mulberry32: the same seed gives the same generated inputs, so a failure reproduces */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]! };
}
const VERDICTS: readonly Verdict[] = ['passed', 'failed', 'inconclusive'];

describe('decideCheck (generated verdict series)', () => {
  it('fails exactly when failures exceed failureLimit, at the first measurement that exceeds it', () => {
    const r = rng(1);
    for (let n = 0; n < 2000; n++) {
      const series = Array.from({ length: r.int(12) }, () => r.pick(VERDICTS));
      const limits = { failureLimit: r.int(4), inconclusiveLimit: r.int(4) };
      const failed = series.filter((v) => v === 'failed').length;
      const inc = series.filter((v) => v === 'inconclusive').length;
      const running = decideCheck(series, limits, false);
      const final = decideCheck(series, limits, true);
      if (failed > limits.failureLimit) {
        expect(running).toBe('failed');
        expect(final).toBe('failed');
        // decided at the first prefix that crosses the limit, never earlier
        const first = series.findIndex((_, i) => series.slice(0, i + 1).filter((v) => v === 'failed').length > limits.failureLimit);
        expect(decideCheck(series.slice(0, first), limits, false)).toBe('running');
        expect(decideCheck(series.slice(0, first + 1), limits, false)).toBe('failed');
      } else {
        expect(running).toBe('running');
        expect(final).toBe(series.length === 0 || inc > limits.inconclusiveLimit ? 'inconclusive' : 'passed');
      }
    }
  });
  it('nothing measured is inconclusive, not a pass', () => {
    expect(decideCheck([], { failureLimit: 0, inconclusiveLimit: 5 }, true)).toBe('inconclusive');
  });
});

describe('combineDecisions (generated check results)', () => {
  it('any failed check fails, else any inconclusive is decided by the strictest onInconclusive, else passed', () => {
    const r = rng(2);
    for (let n = 0; n < 2000; n++) {
      const ds: CheckDecision[] = Array.from({ length: r.int(5) }, () => ({
        result: r.pick(['passed', 'failed', 'inconclusive'] as const),
        onFailure: r.pick(['rollback', 'hold'] as const),
        onInconclusive: r.pick(['rollback', 'hold', 'promote'] as const),
      }));
      const d = combineDecisions(ds);
      const failed = ds.filter((x) => x.result === 'failed');
      const inc = ds.filter((x) => x.result === 'inconclusive');
      if (failed.length) expect(d).toEqual({ result: 'failed', action: failed.some((x) => x.onFailure === 'rollback') ? 'rollback' : 'hold' });
      else if (inc.length) {
        const want = inc.some((x) => x.onInconclusive === 'rollback') ? 'rollback' : inc.some((x) => x.onInconclusive === 'hold') ? 'hold' : 'promote';
        expect(d).toEqual({ result: 'inconclusive', action: want });
      } else expect(d).toEqual({ result: 'passed', action: 'promote' });
    }
  });
});

describe('boundMeasurements (generated series)', () => {
  it('keeps every failing measurement (newest first when they overflow), fills with the newest passed ones, keeps time order', () => {
    const r = rng(3);
    for (let n = 0; n < 300; n++) {
      const len = r.int(200);
      const failRate = r.next();
      const ms: Measurement[] = Array.from({ length: len }, (_, i) => ({
        check: 'c',
        step: 1,
        at: String(i).padStart(4, '0'),
        verdict: r.next() < failRate ? r.pick(['failed', 'inconclusive'] as const) : 'passed',
        calls: 1,
        detail: '',
      }));
      const max = 1 + r.int(MAX_RECORDED_MEASUREMENTS);
      const b = boundMeasurements(ms, max);
      expect(b.measurements.length).toBe(Math.min(len, max));
      expect(b.omitted).toBe(len - b.measurements.length);
      expect(b.measurements.map((m) => m.at)).toEqual([...b.measurements.map((m) => m.at)].sort());
      const bad = ms.filter((m) => m.verdict !== 'passed');
      const keptBad = b.measurements.filter((m) => m.verdict !== 'passed');
      expect(keptBad).toEqual(bad.slice(-Math.min(bad.length, max)));
      if (bad.length < max) {
        // the rest are the newest passed ones
        const passed = ms.filter((m) => m.verdict === 'passed');
        expect(b.measurements.filter((m) => m.verdict === 'passed')).toEqual(passed.slice(passed.length - (b.measurements.length - keptBad.length)));
      }
    }
  });
});

describe('alarmVerdict', () => {
  it('ALARM fails, INSUFFICIENT_DATA is inconclusive, all OK passes; unreadable fails closed unless ignored (generated states)', () => {
    const r = rng(4);
    for (let n = 0; n < 1000; n++) {
      const names = Array.from({ length: 1 + r.int(4) }, (_, i) => `a${i}`);
      const alarms = names.filter(() => r.next() > 0.1).map((name) => ({ name, state: r.pick(['OK', 'OK', 'ALARM', 'INSUFFICIENT_DATA']) }));
      const ignore = r.next() < 0.5;
      const v = alarmVerdict({ alarms }, { names }, ignore);
      if (alarms.length < names.length) expect(v.verdict).toBe(ignore ? 'inconclusive' : 'failed');
      else if (alarms.some((a) => a.state === 'ALARM'))
        expect(v).toEqual({
          verdict: 'failed',
          detail: `${alarms
            .filter((a) => a.state === 'ALARM')
            .map((a) => a.name)
            .join(', ')} in ALARM`,
        });
      else if (alarms.some((a) => a.state !== 'OK')) expect(v.verdict).toBe('inconclusive');
      else expect(v.verdict).toBe('passed');
    }
  });
  it('an API error or an empty prefix is unreadable', () => {
    expect(alarmVerdict({ unreadable: 'DescribeAlarms: AccessDenied (HTTP 403): no' }, { names: ['x'] }, false)).toEqual({
      verdict: 'failed',
      detail: 'unreadable: DescribeAlarms: AccessDenied (HTTP 403): no',
    });
    expect(alarmVerdict({ alarms: [] }, { names: [], prefix: 'svc-' }, true)).toEqual({
      verdict: 'inconclusive',
      detail: 'unreadable: no alarm starts with "svc-" (ignoreUnreadable)',
    });
  });
});

describe('metricVerdict (generated values)', () => {
  it('inconclusive below minSamples, failed over max or over baseline + maxIncrease, else passed', () => {
    const r = rng(5);
    for (let n = 0; n < 3000; n++) {
      const now = { samples: r.int(50), ...(r.next() < 0.9 ? { value: r.next() * 0.1 } : {}) };
      const baseline = r.next() < 0.5 ? { samples: r.int(50), ...(r.next() < 0.9 ? { value: r.next() * 0.1 } : {}) } : undefined;
      const limits = { ...(r.next() < 0.7 ? { max: r.next() * 0.1 } : {}), ...(r.next() < 0.5 ? { maxIncrease: r.next() * 0.02 } : {}), minSamples: r.int(20) };
      const v = metricVerdict(now, baseline, limits);
      let want: Verdict;
      if (now.samples < limits.minSamples || now.value === undefined) want = 'inconclusive';
      else if (limits.max !== undefined && now.value > limits.max) want = 'failed';
      else if (baseline && limits.maxIncrease !== undefined) {
        if (baseline.samples < limits.minSamples || baseline.value === undefined) want = 'inconclusive';
        else want = now.value - baseline.value > limits.maxIncrease ? 'failed' : 'passed';
      } else want = 'passed';
      expect(v.verdict).toBe(want);
      expect(v.detail).not.toContain('\n');
    }
  });
  it('reads as the releases column shows it', () => {
    expect(metricVerdict({ value: 0.031, samples: 100 }, undefined, { max: 0.01 })).toEqual({ verdict: 'failed', detail: '0.031 > 0.01' });
    expect(metricVerdict({ value: 0.02, samples: 100 }, { value: 0.02, samples: 100 }, { maxIncrease: 0.005 }).verdict).toBe('passed');
    expect(metricVerdict({ value: 0, samples: 3 }, undefined, { max: 0.01, minSamples: 10 })).toEqual({
      verdict: 'inconclusive',
      detail: 'too few samples: 3 < 10',
    });
    expect(metricVerdict({ samples: 0 }, undefined, { max: 0.01 })).toEqual({ verdict: 'inconclusive', detail: 'no data (0 samples, minSamples 1)' });
  });
});

describe('metric queries and values', () => {
  const vars = {
    project: 'svc' as ProjectName,
    env: 'staging' as EnvironmentName,
    version: '77' as Version,
    functionName: 'svc-staging',
    alias: 'staging',
    executedVersion: '5',
  };
  /** {@link versionValue} over GetMetricData results given as metric id -> values. */
  const valuesOf = (q: ReturnType<typeof versionQueries>, values: Record<string, number[]>) =>
    versionValue(
      q,
      Object.entries(values).map(([Id, Values]) => ({ Id, Values })),
    );
  it('errorRate reads Errors and Invocations of the executed version; the value is their ratio over the window', () => {
    const q = versionQueries({ kind: 'metric', metric: 'errorRate', max: 0.01 }, vars, 60, 'n');
    expect(q.queries.map((x) => [x.Id, x.MetricStat?.Metric?.MetricName, x.MetricStat?.Stat])).toEqual([
      ['errors_n', 'Errors', 'Sum'],
      ['invocations_n', 'Invocations', 'Sum'],
    ]);
    expect(q.queries[0]!.MetricStat!.Metric!.Dimensions).toEqual([
      { Name: 'FunctionName', Value: 'svc-staging' },
      { Name: 'Resource', Value: 'svc-staging:staging' },
      { Name: 'ExecutedVersion', Value: '5' },
    ]);
    expect(valuesOf(q, { errors_n: [1, 2], invocations_n: [50, 50] })).toEqual({ value: 0.03, samples: 100 });
    expect(valuesOf(q, { errors_n: [], invocations_n: [] })).toEqual({ samples: 0 });
  });
  it('an expression renames its metric ids per version; other statistics take the worst period', () => {
    const c = {
      kind: 'metric' as const,
      expression: 'bad / (good + bad)',
      metrics: {
        bad: { namespace: 'App', metricName: '5xx', dimensions: { V: '{executedVersion}' }, stat: 'Sum' },
        good: { namespace: 'App', metricName: '2xx', stat: 'Sum' },
      },
      max: 0.1,
    };
    const q = versionQueries(c, { ...vars, executedVersion: '4' }, 60, 'b');
    expect(q.queries.find((x) => x.Id === 'expr_b')?.Expression).toBe('bad_b / (good_b + bad_b)');
    expect(q.queries.find((x) => x.Id === 'bad_b')).toMatchObject({ ReturnData: false, MetricStat: { Metric: { Dimensions: [{ Name: 'V', Value: '4' }] } } });
    expect(valuesOf(q, { expr_b: [0.01, 0.05], samples_b: [10, 5] })).toEqual({ value: 0.05, samples: 15 });
    expect(valuesOf(q, { expr_b: [Infinity, NaN], samples_b: [10] })).toEqual({ samples: 10 });
  });
  it('the window covers the last interval in whole periods (generated times)', () => {
    const r = rng(6);
    for (let n = 0; n < 1000; n++) {
      const period = r.pick([1, 5, 10, 30, 60, 300]);
      const now = 1_700_000_000_000 + r.int(1e9);
      const look = r.int(600_000);
      const w = metricWindow(now, look, period);
      expect(w.start.getTime() % (period * 1000)).toBe(0);
      expect(w.end.getTime() % (period * 1000)).toBe(0);
      expect(w.start.getTime()).toBeLessThanOrEqual(now - Math.max(look, period * 1000));
      expect(w.end.getTime()).toBeGreaterThan(now);
    }
  });
});

describe('measurementTimes', () => {
  it('fills the step window with intervals (at least one), or takes count', () => {
    expect(measurementTimes({ intervalMs: 1000 }, 3000)).toEqual([1000, 2000, 3000]);
    expect(measurementTimes({ intervalMs: 60_000 }, 3000)).toEqual([60_000]);
    expect(measurementTimes({ intervalMs: 1000, count: 2 }, 0)).toEqual([1000, 2000]);
    expect(measurementTimes({ intervalMs: 1000 }, 0)).toEqual([1000]);
  });
  it('fmt keeps four significant digits', () => {
    expect(fmt(0.0310000001)).toBe('0.031');
    expect(fmt(1234.5678)).toBe('1235');
  });
});
