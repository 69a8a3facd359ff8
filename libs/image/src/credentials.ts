import { createRequire } from 'node:module';
import type { AwsClients } from '@buildonce/aws';
import { RegistryClient, type RegistryCredentials } from './registry';
import { ecrHost, type ImageReference } from './reference';
import { RegistryAuthError } from './errors';

/**
 * Credentials for a registry host, in this order:
 * 1. `BUILDONCE_REGISTRY_TOKEN` (static bearer) or `BUILDONCE_REGISTRY_USERNAME` + `BUILDONCE_REGISTRY_PASSWORD`
 *    (basic; also presented at a bearer token realm), for the host of `BUILDONCE_REGISTRY` / the publish
 *    registry only (never sent to another host, e.g. a public base image registry);
 * 2. an ECR private registry host: ECR `GetAuthorizationToken` with the standard AWS credentials
 *    (the token is base64 `AWS:<password>`, used as basic auth, valid 12 hours);
 * 3. none: anonymous (public registries hand out anonymous pull tokens through the token dance).
 * @throws RegistryAuthError when ECR refuses the token request
 */
export async function registryCredentials(o: {
  registry: string;
  configuredHost?: string;
  env?: NodeJS.ProcessEnv;
  aws?: AwsClients;
}): Promise<RegistryCredentials | undefined> {
  const env = o.env ?? process.env;
  if (o.configuredHost === o.registry) {
    if (env.BUILDONCE_REGISTRY_TOKEN) return { token: env.BUILDONCE_REGISTRY_TOKEN };
    if (env.BUILDONCE_REGISTRY_USERNAME && env.BUILDONCE_REGISTRY_PASSWORD !== undefined)
      return { username: env.BUILDONCE_REGISTRY_USERNAME, password: env.BUILDONCE_REGISTRY_PASSWORD };
  }
  const ecr = ecrHost(o.registry);
  if (ecr && o.aws) return ecrCredentials(o.aws, ecr.account);
  return undefined;
}

/**
 * ECR `GetAuthorizationToken` (ECR API) → basic credentials `AWS:<password>` for the registry.
 * @throws RegistryAuthError (one line) when the call fails
 */
export async function ecrCredentials(aws: AwsClients, account?: string): Promise<RegistryCredentials> {
  // loaded lazily (like libs/aws) so commands that never talk to ECR never load its SDK
  const { GetAuthorizationTokenCommand } = createRequire(__filename)('@aws-sdk/client-ecr') as typeof import('@aws-sdk/client-ecr');
  try {
    const r = await aws.ecr().send(new GetAuthorizationTokenCommand(account ? { registryIds: [account] } : {}));
    const token = r.authorizationData?.[0]?.authorizationToken;
    if (!token) throw new Error('no authorizationData');
    const text = Buffer.from(token, 'base64').toString('utf8');
    const i = text.indexOf(':');
    return { username: text.slice(0, i), password: text.slice(i + 1) };
  } catch (e) {
    throw new RegistryAuthError(
      `ECR GetAuthorizationToken failed (${(e as Error).name}: ${(e as Error).message.split('\n')[0]}): configure AWS credentials with ecr:GetAuthorizationToken`,
      undefined,
      { cause: e },
    );
  }
}

/** A client for the registry of `ref`, with credentials per {@link registryCredentials}. */
export async function clientFor(
  ref: Pick<ImageReference, 'registry' | 'scheme'>,
  o: { configuredHost?: string; env?: NodeJS.ProcessEnv; aws?: AwsClients; onRequest?: (method: string, path: string, status: number) => void } = {},
): Promise<RegistryClient> {
  const credentials = await registryCredentials({ registry: ref.registry, configuredHost: o.configuredHost, env: o.env, aws: o.aws });
  return new RegistryClient({ registry: ref.registry, scheme: ref.scheme, credentials, onRequest: o.onRequest });
}
