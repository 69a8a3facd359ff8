/**
 * The one place AWS SDK v3 clients are configured and created (the cdk-assets `lib/aws.ts` idea).
 *
 * Configuration follows the standard AWS chain (AWS_REGION / AWS_DEFAULT_REGION, AWS_PROFILE, shared config
 * files, AWS_ENDPOINT_URL and the per-service AWS_ENDPOINT_URL_<SERVICE>, OIDC web identity in CI). On top:
 * - region falls back to `us-east-1` only when a custom endpoint is set (S3-compatible servers, moto);
 * - S3 uses path-style addressing with a custom endpoint (override: BUILDONCE_S3_FORCE_PATH_STYLE=true|false);
 * - retries: the SDK's `standard` mode with {@link DEFAULT_MAX_ATTEMPTS} attempts (AWS_MAX_ATTEMPTS overrides),
 *   which backs off on throttling (SlowDown, ThrottlingException) and 5xx.
 *
 * SDK packages load lazily on first use, so commands that never touch AWS never pay their start-up.
 * Callers receive narrow clients from {@link AwsClients}; nothing else in buildonce calls `new XxxClient`.
 */
import { createRequire } from 'node:module';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import type { LambdaClient, LambdaClientConfig } from '@aws-sdk/client-lambda';
import type { SSMClient, SSMClientConfig } from '@aws-sdk/client-ssm';
import type { ECRClient, ECRClientConfig } from '@aws-sdk/client-ecr';
import type { KMSClient, KMSClientConfig } from '@aws-sdk/client-kms';
import type { CloudWatchClient, CloudWatchClientConfig } from '@aws-sdk/client-cloudwatch';

const lazyRequire = createRequire(__filename);

/** Attempts per AWS call (first try + retries) unless AWS_MAX_ATTEMPTS says otherwise. */
export const DEFAULT_MAX_ATTEMPTS = 5;

/** AWS services buildonce talks to, with the env suffix of their service-specific endpoint variable. */
export const AWS_SERVICES = { s3: 'S3', lambda: 'LAMBDA', ssm: 'SSM', ecr: 'ECR', kms: 'KMS', cloudwatch: 'CLOUDWATCH' } as const;
export type AwsService = keyof typeof AWS_SERVICES;

/** Client settings buildonce adds to the SDK defaults for one service (pure; see the module doc). */
export interface AwsClientSettings {
  region?: string;
  /** the custom endpoint from `env` (customEndpoint), so a client built for another env than process.env uses it */
  endpoint?: string;
  /** static credentials from `env` (AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY [+ AWS_SESSION_TOKEN]); else the SDK chain */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  maxAttempts: number;
  retryMode: 'standard';
  /** S3 only */
  forcePathStyle?: boolean;
}

/** The custom endpoint for a service, if any (`AWS_ENDPOINT_URL_<SERVICE>` before `AWS_ENDPOINT_URL`). */
export function customEndpoint(service: AwsService, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env[`AWS_ENDPOINT_URL_${AWS_SERVICES[service]}`] || env.AWS_ENDPOINT_URL || undefined;
}

/**
 * The settings of a client for `service` under `env` (pure). Everything is read from `env`, never from
 * process.env behind its back: a client for a task's environment talks to that environment's endpoint with its keys.
 * @returns region (undefined: let the SDK's chain find it), custom endpoint, static credentials when `env` has
 *   keys (else the SDK's chain: profiles, web identity, instance roles), attempts, retry mode and, for S3, path style
 */
export function awsClientSettings(service: AwsService, env: NodeJS.ProcessEnv = process.env): AwsClientSettings {
  const endpoint = customEndpoint(service, env);
  const custom = !!endpoint;
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || (custom ? 'us-east-1' : undefined);
  const attempts = Number(env.AWS_MAX_ATTEMPTS);
  const s: AwsClientSettings = {
    ...(region ? { region } : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          credentials: {
            accessKeyId: env.AWS_ACCESS_KEY_ID,
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          },
        }
      : {}),
    maxAttempts: Number.isInteger(attempts) && attempts > 0 ? attempts : DEFAULT_MAX_ATTEMPTS,
    retryMode: 'standard',
  };
  if (service === 's3') {
    const flag = env.BUILDONCE_S3_FORCE_PATH_STYLE;
    s.forcePathStyle = flag ? flag === 'true' : custom;
  }
  return s;
}

/** Per-service client config merged over the computed settings (tests, `--forcePathStyle`). */
export interface AwsOverrides {
  s3?: S3ClientConfig;
  lambda?: LambdaClientConfig;
  ssm?: SSMClientConfig;
  ecr?: ECRClientConfig;
  kms?: KMSClientConfig;
  cloudwatch?: CloudWatchClientConfig;
}

/** The narrow set of clients buildonce uses; each is created on first call and then reused. */
export interface AwsClients {
  s3(): S3Client;
  lambda(): LambdaClient;
  ssm(): SSMClient;
  /** ECR control API (GetAuthorizationToken, DescribeImages, lifecycle policies); image bytes go through the OCI registry API */
  ecr(): ECRClient;
  /** provenance signing (`Sign`) and verification keys (`GetPublicKey`) */
  kms(): KMSClient;
  /** verification of alarm and metric checks (`DescribeAlarms`, `GetMetricData`) */
  cloudwatch(): CloudWatchClient;
}

/**
 * Hands out AWS clients configured from `env` (default `process.env`) plus `overrides`.
 * Creating the factory does no I/O and loads no SDK.
 */
export function awsClients(opts: { env?: NodeJS.ProcessEnv; overrides?: AwsOverrides } = {}): AwsClients {
  const env = opts.env ?? process.env;
  const o = opts.overrides ?? {};
  const cache = new Map<AwsService, unknown>();
  const make = <T>(service: AwsService, create: (config: object) => T, extra: object | undefined): T => {
    if (!cache.has(service)) cache.set(service, create({ ...awsClientSettings(service, env), ...extra }));
    return cache.get(service) as T;
  };
  return {
    s3: () => make('s3', (c) => new (lazyRequire('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3')).S3Client(c), o.s3),
    lambda: () => make('lambda', (c) => new (lazyRequire('@aws-sdk/client-lambda') as typeof import('@aws-sdk/client-lambda')).LambdaClient(c), o.lambda),
    ssm: () => make('ssm', (c) => new (lazyRequire('@aws-sdk/client-ssm') as typeof import('@aws-sdk/client-ssm')).SSMClient(c), o.ssm),
    ecr: () => make('ecr', (c) => new (lazyRequire('@aws-sdk/client-ecr') as typeof import('@aws-sdk/client-ecr')).ECRClient(c), o.ecr),
    kms: () => make('kms', (c) => new (lazyRequire('@aws-sdk/client-kms') as typeof import('@aws-sdk/client-kms')).KMSClient(c), o.kms),
    cloudwatch: () =>
      make(
        'cloudwatch',
        (c) => new (lazyRequire('@aws-sdk/client-cloudwatch') as typeof import('@aws-sdk/client-cloudwatch')).CloudWatchClient(c),
        o.cloudwatch,
      ),
  };
}
