import {
  CreateAliasCommand,
  GetAliasCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  type LambdaClient,
  PublishVersionCommand,
  UpdateAliasCommand,
  UpdateFunctionCodeCommand,
  waitUntilFunctionUpdatedV2,
  type FunctionConfiguration,
} from '@aws-sdk/client-lambda';
import { retry } from '@buildonce/retry';
import { imageUriOf, sha256HexToBase64 } from '@buildonce/artifact';
import { artifactKey } from '@buildonce/store';
import type { AwsClients } from '@buildonce/aws';
import { imageExists, protectImage } from '@buildonce/image';
import {
  DeployError,
  DeployPreflightError,
  expandTemplate,
  mainFile,
  type DeployRequest,
  type DeployResult,
  type DeployTarget,
  type LambdaDeployResult,
} from './targets';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

/** Default Lambda function name template: one function per project and environment. */
export const DEFAULT_FUNCTION_NAME = '{project}-{env}';
/** Default alias template: the environment name. */
export const DEFAULT_ALIAS = '{env}';

/** The function does not exist: buildonce never creates functions, IaC does. */
export class LambdaFunctionNotFoundError extends DeployPreflightError {
  override name = 'LambdaFunctionNotFoundError';
}

/** Lambda reports a CodeSha256 different from the artifact's sha256 (someone changed $LATEST concurrently, or the bytes differ). */
export class LambdaCodeMismatchError extends DeployError {
  override name = 'LambdaCodeMismatchError';
}

export interface LambdaTargetOptions {
  client: LambdaClient;
  /** `{project}` / `{env}` template (default `{project}-{env}`) */
  functionName?: string;
  /** `{project}` / `{env}` template (default `{env}`) */
  alias?: string;
  /** max wait for `LastUpdateStatus: Successful`, seconds (default 300) */
  maxWaitSeconds?: number;
  /** retries of ResourceConflictException (update in progress), default 6; backoff 250 ms × 2^n, max 8 s */
  conflictRetries?: number;
  /**
   * oci-image preflight: does the image URI by digest exist in its registry (OCI distribution HEAD
   * manifest)? Default: libs/image `imageExists` with the standard registry credentials.
   */
  imageExists?: (imageUri: string) => Promise<boolean>;
  /**
   * oci-image deploy: marks the image protected before Lambda is pointed at it (ECR: `keep-<version>` tag,
   * see libs/image ecrLifecyclePolicy). Default: libs/image `protectImage`.
   */
  protectImage?: (imageUri: string, version: Version) => Promise<unknown>;
  /** process environment for registry credentials (default process.env) */
  env?: NodeJS.ProcessEnv;
  /** the command's AWS clients, for ECR (registry auth, protection tags) */
  aws: AwsClients;
}

function isConflict(e: unknown): boolean {
  return (e as Error)?.name === 'ResourceConflictException' || (e as Error)?.name === 'TooManyRequestsException';
}

function isNotFound(e: unknown): boolean {
  return (e as Error)?.name === 'ResourceNotFoundException';
}

/**
 * Runs a Lambda API call, retrying ResourceConflictException ("An update is in progress") and
 * throttling with exponential backoff (libs/retry); any other error aborts at once.
 */
export async function withConflictRetry<T>(fn: () => Promise<T>, retries = 6, onRetry?: (msg: string) => void): Promise<T> {
  return retry(fn, {
    retries,
    minTimeout: 250,
    maxTimeout: 8000,
    factor: 2,
    retryIf: isConflict,
    onFailedAttempt: (e, { retriesLeft }) => {
      if (retriesLeft > 0) onRetry?.(`${e.name}: retrying (${retriesLeft} left)`);
    },
  });
}

/** Names the function and alias a project+environment deploys to. @throws DeployPreflightError for bad templates */
export function lambdaNames(
  opts: Pick<LambdaTargetOptions, 'functionName' | 'alias'>,
  project: ProjectName,
  env: EnvironmentName,
): { functionName: string; alias: string } {
  return {
    functionName: expandTemplate(opts.functionName || DEFAULT_FUNCTION_NAME, { project, env }),
    alias: expandTemplate(opts.alias || DEFAULT_ALIAS, { project, env }),
  };
}

/**
 * `lambda` deploy target (AWS Lambda API): UpdateFunctionCode with S3Bucket/S3Key of the stored zip
 * (no bytes uploaded by us) → waitUntilFunctionUpdatedV2 → PublishVersion (with CodeSha256 as a
 * precondition) → check the returned CodeSha256 equals the artifact's base64 sha256 → CreateAlias or
 * UpdateAlias `<env>` to the new version. Needs an S3 store; the function must exist (IaC creates it).
 */
export class LambdaDeployTarget implements DeployTarget {
  readonly kind = 'lambda' as const;
  constructor(private readonly o: LambdaTargetOptions) {}

  describe(req: Pick<DeployRequest, 'project' | 'environment'>): string {
    const n = lambdaNames(this.o, req.project, req.environment);
    return `Lambda ${n.functionName} alias ${n.alias}`;
  }

  private s3Location(req: DeployRequest): { bucket: string; key: string; sha256Base64: string } {
    if (req.stored.manifest.kind !== 'lambda-zip') {
      throw new DeployPreflightError(`the lambda target deploys lambda-zip artifacts; ${req.project}@${req.version} is a ${req.stored.manifest.kind}`);
    }
    const file = mainFile(req.stored.manifest);
    const object = req.store.s3Object(artifactKey(req.project, req.version, file.name, req.namespace));
    if (!object) {
      throw new DeployPreflightError(
        `the lambda target deploys from S3 but the store is ${req.store.location.url}: set BUILDONCE_STORE=s3://<bucket>/<prefix> (or use the local target)`,
      );
    }
    return { ...object, sha256Base64: sha256HexToBase64(file.sha256) };
  }

  /**
   * The image URI by digest of an oci-image artifact: the record's repository (or the region's, `imageSource`)
   * + the verified digest (never the record's `uri`).
   */
  private imageUri(req: DeployRequest): string {
    const uri = imageUriOf(req.stored);
    if (!uri)
      throw new DeployPreflightError(`${req.project}@${req.version} is an oci-image without a registry record: re-publish it (nx run ${req.project}:publish)`);
    return req.imageSource ? `${req.imageSource.repository}@${req.stored.manifest.image!.digest}` : uri;
  }

  /** GetFunction (includes Code.ImageUri); undefined when the function or qualifier does not exist. */
  private getFunction(functionName: string, qualifier?: string) {
    return this.unlessNotFound(() => this.o.client.send(new GetFunctionCommand({ FunctionName: functionName, Qualifier: qualifier })));
  }

  /** GetFunctionConfiguration; undefined when the function or qualifier does not exist. */
  private getConfig(functionName: string, qualifier?: string): Promise<FunctionConfiguration | undefined> {
    return this.unlessNotFound(() => this.o.client.send(new GetFunctionConfigurationCommand({ FunctionName: functionName, Qualifier: qualifier })));
  }

  /** Runs a Lambda API call with the update-conflict retries, logging each retry as `<function>: …`. */
  private retrying(functionName: string, req: DeployRequest): <T>(fn: () => Promise<T>) => Promise<T> {
    return (fn) => withConflictRetry(fn, this.o.conflictRetries, (m) => req.log(`${functionName}: ${m}`));
  }

  /** One read of the Lambda API, retried on update conflicts; undefined when it answers ResourceNotFound. */
  private async unlessNotFound<T>(send: () => Promise<T>): Promise<T | undefined> {
    try {
      return await withConflictRetry(send, this.o.conflictRetries);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /**
   * Checks the store kind (zips), artifact kind, that the function exists, that its architecture and
   * package type match (Zip for lambda-zip, Image for oci-image) and, for images, that the digest is in
   * the registry (unless the promotion copies it there first: `imageSource.copyPending`). No side effects.
   */
  async preflight(req: DeployRequest): Promise<void> {
    const isImage = req.stored.manifest.kind === 'oci-image';
    const uri = isImage ? this.imageUri(req) : (this.s3Location(req), undefined);
    const { functionName } = lambdaNames(this.o, req.project, req.environment);
    const cfg = await this.getConfig(functionName);
    if (!cfg) throw functionMissing(functionName);
    const arch = cfg.Architectures?.[0];
    if (arch && arch !== req.stored.manifest.architecture) {
      throw new DeployPreflightError(
        `Lambda function ${functionName} is ${arch} but ${req.project}@${req.version} was built for ${req.stored.manifest.architecture}: fix the function's architecture in your IaC or the build target`,
      );
    }
    const want = isImage ? 'Image' : 'Zip';
    if ((cfg.PackageType ?? 'Zip') !== want) {
      throw new DeployPreflightError(
        `Lambda function ${functionName} has PackageType ${cfg.PackageType ?? 'Zip'} but ${req.project}@${req.version} is a ${req.stored.manifest.kind}: deploy ${isImage ? 'a zip deployable (lambda-zip)' : 'an image deployable (oci-image)'} to it, or fix the function's package type in your IaC`,
      );
    }
    if (uri && !req.imageSource?.copyPending) {
      const exists = await (this.o.imageExists ?? ((u: string) => imageExists(u, { env: this.o.env, aws: this.o.aws })))(uri);
      if (!exists)
        throw new DeployPreflightError(
          `image ${uri} is not in its registry (deleted, or pushed elsewhere): re-publish ${req.project} (nx run ${req.project}:publish) before promoting`,
        );
    }
  }

  async deploy(req: DeployRequest): Promise<DeployResult> {
    if (req.stored.manifest.kind === 'oci-image') return this.deployImage(req);
    const { functionName, alias } = lambdaNames(this.o, req.project, req.environment);
    const loc = this.s3Location(req);
    try {
      const before = await this.getConfig(functionName);
      if (!before) throw functionMissing(functionName);
      const published = await this.updateAndPublish(req, functionName, {
        current: before.CodeSha256 === loc.sha256Base64,
        code: { S3Bucket: loc.bucket, S3Key: loc.key },
        updated: `UpdateFunctionCode ${functionName} from s3://${loc.bucket}/${loc.key}`,
        already: `${functionName} $LATEST already has CodeSha256 ${loc.sha256Base64}`,
        codeSha256: loc.sha256Base64,
      });
      if (published.CodeSha256 !== loc.sha256Base64) {
        throw new LambdaCodeMismatchError(
          `Lambda ${functionName} version ${published.Version} has CodeSha256 ${published.CodeSha256}, artifact ${req.project}@${req.version} has ${loc.sha256Base64}: another deploy changed $LATEST; alias ${alias} not moved`,
        );
      }
      const version = published.Version!;
      req.log(`PublishVersion ${functionName} → version ${version} (CodeSha256 ${published.CodeSha256} matches the artifact)`);
      return await this.routeNewVersion(
        req,
        { functionName, alias, version, functionArn: published.FunctionArn, codeSha256: published.CodeSha256! },
        { s3Bucket: loc.bucket, s3Key: loc.key },
      );
    } catch (e) {
      throw toDeployError(e, functionName);
    }
  }

  /**
   * Rollback: re-points the alias at the Lambda version an earlier deploy published, after checking
   * (GetFunctionConfiguration with Qualifier) that it still exists with the artifact's CodeSha256.
   * Falls back to a full {@link deploy} when that version is gone or differs.
   */
  async restore(req: DeployRequest, previous: DeployResult): Promise<DeployResult> {
    const { functionName, alias } = lambdaNames(this.o, req.project, req.environment);
    if (req.stored.manifest.kind === 'oci-image') {
      const uri = this.imageUri(req);
      if (previous.target === 'lambda' && previous.functionName === functionName) {
        try {
          // a published version is immutable: same version number with the CodeSha256 Lambda reported when we
          // published it, and that deploy was of this image URI → re-alias it
          const cfg = await this.getConfig(functionName, previous.functionVersion);
          if (cfg && previous.imageUri === uri && cfg.CodeSha256 === previous.codeSha256) {
            const aliasArn = await this.pointAlias(functionName, alias, previous.functionVersion, req);
            return { ...previous, alias, aliasArn, imageUri: uri, method: 'alias' };
          }
          req.log(`${functionName} version ${previous.functionVersion} is gone or runs another image; redeploying ${uri}`);
        } catch (e) {
          throw toDeployError(e, functionName);
        }
      }
      return this.deployImage(req);
    }
    const loc = this.s3Location(req);
    if (previous.target === 'lambda' && previous.functionName === functionName) {
      try {
        const cfg = await this.getConfig(functionName, previous.functionVersion);
        if (cfg && cfg.CodeSha256 === loc.sha256Base64) {
          const aliasArn = await this.pointAlias(functionName, alias, previous.functionVersion, req);
          return { ...previous, alias, aliasArn, s3Bucket: loc.bucket, s3Key: loc.key, codeSha256: cfg.CodeSha256, method: 'alias' };
        }
        req.log(`${functionName} version ${previous.functionVersion} is gone or differs; redeploying the code from the store`);
      } catch (e) {
        throw toDeployError(e, functionName);
      }
    }
    return this.deploy(req);
  }

  /**
   * Points the alias at the new version, or with `req.canary` (and an alias already on another
   * version) keeps it on that version with `RoutingConfig.AdditionalVersionWeights = { new: percent/100 }`
   * (Lambda weighted aliases). A first deploy (no alias yet) has nothing to canary against and goes to 100 %.
   */
  private async routeAlias(
    functionName: string,
    alias: string,
    version: string,
    req: DeployRequest,
  ): Promise<{ aliasArn?: string; canary?: { percent: number; stableVersion: string } }> {
    if (req.canary) {
      let stable: string | undefined;
      try {
        stable = (await this.o.client.send(new GetAliasCommand({ FunctionName: functionName, Name: alias }))).FunctionVersion;
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      if (stable && stable !== version && stable !== '$LATEST') {
        const r = await this.canaryAlias(req, { functionName, alias, stable, version, percent: req.canary.percent });
        return { aliasArn: r.AliasArn, canary: { percent: req.canary.percent, stableVersion: stable } };
      }
      req.log(`${functionName}:${alias} has no earlier version to canary against: shifting 100% to version ${version}`);
    }
    return { aliasArn: await this.pointAlias(functionName, alias, version, req) };
  }

  /**
   * UpdateAlias: the alias stays on version `stable` and sends `percent` % (two decimals) of the traffic to
   * `version` (RoutingConfig AdditionalVersionWeights), retried on update conflicts; logs the split.
   * @returns the UpdateAlias answer
   */
  private async canaryAlias(req: DeployRequest, c: { functionName: string; alias: string; stable: string; version: string; percent: number }) {
    const r = await this.retrying(
      c.functionName,
      req,
    )(() =>
      this.o.client.send(
        new UpdateAliasCommand({
          FunctionName: c.functionName,
          Name: c.alias,
          FunctionVersion: c.stable,
          RoutingConfig: { AdditionalVersionWeights: { [c.version]: Math.round(c.percent * 100) / 10_000 } },
        }),
      ),
    );
    req.log(`UpdateAlias ${c.functionName}:${c.alias} stays on version ${c.stable}, canary ${c.percent}% → version ${c.version}`);
    return r;
  }

  /** Ends a canary: the alias moves to the new version with no additional weights. */
  async completeCanary(req: DeployRequest, started: DeployResult): Promise<DeployResult> {
    if (started.target !== 'lambda' || !started.canary) return started;
    try {
      const aliasArn = await this.pointAlias(started.functionName, started.alias, started.functionVersion, req);
      const { canary: _done, ...rest } = started;
      return { ...rest, aliasArn: aliasArn ?? started.aliasArn };
    } catch (e) {
      throw toDeployError(e, started.functionName);
    }
  }

  /**
   * Next step of a stepped canary: UpdateAlias keeps the alias on the stable version with
   * `AdditionalVersionWeights = { <new>: percent/100 }`. No-op when no canary runs.
   */
  async shiftCanary(req: DeployRequest, started: DeployResult, percent: number): Promise<DeployResult> {
    if (started.target !== 'lambda' || !started.canary) return started;
    const { functionName, alias, functionVersion, canary } = started;
    try {
      const r = await this.canaryAlias(req, { functionName, alias, stable: canary.stableVersion, version: functionVersion, percent });
      return { ...started, aliasArn: r.AliasArn ?? started.aliasArn, canary: { ...canary, percent } };
    } catch (e) {
      throw toDeployError(e, functionName);
    }
  }

  /**
   * Image deploy (Lambda API): UpdateFunctionCode { ImageUri: <repo>@sha256:<digest> } unless $LATEST
   * already runs that URI → waitUntilFunctionUpdatedV2 → PublishVersion → GetFunction of the new version
   * must report the same ImageUri (else another deploy changed $LATEST and the alias is not moved) →
   * alias `<env>` to it. The image is referenced by digest, never by tag.
   */
  private async deployImage(req: DeployRequest): Promise<DeployResult> {
    const { functionName, alias } = lambdaNames(this.o, req.project, req.environment);
    const uri = this.imageUri(req);
    try {
      const before = await this.getFunction(functionName);
      if (!before) throw functionMissing(functionName);
      if (await (this.o.protectImage ?? ((u: string, v: Version) => protectImage(u, v, { env: this.o.env, aws: this.o.aws })))(uri, req.version)) {
        req.log(`protected ${uri} (tag keep-${req.version})`);
      }
      const published = await this.updateAndPublish(req, functionName, {
        current: before.Code?.ImageUri === uri,
        code: { ImageUri: uri },
        updated: `UpdateFunctionCode ${functionName} ImageUri ${uri}`,
        already: `${functionName} $LATEST already runs ${uri}`,
      });
      const version = published.Version!;
      const check = await this.getFunction(functionName, version);
      if (check?.Code?.ImageUri !== uri) {
        throw new LambdaCodeMismatchError(
          `Lambda ${functionName} version ${version} runs ${check?.Code?.ImageUri ?? '(unknown)'}, artifact ${req.project}@${req.version} is ${uri}: another deploy changed $LATEST; alias ${alias} not moved`,
        );
      }
      req.log(`PublishVersion ${functionName} → version ${version} (ImageUri ${uri})`);
      return await this.routeNewVersion(
        req,
        { functionName, alias, version, functionArn: published.FunctionArn, codeSha256: published.CodeSha256 ?? '' },
        { imageUri: uri },
      );
    } catch (e) {
      throw toDeployError(e, functionName);
    }
  }

  /**
   * UpdateFunctionCode with `o.code` unless `$LATEST` already has it (`o.current`), waits until the update
   * finished, then PublishVersion (with `o.codeSha256`, the Lambda API refuses to publish other code), each
   * call retried on update conflicts. Logs `o.updated` or `o.already`.
   * @returns the PublishVersion answer
   */
  private async updateAndPublish(
    req: DeployRequest,
    functionName: string,
    o: { current: boolean; code: { S3Bucket: string; S3Key: string } | { ImageUri: string }; updated: string; already: string; codeSha256?: string },
  ) {
    const retry = this.retrying(functionName, req);
    if (!o.current) {
      await retry(() => this.o.client.send(new UpdateFunctionCodeCommand({ FunctionName: functionName, ...o.code })));
      req.log(o.updated);
    } else {
      req.log(o.already);
    }
    await this.waitUpdated(functionName);
    return retry(() =>
      this.o.client.send(
        new PublishVersionCommand({
          FunctionName: functionName,
          ...(o.codeSha256 ? { CodeSha256: o.codeSha256 } : {}),
          Description: `buildonce ${req.project}@${req.version}`,
        }),
      ),
    );
  }

  /**
   * Waits (Lambda waiter FunctionUpdatedV2, at most `maxWaitSeconds`, default 300 s) until `$LATEST` finished updating.
   * @throws DeployError when the update ends in any state but SUCCESS
   */
  private async waitUpdated(functionName: string): Promise<void> {
    const waited = await waitUntilFunctionUpdatedV2(
      { client: this.o.client, maxWaitTime: this.o.maxWaitSeconds ?? 300, minDelay: 1, maxDelay: 5 },
      { FunctionName: functionName },
    );
    if (waited.state !== 'SUCCESS')
      throw new DeployError(`Lambda function ${functionName} did not finish updating: ${waited.state} ${String(waited.reason ?? '').slice(0, 200)}`);
  }

  /**
   * Points the alias at a newly published, already checked function version (whole, or as a canary) and
   * describes the deploy for the history: the zip's S3 location or the image URI by digest.
   */
  private async routeNewVersion(
    req: DeployRequest,
    v: { functionName: string; alias: string; version: string; functionArn?: string; codeSha256: string },
    source: { s3Bucket: string; s3Key: string } | { imageUri: string },
  ): Promise<LambdaDeployResult> {
    const { aliasArn, canary } = await this.routeAlias(v.functionName, v.alias, v.version, req);
    return {
      ...(canary ? { canary } : {}),
      target: 'lambda',
      functionName: v.functionName,
      functionArn: v.functionArn,
      functionVersion: v.version,
      codeSha256: v.codeSha256,
      alias: v.alias,
      aliasArn,
      ...source,
      method: 'code',
    } satisfies LambdaDeployResult;
  }

  /**
   * GetAlias → UpdateAlias, or CreateAlias when missing (UpdateAlias again if a concurrent create won).
   * Always clears `RoutingConfig`, so a canary left behind by a crashed promotion is repaired.
   * @returns AliasArn
   */
  private async pointAlias(functionName: string, alias: string, version: string, req: DeployRequest): Promise<string | undefined> {
    const retry = this.retrying(functionName, req);
    const update = async () => {
      const r = await retry(() =>
        this.o.client.send(
          new UpdateAliasCommand({ FunctionName: functionName, Name: alias, FunctionVersion: version, RoutingConfig: { AdditionalVersionWeights: {} } }),
        ),
      );
      req.log(`UpdateAlias ${functionName}:${alias} → version ${version}`);
      return r.AliasArn;
    };
    let exists = true;
    try {
      await this.o.client.send(new GetAliasCommand({ FunctionName: functionName, Name: alias }));
    } catch (e) {
      if (!isNotFound(e)) throw e;
      exists = false;
    }
    if (exists) return update();
    try {
      const r = await this.o.client.send(new CreateAliasCommand({ FunctionName: functionName, Name: alias, FunctionVersion: version }));
      req.log(`CreateAlias ${functionName}:${alias} → version ${version}`);
      return r.AliasArn;
    } catch (e) {
      if (isConflict(e)) return update();
      throw e;
    }
  }
}

/** The one-line error for a function that does not exist (buildonce never creates functions). */
function functionMissing(functionName: string): LambdaFunctionNotFoundError {
  return new LambdaFunctionNotFoundError(`Lambda function ${functionName} does not exist: create it with your IaC (buildonce never creates functions)`);
}

function toDeployError(e: unknown, functionName: string): Error {
  if (e instanceof DeployError || e instanceof DeployPreflightError) return e;
  if (isNotFound(e)) return functionMissing(functionName);
  const err = e as Error;
  return new DeployError(`Lambda ${functionName}: ${err.name ?? 'Error'}: ${(err.message ?? String(e)).split('\n')[0]}`);
}
