import { z } from 'zod';
import type { Manifest, ManifestFile, StoredManifest } from '@buildonce/artifact';
import { projectKey, type ArtifactNamespace, type BlobStore } from '@buildonce/store';
import { BuildonceError, RecordedFailureError } from '@buildonce/errors';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

/** The deploy target kinds. `local` is the embedded one (file store); `lambda` and `ec2` need an S3 store. */
export type DeployTargetKind = 'lambda' | 'ec2' | 'local';

/** Everything a target needs to deploy one verified version. Targets never upload artifact bytes. */
export interface DeployRequest {
  project: ProjectName;
  environment: EnvironmentName;
  version: Version;
  /** namespace the verified artifact lives in (`trusted` or `preview`) */
  namespace: ArtifactNamespace;
  /** the stored manifest, already verified against every stored file (verifyArtifact) */
  stored: StoredManifest;
  store: BlobStore;
  dryRun?: boolean;
  /** one line per step, already prefixed by the caller when needed */
  log: (line: string) => void;
  /**
   * Canary shift (Lambda only; other targets ignore it): the alias stays on the version it runs and
   * sends `percent` % of invocations to the new one until {@link DeployTarget.completeCanary}.
   */
  canary?: { percent: number };
  /**
   * oci-image in a multi-region promotion: the region's registry repository (`host/repo`) its copy of the
   * verified digest is deployed from, instead of the stored record's repository. `copyPending`: the
   * promotion copies the image there after preflight, so preflight does not look for it there yet.
   */
  imageSource?: { repository: string; copyPending?: boolean };
}

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

/** What a Lambda deploy did: published function version, its CodeSha256 (base64 for zips; for images as Lambda reports it) and the alias pointed at it. */
export const lambdaDeployResultSchema = z
  .object({
    target: z.literal('lambda'),
    functionName: z.string(),
    functionArn: z.string().optional(),
    /** published version number (decimal string, as Lambda returns it) */
    functionVersion: z.string(),
    /** base64 sha256 of the deployment package, as Lambda reports it (== the artifact's sha256) */
    codeSha256: z.string(),
    alias: z.string(),
    aliasArn: z.string().optional(),
    /** zip deploys: where Lambda took the package from */
    s3Bucket: z.string().optional(),
    s3Key: z.string().optional(),
    /** oci-image deploys: the image URI by digest (`<registry>/<repo>@sha256:…`) the version runs */
    imageUri: z.string().optional(),
    /** `code`: UpdateFunctionCode + PublishVersion; `alias`: an existing published version was re-aliased (rollback) */
    method: z.enum(['code', 'alias']),
    /** set while a canary runs: the alias stays on `stableVersion` and routes `percent` % to functionVersion */
    canary: z.object({ percent: z.number(), stableVersion: z.string() }).strict().optional(),
  })
  .strict();

/** What an EC2 deploy did: the SSM parameter (release pointer read by user data) and the value written. */
export const ec2DeployResultSchema = z
  .object({
    target: z.literal('ec2'),
    parameterName: z.string(),
    /** SSM parameter version after the write */
    parameterVersion: z.number().int().optional(),
    bucket: z.string(),
    key: z.string(),
    sha256: sha256Hex,
  })
  .strict();

/** What a local deploy did: the release directory and the `current` link. */
export const localDeployResultSchema = z
  .object({
    target: z.literal('local'),
    /** deploy root `.buildonce/deploy/<env>/<project>` (absolute) */
    root: z.string(),
    /** the release directory `current` now points at */
    path: z.string(),
    status: z.enum(['deployed', 'already-current']),
  })
  .strict();

export const deployResultSchema = z.discriminatedUnion('target', [lambdaDeployResultSchema, ec2DeployResultSchema, localDeployResultSchema]);
export type LambdaDeployResult = z.infer<typeof lambdaDeployResultSchema>;
export type Ec2DeployResult = z.infer<typeof ec2DeployResultSchema>;
export type LocalDeployResult = z.infer<typeof localDeployResultSchema>;
/** Discriminated by `target`; stored in history entries. */
export type DeployResult = z.infer<typeof deployResultSchema>;

/**
 * A deploy target. `preflight` has no side effects and refuses what cannot work (missing function,
 * wrong store kind) so a refused promotion changes nothing; `deploy` makes the environment run the
 * version; `restore` (optional) re-activates an earlier deployment cheaply during rollback (e.g.
 * re-point a Lambda alias at an already published version) and falls back to `deploy` itself.
 */
export interface DeployTarget {
  readonly kind: DeployTargetKind;
  /** one line naming where the version goes, e.g. `Lambda rust-scorer-prod alias prod` */
  describe(req: Pick<DeployRequest, 'project' | 'environment'>): string;
  /** @throws a typed deploy error with a one-line message when the target cannot take the version */
  preflight(req: DeployRequest): Promise<void>;
  /** @throws a typed deploy error (the caller records the failure in the history) */
  deploy(req: DeployRequest): Promise<DeployResult>;
  restore?(req: DeployRequest, previous: DeployResult): Promise<DeployResult>;
  /** ends a canary `deploy` started with `req.canary`: all traffic to the new version (no-op result when none ran) */
  completeCanary?(req: DeployRequest, started: DeployResult): Promise<DeployResult>;
  /** moves a running canary (stepped canary) to `percent` % of the traffic; the stable version keeps the rest */
  shiftCanary?(req: DeployRequest, started: DeployResult, percent: number): Promise<DeployResult>;
}

/** The target refuses the request before changing anything (missing function, wrong store, bad option). */
export class DeployPreflightError extends BuildonceError {
  override name = 'DeployPreflightError';
}

/**
 * The deploy started and failed; the environment may be partially updated (alias/pointer not moved).
 * The release layer records it in the history and rethrows it with `seq` set.
 */
export class DeployError extends RecordedFailureError {
  override name = 'DeployError';
}

/**
 * The file a target ships: for `lambda-zip` the first `.zip`, for `node-tarball` the first `.tar.gz`
 * / `.tgz`, else the manifest's first file.
 */
export function mainFile(manifest: Manifest): ManifestFile {
  const ext = manifest.kind === 'lambda-zip' ? ['.zip'] : ['.tar.gz', '.tgz'];
  return manifest.files.find((f) => ext.some((x) => f.name.endsWith(x))) ?? manifest.files[0]!;
}

/**
 * Expands a name template: `{project}` becomes the project key (`@acme/api` → `acme--api`, see
 * libs/store keys.ts) and `{env}` the environment name; nothing else is interpreted.
 * @throws DeployPreflightError for unknown `{placeholders}`
 */
export function expandTemplate(template: string, vars: { project: ProjectName; env: EnvironmentName }): string {
  return template.replace(/\{([^}]*)\}/g, (_, k: string) => {
    if (k === 'project') return projectKey(vars.project);
    if (k === 'env') return vars.env;
    throw new DeployPreflightError(`unknown placeholder {${k}} in "${template}": use {project} and {env}`);
  });
}
