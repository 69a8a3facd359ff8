import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { isAbsolute, join } from 'node:path';
import { Ec2DeployTarget, createSsmClient } from './ec2';
import { LambdaDeployTarget, createLambdaClient } from './lambda';
import { DeployError, DeployPreflightError, type DeployRequest, type DeployResult, type DeployTarget, type DeployTargetKind } from './targets';

/** Default root of local deployments, relative to the workspace: `.buildonce/deploy/<env>/<project>`. */
export const DEFAULT_LOCAL_ROOT = '.buildonce/deploy';

/**
 * The unpack-verify-flip function of the `local` target (libs/deploy/src/local.ts):
 * resolves with `deployed` or `already-current` and the release directory.
 */
export type LocalDeployFn = (o: {
  store: DeployRequest['store'];
  project: string;
  version: string;
  root: string;
  namespace?: DeployRequest['namespace'];
  log?: (line: string) => void;
}) => Promise<{ status: 'deployed' | 'already-current'; releaseDir?: string; path?: string; [k: string]: unknown }>;

/**
 * `local` deploy target: unpacks the verified artifact into `<root>/<env>/<project>/releases/<version>`
 * and flips `current` (the same layout the EC2 user data uses), via {@link LocalDeployFn}.
 */
export class LocalDeployTarget implements DeployTarget {
  readonly kind = 'local' as const;
  constructor(private readonly o: { root: string; deployLocal: LocalDeployFn }) {}

  /** `<root>/<env>/<project>` */
  rootOf(project: string, env: string): string {
    return join(this.o.root, env, project);
  }

  describe(req: Pick<DeployRequest, 'project' | 'environment'>): string {
    return `local ${this.rootOf(req.project, req.environment)}`;
  }

  async preflight(): Promise<void> {}

  async deploy(req: DeployRequest): Promise<DeployResult> {
    const root = this.rootOf(req.project, req.environment);
    try {
      const r = await this.o.deployLocal({ store: req.store, project: req.project, version: req.version, root, namespace: req.namespace, log: req.log });
      const path = String(r.releaseDir ?? r.path ?? join(root, 'releases', req.version));
      req.log(`${r.status === 'deployed' ? 'unpacked and switched' : 'already running'} ${join(root, 'current')} → ${path}`);
      return { target: 'local', root, path, status: r.status };
    } catch (e) {
      throw new DeployError(`local deploy to ${root}: ${((e as Error).message ?? String(e)).split('\n')[0]}`);
    }
  }
}

/** Options of the `promote`/`rollback` targets that choose and configure the deploy target. */
export interface DeployTargetOptions {
  /** the project's own target when the store is S3 (`lambda` or `ec2`); `local` always deploys locally */
  target: DeployTargetKind;
  functionName?: string;
  alias?: string;
  parameterName?: string;
  /** local deploy root, absolute or relative to workspaceRoot (default `.buildonce/deploy`) */
  localRoot?: string;
}

export interface CreateTargetContext {
  kind: DeployTargetKind;
  options: DeployTargetOptions;
  workspaceRoot: string;
  env?: NodeJS.ProcessEnv;
  /** injected clients (tests); default: created from the standard AWS environment */
  lambda?: LambdaClient;
  ssm?: SSMClient;
  deployLocal?: LocalDeployFn;
}

/**
 * Builds the deploy target of a kind. Opening does no I/O.
 * @throws DeployPreflightError for the local kind without an unpack function
 */
export function createDeployTarget(c: CreateTargetContext): DeployTarget {
  const env = c.env ?? process.env;
  switch (c.kind) {
    case 'lambda':
      return new LambdaDeployTarget({ client: c.lambda ?? createLambdaClient(env), functionName: c.options.functionName, alias: c.options.alias });
    case 'ec2':
      return new Ec2DeployTarget({ client: c.ssm ?? createSsmClient(env), parameterName: c.options.parameterName });
    case 'local': {
      const root = c.options.localRoot || DEFAULT_LOCAL_ROOT;
      if (!c.deployLocal) throw new DeployPreflightError('the local deploy target is not available in this build');
      return new LocalDeployTarget({ root: isAbsolute(root) ? root : join(c.workspaceRoot, root), deployLocal: c.deployLocal });
    }
  }
}
