import { parseEnvironmentName, parseProjectName, parseVersion } from '@buildonce/values';
import type { DeployTargetKind } from '@buildonce/deploy';
import { alarmTargets } from './alarm-check';
import type { MeasuredCheck } from '@buildonce/config';
import { metricRequest } from './metric-check';

/**
 * Checks, before anything is deployed, that a measured check can run on this target (pure apart from
 * the log line): alarm and metric checks read CloudWatch, which sees the `lambda` and `ec2` targets,
 * not the embedded `local` one (skipped with a log line); the Lambda built-ins (`errorRate`,
 * `duration`) and `{functionName}`/`{alias}`/`{executedVersion}` need the lambda target. Every template
 * is expanded once with placeholder facts so an unknown placeholder refuses the promotion here.
 * @returns false when the check does not apply (skipped)
 * @throws ConfigError naming the placeholder
 */
export function prepareMeasuredCheck(c: MeasuredCheck, o: { targetKind: DeployTargetKind; log: (l: string) => void; describe: string }): boolean {
  if (o.targetKind === 'local') {
    o.log(`verify: ${o.describe} skipped: CloudWatch does not see the local target`);
    return false;
  }
  if (c.kind === 'metric' && c.metric && o.targetKind !== 'lambda') {
    o.log(`verify: ${o.describe} skipped: the ${c.metric} built-in reads Lambda metrics and the target is ${o.targetKind}`);
    return false;
  }
  // placeholder facts: only the shape of the request is checked here, never a real name
  const facts = { project: parseProjectName('p'), environment: parseEnvironmentName('e'), version: parseVersion('1') };
  if (c.kind === 'alarm') alarmTargets(c, facts);
  else
    metricRequest(c, {
      ...facts,
      ...(o.targetKind === 'lambda' ? { lambda: { functionName: 'f', alias: 'a', executedVersion: '2', baselineVersion: '1' } } : {}),
    });
  return true;
}
