import type { DescribeAlarmsCommandOutput } from '@aws-sdk/client-cloudwatch';
import type { Verdict } from '@buildonce/ledger';
import type { AlarmCheck } from '@buildonce/config';
import { awsErrorLine, expandCheckTemplate, templateVars, type MeasureContext, type Reading } from './measure-context';

/**
 * `alarm` check (docs/promotion.md "Alarm and metric checks"): CloudWatch alarms that must stay `OK`
 * for the whole window, read with CloudWatch `DescribeAlarms` (one call for the names, one for the
 * prefix; metric and composite alarms).
 */

/** State of one alarm as DescribeAlarms reports it. */
export interface AlarmState {
  name: string;
  state: string;
}

/** What a measurement of an alarm check read: the alarms found, or why nothing could be read. */
export type AlarmRead = { alarms: AlarmState[] } | { unreadable: string };

/**
 * The verdict of one alarm measurement (pure):
 * - unreadable (API error, a named alarm missing, no alarm under the prefix): `failed` — fails closed —
 *   or `inconclusive` with `ignoreUnreadable`;
 * - any alarm in `ALARM`: `failed`;
 * - else any `INSUFFICIENT_DATA` (or unknown state): `inconclusive`;
 * - else (every alarm `OK`): `passed`.
 */
export function alarmVerdict(read: AlarmRead, expected: { names: string[]; prefix?: string }, ignoreUnreadable: boolean): { verdict: Verdict; detail: string } {
  const unreadable = (why: string) => ({
    verdict: (ignoreUnreadable ? 'inconclusive' : 'failed') as Verdict,
    detail: `unreadable: ${why}${ignoreUnreadable ? ' (ignoreUnreadable)' : ''}`,
  });
  if ('unreadable' in read) return unreadable(read.unreadable);
  const seen = new Set(read.alarms.map((a) => a.name));
  const missing = expected.names.filter((n) => !seen.has(n));
  if (missing.length) return unreadable(`alarm ${missing.join(', ')} not found`);
  if (expected.prefix !== undefined && !read.alarms.some((a) => a.name.startsWith(expected.prefix!)))
    return unreadable(`no alarm starts with "${expected.prefix}"`);
  const inAlarm = read.alarms.filter((a) => a.state === 'ALARM');
  if (inAlarm.length) return { verdict: 'failed', detail: `${inAlarm.map((a) => a.name).join(', ')} in ALARM` };
  const unsure = read.alarms.filter((a) => a.state !== 'OK');
  if (unsure.length) return { verdict: 'inconclusive', detail: `${unsure.map((a) => `${a.name} ${a.state}`).join(', ')}` };
  return { verdict: 'passed', detail: `${read.alarms.length} alarm(s) OK` };
}

/** The alarm names and prefix of a check for this deploy (templates expanded). */
export function alarmTargets(c: AlarmCheck, ctx: Pick<MeasureContext, 'project' | 'environment' | 'version'>): { names: string[]; prefix?: string } {
  const vars = templateVars({ ...ctx, lambda: undefined });
  return { names: (c.alarms ?? []).map((n) => expandCheckTemplate(n, vars)), ...(c.alarmPrefix ? { prefix: expandCheckTemplate(c.alarmPrefix, vars) } : {}) };
}

/**
 * Takes one measurement of an alarm check: DescribeAlarms by name (one call, ≤ 100 names) and by prefix
 * (one call per page of 100), then {@link alarmVerdict}. Never throws for an AWS error (unreadable).
 */
export async function measureAlarms(c: AlarmCheck, ctx: MeasureContext): Promise<Reading> {
  const t = alarmTargets(c, ctx);
  const { DescribeAlarmsCommand } = await import('@aws-sdk/client-cloudwatch'); // loaded only when an alarm check runs
  let calls = 0;
  const found = new Map<string, string>();
  const collect = (out: DescribeAlarmsCommandOutput) => {
    for (const a of [...(out.MetricAlarms ?? []), ...(out.CompositeAlarms ?? [])]) if (a.AlarmName) found.set(a.AlarmName, a.StateValue ?? 'UNKNOWN');
  };
  let read: AlarmRead;
  try {
    if (t.names.length) {
      calls++;
      collect(await ctx.cloudwatch().send(new DescribeAlarmsCommand({ AlarmNames: t.names, AlarmTypes: ['MetricAlarm', 'CompositeAlarm'], MaxRecords: 100 })));
    }
    if (t.prefix !== undefined) {
      let token: string | undefined;
      do {
        calls++;
        const out = await ctx
          .cloudwatch()
          .send(new DescribeAlarmsCommand({ AlarmNamePrefix: t.prefix, AlarmTypes: ['MetricAlarm', 'CompositeAlarm'], MaxRecords: 100, NextToken: token }));
        collect(out);
        token = out.NextToken;
      } while (token && calls < 20);
    }
    read = { alarms: [...found].map(([name, state]) => ({ name, state })) };
  } catch (e) {
    read = { unreadable: `DescribeAlarms: ${awsErrorLine(e)}` };
  }
  return { ...alarmVerdict(read, t, c.ignoreUnreadable ?? false), calls };
}
