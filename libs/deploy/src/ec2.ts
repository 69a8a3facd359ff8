import { createRequire } from 'node:module';
import type { SSMClient } from '@aws-sdk/client-ssm';

/** `@aws-sdk/client-ssm` commands, loaded when the ec2 target is used. */
const ssmSdk = (): typeof import('@aws-sdk/client-ssm') => createRequire(__filename)('@aws-sdk/client-ssm') as typeof import('@aws-sdk/client-ssm');
import { z } from 'zod';
import { artifactKey } from '@buildonce/store';
import { DeployError, DeployPreflightError, expandTemplate, mainFile, type DeployRequest, type DeployResult, type DeployTarget } from './targets';
import type { EnvironmentName, ProjectName } from '@buildonce/values';

/** Default SSM parameter name template of the EC2 release pointer. */
export const DEFAULT_PARAMETER_NAME = '/buildonce/{env}/{project}';

/**
 * The value of the SSM release pointer, exactly what `apps/express-api/deploy/user-data.sh` reads:
 * the S3 bucket and key (with the store prefix) of the stored tarball, its version and sha256 (hex).
 */
export const ec2PointerSchema = z
  .object({
    bucket: z.string(),
    key: z.string(),
    version: z.string(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict();
export type Ec2Pointer = z.infer<typeof ec2PointerSchema>;

/** Builds the pointer value for a verified version (pure). @throws DeployPreflightError unless the store is S3 */
export function ec2PointerFor(req: Pick<DeployRequest, 'store' | 'project' | 'version' | 'namespace' | 'stored'>): Ec2Pointer {
  const file = mainFile(req.stored.manifest);
  const object = req.store.s3Object(artifactKey(req.project, req.version, file.name, req.namespace));
  if (!object) {
    throw new DeployPreflightError(
      `the ec2 target writes an S3 pointer but the store is ${req.store.location.url}: set BUILDONCE_STORE=s3://<bucket>/<prefix> (or use the local target)`,
    );
  }
  return { ...object, version: req.version, sha256: file.sha256 };
}

export interface Ec2TargetOptions {
  client: SSMClient;
  /** `{project}` / `{env}` template, default `/buildonce/{env}/{project}` */
  parameterName?: string;
}

/**
 * `ec2` deploy target: writes the environment's release pointer, SSM parameter
 * `/buildonce/<env>/<project>` (SSM PutParameter, Type String, Overwrite) = JSON
 * `{bucket,key,version,sha256}`; instances' user data resolves it at boot (and a rolling
 * replacement picks it up). No instance is touched directly.
 */
export class Ec2DeployTarget implements DeployTarget {
  readonly kind = 'ec2' as const;
  constructor(private readonly o: Ec2TargetOptions) {}

  parameterName(project: ProjectName, env: EnvironmentName): string {
    const name = expandTemplate(this.o.parameterName || DEFAULT_PARAMETER_NAME, { project, env });
    if (!/^\/?[A-Za-z0-9_.\-/]{1,1011}$/.test(name)) throw new DeployPreflightError(`invalid SSM parameter name "${name}"`);
    return name;
  }

  describe(req: Pick<DeployRequest, 'project' | 'environment'>): string {
    return `SSM parameter ${this.parameterName(req.project, req.environment)}`;
  }

  async preflight(req: DeployRequest): Promise<void> {
    this.parameterName(req.project, req.environment);
    if (req.stored.manifest.kind !== 'node-tarball') {
      throw new DeployPreflightError(`the ec2 target deploys node-tarball artifacts; ${req.project}@${req.version} is a ${req.stored.manifest.kind}`);
    }
    ec2PointerFor(req);
  }

  async deploy(req: DeployRequest): Promise<DeployResult> {
    const name = this.parameterName(req.project, req.environment);
    const pointer = ec2PointerFor(req);
    try {
      const out = await this.o.client.send(
        new (ssmSdk().PutParameterCommand)({
          Name: name,
          Type: 'String',
          Overwrite: true,
          Value: JSON.stringify(pointer),
          Description: `buildonce release pointer of ${req.project} in ${req.environment}`,
        }),
      );
      req.log(`PutParameter ${name} = ${req.project}@${req.version} (s3://${pointer.bucket}/${pointer.key})`);
      return { target: 'ec2', parameterName: name, parameterVersion: out.Version, bucket: pointer.bucket, key: pointer.key, sha256: pointer.sha256 };
    } catch (e) {
      const err = e as Error;
      throw new DeployError(`SSM PutParameter ${name}: ${err.name}: ${(err.message ?? '').split('\n')[0]}`);
    }
  }
}

/** GetParameter of an environment's pointer; undefined when it does not exist. @throws DeployError for unparsable values */
export async function readEc2Pointer(client: SSMClient, name: string): Promise<Ec2Pointer | undefined> {
  try {
    const out = await client.send(new (ssmSdk().GetParameterCommand)({ Name: name }));
    const r = ec2PointerSchema.safeParse(JSON.parse(out.Parameter?.Value ?? 'null'));
    if (!r.success) throw new DeployError(`SSM parameter ${name} is not a buildonce pointer`);
    return r.data;
  } catch (e) {
    if ((e as Error).name === 'ParameterNotFound') return undefined;
    throw e;
  }
}
