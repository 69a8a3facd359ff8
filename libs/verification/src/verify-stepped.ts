import type { DeployResult } from '@buildonce/deploy';
import type { VerifyCheck } from '@buildonce/config';
import { isMeasured, type MeasuredCheck } from '@buildonce/config';
import { runSteps, steppedVerification, type Step } from './stepped';
import { describeCheck, failedCheck, runChecks, watchSignals, type CheckContext, type VerifiedDeploy, type VerifyDeployOptions } from './verify';

/**
 * verifyDeploy with measured checks or a stepped canary (see stepped.ts): one-look checks at the
 * start → the steps, measuring → one-look checks again (canary) → the decision → 100 % shift.
 * Never throws for a failing check, an interrupted step or a failed shift (see `failure`).
 */
export async function verifySteppedDeploy(o: VerifyDeployOptions & { ctx: CheckContext; checks: VerifyCheck[] }): Promise<VerifiedDeploy> {
  const t0 = Date.now();
  const { started, log } = o;
  const oneShot = o.checks.filter((c) => !isMeasured(c));
  const measured = o.checks.filter(isMeasured) as MeasuredCheck[];
  const canary = started.target === 'lambda' ? started.canary : undefined;
  const steps: Step[] = canary ? (o.steps?.length ? o.steps : [{ percent: canary.percent, minutes: o.canaryMinutes ?? 0 }]) : [{ percent: 100, minutes: 0 }];
  // measured checks come from the setup, so without one CloudWatch is never read
  const cloudwatch =
    o.setup?.cloudwatch ??
    (() => {
      throw new Error('a measured check ran without a verify setup (no CloudWatch client): this is a bug');
    });

  const first = await runChecks(oneShot, o.ctx);
  if (first && !first.verification.passed) return failedCheck(started, first.verification, first.failed);

  const signals = watchSignals();
  let outcome;
  try {
    outcome = await runSteps({
      checks: measured,
      steps,
      canary: !!canary,
      started,
      measure: { project: o.project, environment: o.environment, version: o.version, cloudwatch },
      ...(canary && o.shiftCanary ? { shift: (percent: number) => o.shiftCanary!(started, percent) } : {}),
      log,
      signal: signals.signalled,
      ...(o.setup?.sleep ? { sleep: o.setup.sleep } : {}),
    });
  } finally {
    signals.dispose();
  }
  const record = (extra: { oneShot?: typeof first; oneShotFailed?: boolean } = {}) =>
    steppedVerification({
      outcome,
      ...(extra.oneShot ? { oneShot: extra.oneShot.verification } : first ? { oneShot: first.verification } : {}),
      oneShotFailed: extra.oneShotFailed,
      durationMs: Date.now() - t0,
    });
  if (outcome.failure) return { result: outcome.result, verification: record(), failure: outcome.failure, onFailure: outcome.onFailure ?? 'rollback' };

  if (canary && oneShot.length) {
    const again = await runChecks(oneShot, o.ctx);
    if (again && !again.verification.passed) {
      const v = record({ oneShot: again, oneShotFailed: true });
      return {
        result: outcome.result,
        verification: v,
        failure: `${again.failed ? describeCheck(again.failed) : v.kind} failed: ${again.verification.detail}`,
        onFailure: again.failed?.onFailure ?? 'rollback',
      };
    }
  }
  let result = outcome.result;
  if (canary && o.completeCanary) {
    try {
      result = await o.completeCanary(outcome.result);
    } catch (e) {
      const why = `canary shift to 100% failed: ${((e as Error).message ?? String(e)).split('\n')[0]}`;
      return { result: outcome.result, verification: { ...record(), passed: false, detail: why }, failure: why, onFailure: 'rollback' };
    }
    log(`canary: 100% on the new version`);
  }
  return { result, verification: record() };
}
