import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { isAbsolute, join } from 'node:path';
import { projectKey, transferProgress, type TransferProgress } from '@buildonce/store';
import type { AwsClients } from '@buildonce/aws';
import { imageExists } from '@buildonce/image';
import { Ec2DeployTarget } from './ec2';
import { LambdaDeployTarget } from './lambda';
import { deployLocal, type DeployLocalOptions, type DeployLocalResult } from './local';
import { DeployError, DeployPreflightError, type DeployRequest, type DeployResult, type DeployTarget, type DeployTargetKind } from './targets';
import { imageUriOf } from '@buildonce/artifact';
import type { EnvironmentName, ProjectName } from '@buildonce/values';

/** Default root of local deployments, relative to the workspace: `.buildonce/deploy/<env>/<project>`. */
export const DEFAULT_LOCAL_ROOT = '.buildonce/deploy';

/** The unpack-verify-flip function of the `local` target ({@link deployLocal} from ./local; injectable for tests). */
export type LocalDeployFn = (o: DeployLocalOptions) => Promise<Pick<DeployLocalResult, 'status' | 'path'>>;

/**
 * `local` deploy target: unpacks the verified artifact into `<root>/<env>/<project>/releases/<version>`
 * and flips `current` (the same layout the EC2 user data uses), via {@link LocalDeployFn}.
 */
export class LocalDeployTarget implements DeployTarget {
  readonly kind = 'local' as const;
  constructor(private readonly o: { root: string; deployLocal: LocalDeployFn; imageExists?: (imageUri: string) => Promise<boolean> }) {}

  /** `<root>/<env>/<projectKey>` (scoped names: `@acme/api` → `acme--api`) */
  rootOf(project: ProjectName, env: EnvironmentName): string {
    return join(this.o.root, env, projectKey(project));
  }

  describe(req: Pick<DeployRequest, 'project' | 'environment'>): string {
    return `local ${this.rootOf(req.project, req.environment)}`;
  }

  /** oci-image versions: the image must still be in its registry (the local release records its URI by digest). */
  async preflight(req: DeployRequest): Promise<void> {
    const uri = imageUriOf(req.stored);
    if (req.stored.manifest.kind !== 'oci-image' || !uri || !this.o.imageExists) return;
    if (!(await this.o.imageExists(uri)))
      throw new DeployPreflightError(
        `image ${uri} is not in its registry (deleted, or pushed elsewhere): re-publish ${req.project} (nx run ${req.project}:publish) before promoting`,
      );
  }

  async deploy(req: DeployRequest): Promise<DeployResult> {
    const root = this.rootOf(req.project, req.environment);
    try {
      const tag = `[${req.project}] `;
      const log = (l: string) => req.log(l.startsWith(tag) ? l.slice(tag.length) : l);
      const progress = new Map<string, TransferProgress>();
      const onProgress = (file: string, loaded: number, total: number) => {
        let p = progress.get(file);
        if (!p) progress.set(file, (p = transferProgress({ label: `downloading ${file}`, log })));
        p(loaded, total);
      };
      // the manifest promotion verified is the one the bytes are checked against (never re-read from the store)
      const r = await this.o
        .deployLocal({ store: req.store, project: req.project, version: req.version, root, namespace: req.namespace, log, stored: req.stored, onProgress })
        .finally(() => {
          for (const p of progress.values()) p.done();
        });
      return { target: 'local', root, path: r.path, status: r.status };
    } catch (e) {
      const msg = ((e as Error).message ?? String(e)).split('\n')[0]!.replace(`[${req.project}] `, '');
      throw new DeployError(`local deploy to ${root}: ${msg}`);
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
  /** the command's AWS clients (libs/aws `awsClients`, built once by libs/commands): Lambda, SSM, ECR */
  aws: AwsClients;
  /** injected clients (tests); default: `aws.lambda()` / `aws.ssm()` */
  lambda?: LambdaClient;
  ssm?: SSMClient;
  deployLocal?: LocalDeployFn;
}

/**
 * Creates the deploy target of a kind from the command's AWS clients. Opening does no I/O.
 */
export function createDeployTarget(c: CreateTargetContext): DeployTarget {
  const { aws } = c;
  switch (c.kind) {
    case 'lambda':
      return new LambdaDeployTarget({ client: c.lambda ?? aws.lambda(), functionName: c.options.functionName, alias: c.options.alias, aws, env: c.env });
    case 'ec2':
      return new Ec2DeployTarget({ client: c.ssm ?? aws.ssm(), parameterName: c.options.parameterName });
    case 'local': {
      const root = c.options.localRoot || DEFAULT_LOCAL_ROOT;
      return new LocalDeployTarget({
        root: isAbsolute(root) ? root : join(c.workspaceRoot, root),
        deployLocal: c.deployLocal ?? deployLocal,
        imageExists: (u) => imageExists(u, { env: c.env, aws }),
      });
    }
  }
}
