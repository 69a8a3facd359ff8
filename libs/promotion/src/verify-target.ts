import type { ResolvedEnvironment } from '@buildonce/config';
import type { DeployRequest, DeployResult, DeployTarget } from '@buildonce/deploy';
import { verifyDeploy, type VerifiedDeploy, type VerifySetup } from '@buildonce/verification';
import type { ProjectName, Version } from '@buildonce/values';

/** The environment's canary strategy (chain environments only), or undefined. */
export function canaryOf(environment: ResolvedEnvironment) {
  return environment.kind === 'chain' ? environment.strategy?.canary : undefined;
}

/**
 * The verification of one deploy on its target, the same for a single-region promotion and each region of
 * a multi-region one: the environment's checks (`setup`) and canary steps, with the canary shifted and
 * completed through the target that deployed (`dreq` is the request the deploy ran with).
 * @returns what verifyDeploy decided (`failure` set when a check failed)
 * @throws what the checks and the target's canary calls throw
 */
export function verifyOnTarget(o: {
  target: DeployTarget;
  dreq: DeployRequest;
  setup: VerifySetup | undefined;
  started: DeployResult;
  project: ProjectName;
  environment: ResolvedEnvironment;
  version: Version;
  log: (line: string) => void;
}): Promise<VerifiedDeploy> {
  const canary = canaryOf(o.environment);
  const { target, dreq } = o;
  return verifyDeploy({
    setup: o.setup,
    started: o.started,
    project: o.project,
    environment: o.environment.name,
    version: o.version,
    canaryMinutes: canary?.minutes,
    steps: canary?.steps,
    shiftCanary: target.shiftCanary ? (s, percent) => target.shiftCanary!(dreq, s, percent) : undefined,
    completeCanary: target.completeCanary ? (s) => target.completeCanary!(dreq, s) : undefined,
    log: o.log,
  });
}
