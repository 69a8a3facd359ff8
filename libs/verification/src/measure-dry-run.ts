import { GetAliasCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { lambdaNames, type DeployTargetKind } from '@buildonce/deploy';
import { measureAlarms } from './alarm-check';
import type { VerifyCheck } from '@buildonce/config';
import { isMeasured, measurementSettings, type MeasuredCheck } from '@buildonce/config';
import { awsErrorLine, type MeasureContext } from './measure-context';
import { measureMetric } from './metric-check';
import { measuredLabel } from './stepped';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

/** What a dry run's measurement of one check would decide. */
export interface DryRunReading {
  check: string;
  verdict: 'passed' | 'failed' | 'inconclusive';
  detail: string;
}

/**
 * `promote --dry-run` with alarm and metric checks: takes one measurement of each against current
 * data and logs what it would decide. Lambda checks read the version the alias runs now (the new one
 * is not deployed in a dry run), so `maxIncrease` has nothing to compare with there. Reads only.
 * @returns one reading per measured check
 */
export async function dryRunMeasuredChecks(o: {
  checks: VerifyCheck[];
  project: ProjectName;
  environment: EnvironmentName;
  version: Version;
  targetKind: DeployTargetKind;
  functionName?: string;
  alias?: string;
  lambda?: () => LambdaClient;
  cloudwatch: () => CloudWatchClient;
  log: (line: string) => void;
}): Promise<DryRunReading[]> {
  const measured = o.checks.filter(isMeasured) as MeasuredCheck[];
  if (!measured.length) return [];
  let lambda: MeasureContext['lambda'];
  const needsLambda = (c: MeasuredCheck) =>
    c.kind === 'metric' && (!!c.metric || /\{(functionName|alias|executedVersion)\}/.test(JSON.stringify(c.query ?? c.metrics ?? {})));
  if (o.targetKind === 'lambda' && o.lambda && measured.some(needsLambda)) {
    const n = lambdaNames({ functionName: o.functionName, alias: o.alias }, o.project, o.environment);
    try {
      const a = await o.lambda().send(new GetAliasCommand({ FunctionName: n.functionName, Name: n.alias }));
      if (a.FunctionVersion) lambda = { functionName: n.functionName, alias: n.alias, executedVersion: a.FunctionVersion };
    } catch (e) {
      o.log(`dry run: cannot read alias ${n.functionName}:${n.alias} (${awsErrorLine(e)}): Lambda metric checks have no version to read`);
    }
  }
  const ctx: MeasureContext = { project: o.project, environment: o.environment, version: o.version, cloudwatch: o.cloudwatch, ...(lambda ? { lambda } : {}) };
  const out: DryRunReading[] = [];
  for (const c of measured) {
    const label = measuredLabel(c, ctx);
    if (!lambda && needsLambda(c)) {
      out.push({ check: label, verdict: 'inconclusive', detail: 'no Lambda alias to read the version from' });
    } else {
      const r = c.kind === 'alarm' ? await measureAlarms(c, ctx) : await measureMetric(c, ctx, measurementSettings(c).intervalMs);
      out.push({ check: label, verdict: r.verdict, detail: r.detail });
    }
    const last = out[out.length - 1]!;
    const on = c.kind === 'metric' && lambda ? ` of version ${lambda.executedVersion} (what the alias runs now)` : '';
    o.log(`dry run: ${label}${on}: ${last.detail} → ${{ passed: 'would pass', failed: 'would fail', inconclusive: 'would be inconclusive' }[last.verdict]}`);
  }
  return out;
}
