import { readBuildManifest } from '@buildonce/artifact';
import {
  appendGithubOutput,
  currentKey,
  formatBytes,
  artifactKey,
  openRegionStore,
  openStore,
  publishArtifact,
  publishMetadataFromEnv,
  resolveStoreLocation,
  type ArtifactNamespace,
  type BlobStore,
  type PublishResult,
  type StoreLocation,
  transferProgress,
  type TransferProgress,
} from '@buildonce/store';
import {
  clientFor,
  ecrHost,
  imageUriByDigest,
  openImageAdmin,
  parseImageReference,
  type ImageAdmin,
  pushImageBuild,
  putEcrLifecyclePolicy,
  REGISTRY_ENV,
  type PushImageResult,
  type RegistryClient,
} from '@buildonce/image';
import { createDeployTarget, type CreateTargetContext, type DeployTarget, type DeployTargetKind, type DeployTargetOptions } from '@buildonce/deploy';
import {
  checkRegionsTarget,
  effectiveTargetKind,
  loadConfig,
  resolveEnvironment,
  type BuildonceConfig,
  type DeployMode,
  type ResolvedEnvironment,
} from '@buildonce/config';
import { ConfigError } from '@buildonce/errors';
import { ReleaseError } from '@buildonce/errors';
import { parseReason, promotionMetadataFromEnv, type PromotionMetadata } from '@buildonce/promotion';
import { promoteVersion, type PromoteResult } from '@buildonce/promotion';
import {
  collectReleases,
  fieldOf,
  releaseRowOf,
  renderMarkdown,
  renderTable,
  resolveCurrent,
  type ReleaseField,
  type ReleaseRow,
  type ResolvedRelease,
} from '@buildonce/promotion';
import { rollbackEnvironment, type PromotionRegion } from '@buildonce/promotion';
import { awsClients, type AwsClients } from '@buildonce/aws';
import { signerFromSpec } from '@buildonce/provenance';
import { signPublishedVersion, type PublishSigning } from '@buildonce/promotion';
import { runRetention, type RetentionResult } from '@buildonce/retention';
import { runImageRetention, type ImageRetentionResult, type RegionRegistry } from '@buildonce/retention';
import { checksFor, prepareChecks, type VerifySetup } from '@buildonce/verification';
import { dryRunMeasuredChecks } from '@buildonce/verification';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

/** Facts every command gets from its executor (never an ExecutorContext). */
export interface CommandBase {
  project: ProjectName;
  workspaceRoot: string;
  /** environment name, parsed at the edge (executor options, CLI flags) before any I/O */
  env: EnvironmentName;
  /** `--store`; undefined → BUILDONCE_STORE → buildonce.json → embedded file store (resolveStoreLocation) */
  store?: string;
  /** process environment (default process.env) */
  processEnv?: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

/** What the setup resolved: config, environment, store, AWS clients. */
export interface CommandContext extends WorkspaceStore {
  environment: ResolvedEnvironment;
}

/** The workspace's configuration, store and AWS clients, as every command opens them. */
export interface WorkspaceStore {
  config: BuildonceConfig;
  location: StoreLocation;
  store: BlobStore;
  /**
   * The command's one set of AWS clients (libs/aws, from the command's process environment), passed down to
   * every lib that talks to AWS (deploy targets, registries, KMS, CloudWatch); each client is created on first use.
   */
  aws: AwsClients;
}

/**
 * Loads buildonce.json (+ BUILDONCE_DEPLOY) and opens the workspace's store, chosen by
 * resolveStoreLocation (`--store` → BUILDONCE_STORE → buildonce.json `store` → embedded default). Every
 * command (publish, promote, rollback, releases, resolve, retention, the CLI) opens its store here, and
 * builds its one lazy set of AWS clients (libs/aws `awsClients`) that every lib below takes as a parameter.
 * Opening does no store I/O and creates no AWS client.
 * @throws ConfigError (buildonce.json) (also a malformed store URL)
 */
export async function openWorkspaceStore(o: {
  workspaceRoot: string;
  store?: string;
  env?: NodeJS.ProcessEnv;
  forcePathStyle?: boolean;
}): Promise<WorkspaceStore> {
  const env = o.env ?? process.env;
  const config = await loadConfig(o.workspaceRoot, env);
  const location = resolveStoreLocation({ option: o.store, env, configured: config.store, workspaceRoot: o.workspaceRoot });
  return { config, location, store: openStore(location, { env, forcePathStyle: o.forcePathStyle }), aws: awsClients({ env }) };
}

/**
 * Validates the environment name (before any I/O), opens the workspace store and resolves the environment.
 * @throws InvalidEnvironmentNameError, ConfigError, UnknownEnvironmentError
 */
export async function openCommand(c: CommandBase): Promise<CommandContext> {
  const ws = await openWorkspaceStore({ workspaceRoot: c.workspaceRoot, store: c.store, env: c.processEnv });
  return { ...ws, environment: resolveEnvironment(ws.config, c.env) };
}

export interface PromoteCommand extends CommandBase {
  /** directory of the build manifest artifact.json (absolute) */
  outputDir: string;
  deploy: DeployTargetOptions;
  dryRun?: boolean;
  /** injected clients / local unpacker (tests, and the executor for the local target) */
  clients?: Pick<CreateTargetContext, 'lambda' | 'ssm' | 'deployLocal'>;
  meta?: PromotionMetadata;
  /** `--reason`: why, recorded in the history entry */
  reason?: string;
}

function targetFor(c: PromoteCommand | RollbackCommand, ctx: CommandContext): DeployTarget {
  const kind = effectiveTargetKind(ctx.config.deploy, ctx.location.kind, c.deploy.target);
  return createDeployTarget({ kind, options: c.deploy, workspaceRoot: c.workspaceRoot, env: c.processEnv, aws: ctx.aws, ...c.clients });
}

/** The process environment of a region: the same endpoint and credentials, AWS_REGION set to it. */
function regionEnv(processEnv: NodeJS.ProcessEnv, region: string): NodeJS.ProcessEnv {
  return { ...processEnv, AWS_REGION: region, AWS_DEFAULT_REGION: region };
}

/**
 * Registry clients for image region copies, one per registry host (built on first use): credentials as
 * libs/image clientFor gives them (BUILDONCE_REGISTRY_* for the BUILDONCE_REGISTRY host; an ECR host gets a
 * token from ECR in the host's own region, whose registry the token is for; else anonymous).
 */
function registryClients(ctx: CommandContext, processEnv: NodeJS.ProcessEnv): (repository: string) => Promise<RegistryClient> {
  const clients = new Map<string, Promise<RegistryClient>>();
  const configured = processEnv[REGISTRY_ENV] ? parseImageReference(processEnv[REGISTRY_ENV]).registry : undefined;
  return (repository) => {
    const ref = parseImageReference(repository);
    let c = clients.get(ref.registry);
    if (!c) {
      const ecr = ecrHost(ref.registry);
      const aws = ecr ? awsClients({ env: regionEnv(processEnv, ecr.region) }) : ctx.aws;
      c = clientFor(ref, { configuredHost: configured, env: processEnv, aws });
      clients.set(ref.registry, c);
      c.catch(() => clients.delete(ref.registry));
    }
    return c;
  };
}

/**
 * The regions of a multi-region environment as a promotion deploys them: each region's store (the home
 * store where buildonce.json leaves `store` out), its image registry (buildonce.json `regions.<r>.registry`),
 * a deploy target and the checks with clients in that region. Undefined for environments without regions.
 * Opening does no I/O.
 * @throws ConfigError (regions on the local target, two regions on the home store)
 */
function regionsFor(c: PromoteCommand | RollbackCommand, ctx: CommandContext, target: DeployTarget, verify?: VerifySetup): PromotionRegion[] | undefined {
  const env = ctx.environment;
  if (env.kind !== 'chain' || !env.regions?.length) return undefined;
  checkRegionsTarget(env, target.kind);
  const processEnv = c.processEnv ?? process.env;
  const onHome = env.regions.filter((g) => (g.store ?? ctx.location.url) === ctx.location.url);
  if (onHome.length > 1)
    throw new ConfigError(
      `${onHome.map((g) => g.name).join(' and ')} of ${env.name} share the home store ${ctx.location.url}: give each region its own bucket (buildonce.json regions.<region>.store)`,
    );
  const registryClient = registryClients(ctx, processEnv);
  return env.regions.map((g) => {
    const genv = regionEnv(processEnv, g.name);
    const url = g.store ?? ctx.location.url;
    // the region's own clients (lazy, built once): a Lambda and its alarms live in their region
    const aws = awsClients({ env: genv });
    return {
      name: g.name,
      store: openRegionStore(url, g.name, { env: processEnv }),
      home: url === ctx.location.url,
      target: createDeployTarget({ kind: target.kind, options: c.deploy, workspaceRoot: c.workspaceRoot, env: genv, aws }),
      ...(g.registry ? { registry: g.registry } : {}),
      registryClient,
      ...(verify
        ? {
            verify: {
              ...verify,
              processEnv: genv,
              lambda: () => aws.lambda(),
              cloudwatch: () => aws.cloudwatch(),
            },
          }
        : {}),
    };
  });
}

/**
 * `nx run <project>:promote --env=<env>`: reads the version from the build manifest (the build
 * target ran first, usually as a cache hit), then {@link promoteVersion}. Logs `[project] …` lines.
 * @throws every error of openCommand and promoteVersion; ManifestError for a missing build manifest
 */
export async function runPromoteCommand(c: PromoteCommand): Promise<PromoteResult> {
  const log = (l: string) => c.log(`[${c.project}] ${l}`);
  const manifest = await readBuildManifest(c.outputDir, c.project);
  const ctx = await openCommand(c);
  const target = targetFor(c, ctx);
  log(
    `promote ${manifest.version} → ${ctx.environment.name} (${ctx.environment.kind}${ctx.environment.requires.length ? `, requires ${ctx.environment.requires.join(', ')}` : ''}) via ${target.kind}, store ${ctx.location.url}`,
  );
  const reason = parseReason(c.reason);
  const verify = await verifySetupFor(c, ctx, target, log);
  const regions = regionsFor(c, ctx, target, verify);
  const r = await promoteVersion({ ...(await promotionOptions(c, ctx, target, regions, reason, log)), version: manifest.version, verify });
  if (r.status === 'promoted') log(`promoted ${r.entry.version} to ${r.entry.environment} (seq ${r.entry.seq})`);
  if (r.status === 'dry-run' && verify) {
    await dryRunMeasuredChecks({
      checks: verify.checks,
      project: c.project,
      environment: ctx.environment.name,
      version: manifest.version,
      targetKind: target.kind,
      functionName: c.deploy.functionName,
      alias: c.deploy.alias,
      lambda: verify.lambda,
      cloudwatch: verify.cloudwatch,
      log,
    });
  }
  return r;
}

/**
 * What a promotion and a rollback both pass down: the opened store, project, environment and target,
 * the metadata (from the CI environment unless given, plus the `--reason`), the lock, dry-run, the log,
 * the region deploys and the command's AWS clients.
 */
async function promotionOptions(
  c: PromoteCommand | RollbackCommand,
  ctx: CommandContext,
  target: DeployTarget,
  regions: ReturnType<typeof regionsFor>,
  reason: ReturnType<typeof parseReason>,
  log: (l: string) => void,
) {
  const meta = { ...(c.meta ?? (await promotionMetadataFromEnv(c.workspaceRoot, c.processEnv ?? process.env))), ...(reason ? { reason } : {}) };
  return {
    store: ctx.store,
    project: c.project,
    environment: ctx.environment,
    target,
    meta,
    lock: ctx.config.lock,
    dryRun: c.dryRun,
    log,
    ...(regions ? { regions } : {}),
    aws: ctx.aws,
  };
}

/**
 * The environment's checks for this project and target (buildonce.json `verify`), prepared before
 * anything is deployed (payload files read). Undefined when none apply.
 * @throws ConfigError for an unreadable or non-JSON payload file
 */
async function verifySetupFor(c: PromoteCommand, ctx: CommandContext, target: DeployTarget, log: (l: string) => void): Promise<VerifySetup | undefined> {
  const env = ctx.environment.kind === 'chain' ? ctx.environment : undefined;
  const checks = await prepareChecks(checksFor(env?.verify, c.project), { targetKind: target.kind, workspaceRoot: c.workspaceRoot, log });
  if (!checks.length) return undefined;
  const injected = c.clients?.lambda;
  return {
    checks,
    workspaceRoot: c.workspaceRoot,
    processEnv: c.processEnv ?? process.env,
    lambda: injected ? () => injected : ctx.aws.lambda,
    cloudwatch: ctx.aws.cloudwatch,
  };
}

export interface RollbackCommand extends CommandBase {
  to?: Version;
  deploy: DeployTargetOptions;
  dryRun?: boolean;
  clients?: Pick<CreateTargetContext, 'lambda' | 'ssm' | 'deployLocal'>;
  meta?: PromotionMetadata;
  /** `--reason`: why, recorded in the rollback entry */
  reason?: string;
}

/** `nx run <project>:rollback --env=<env> [--to=<version>]`: see {@link rollbackEnvironment}. */
export async function runRollbackCommand(c: RollbackCommand): Promise<PromoteResult> {
  const reason = parseReason(c.reason);
  const log = (l: string) => c.log(`[${c.project}] ${l}`);
  const ctx = await openCommand(c);
  const target = targetFor(c, ctx);
  const regions = regionsFor(c, ctx, target);
  const r = await rollbackEnvironment({ ...(await promotionOptions(c, ctx, target, regions, reason, log)), to: c.to });
  if (r.status === 'promoted') log(`rolled ${r.entry.environment} back to ${r.entry.version} (seq ${r.entry.seq})`);
  return r;
}

export interface ReleasesCommand extends Omit<CommandBase, 'env'> {
  /** one environment's history; undefined: current release of every environment */
  env?: EnvironmentName;
  format: 'table' | 'json' | 'markdown';
  /** print only this field of the environment's current release (needs env) */
  field?: ReleaseField;
  limit?: number;
  /** print (stdout) — separate from log so `--json` / `--field` output stays clean */
  print: (text: string) => void;
}

/**
 * `nx run <project>:releases [--env] [--json|--markdown] [--field=commit]`. With `field`, prints that
 * value of the environment's current release (empty line when none) and appends `<field>=` to
 * `$GITHUB_OUTPUT`.
 * @returns the rows printed
 */
export async function runReleasesCommand(c: ReleasesCommand): Promise<ReleaseRow[]> {
  if (c.field && !c.env) throw new ReleaseError(`--field=${c.field} needs --env=<env>`);
  const env = c.processEnv ?? process.env;
  const { store, config } = await openWorkspaceStore({ workspaceRoot: c.workspaceRoot, store: c.store, env });
  if (c.field) {
    const cur = await resolveCurrent(store, c.project, c.env!);
    const row = cur ? releaseRowOf(cur.entry) : undefined;
    const value = fieldOf(row, c.field);
    c.print(value);
    await appendGithubOutput({ [c.field]: value }, env);
    return row ? [row] : [];
  }
  const rows = await collectReleases({ store, project: c.project, env: c.env, limit: c.limit, order: config.environments.map((e) => e.name) });
  c.print(c.format === 'json' ? JSON.stringify(rows, null, 2) : c.format === 'markdown' ? renderMarkdown(rows, c.project) : renderTable(rows, c.project));
  return rows;
}

export interface ResolveCommand extends CommandBase {
  /** `--region`: an AWS Region of the environment; prints the URI in that region's store */
  region?: string;
  print: (text: string) => void;
}

/**
 * `nx run <project>:resolve --env=<env>`: prints the immutable URI of the file the environment runs
 * and appends `artifact_uri=`, `version=`, `sha256=` to `$GITHUB_OUTPUT`.
 * @throws ReleaseError when the environment has no release of the project
 */
export async function runResolveCommand(c: ResolveCommand): Promise<ResolvedRelease> {
  const ctx = await openCommand(c);
  const r = await resolveCurrent(ctx.store, c.project, ctx.environment.name);
  if (!r)
    throw new ReleaseError(
      `${c.project} has no release in ${ctx.environment.name} (${ctx.store.uriOf(currentKey(c.project, ctx.environment.name))} is missing): promote it first`,
    );
  const resolved = c.region ? { ...r, artifactUri: regionUri(c.region, ctx, r.entry, c.processEnv ?? process.env) } : r;
  c.print(resolved.artifactUri);
  await appendGithubOutput({ artifact_uri: resolved.artifactUri, version: r.entry.version, sha256: r.entry.artifact.sha256 }, c.processEnv ?? process.env);
  return resolved;
}

/**
 * The URI of the file an entry deployed, in a region's store (the same key as in the home store); for an
 * oci-image the image URI by digest the region runs (as the entry recorded it, else the region's
 * `registry` + the digest, else the published image URI for a region without one).
 * @throws ReleaseError when the environment does not list the region
 */
function regionUri(region: string, ctx: CommandContext, entry: ResolvedRelease['entry'], processEnv: NodeJS.ProcessEnv): string {
  const env = ctx.environment;
  const g = env.kind === 'chain' ? env.regions?.find((x) => x.name === region) : undefined;
  if (!g)
    throw new ReleaseError(
      `${env.name} does not list region ${region}${env.kind === 'chain' && env.regions?.length ? ` (it lists ${env.regions.map((x) => x.name).join(', ')})` : ' (it has no regions)'}: pick one of its regions or drop --region`,
    );
  const image = entry.artifact.imageUri;
  if (image) {
    const recorded = entry.regions?.[region]?.image?.uri;
    return recorded ?? (g.registry ? imageUriByDigest(parseImageReference(g.registry), image.slice(image.lastIndexOf('@') + 1)) : image);
  }
  const store = g.store ? openRegionStore(g.store, region, { env: processEnv }) : ctx.store;
  return store.uriOf(artifactKey(entry.project, entry.version, entry.artifact.file, entry.artifact.namespace));
}

export interface PublishCommand {
  project: ProjectName;
  workspaceRoot: string;
  /** directory with artifact.json and the files it names (absolute) */
  outputDir: string;
  /** `--store` (see openWorkspaceStore) */
  store?: string;
  /** force the preview namespace; otherwise preview iff the CI environment says pull request */
  preview?: boolean;
  /** oci-image builds: registry repository to push to (`host/repo`); default BUILDONCE_REGISTRY */
  registry?: string;
  dryRun?: boolean;
  forcePathStyle?: boolean;
  processEnv?: NodeJS.ProcessEnv;
  /** signing key spec (`kms:<key-id|arn|alias>` or `file:<path>`); default BUILDONCE_SIGNING_KEY; empty = unsigned */
  signingKey?: string;
  /** the Nx target that built the version (recorded in the provenance); default `build` */
  buildTarget?: string;
  /** that target's options (recorded in the provenance) */
  buildOptions?: Record<string, unknown>;
  /** absolute project root (its lock files, e.g. Cargo.lock, are recorded in the provenance) */
  projectRoot?: string;
  log: (line: string) => void;
}

/**
 * `nx run <project>:publish`: reads the build manifest, publishes the version immutably (libs/store
 * publishArtifact) to the workspace store, logs one line per step (progress every 10 % for files of
 * 8 MiB and more), and appends `artifact_uri=` and `version=` to `$GITHUB_OUTPUT`. Pull-request builds
 * (or `preview`) go to the preview namespace. An `oci-image` build is first pushed to its registry
 * (libs/image pushImageBuild: blobs the registry lacks, the version tag and `sha-<commit>-<yyyymmdd>`)
 * and its stored manifest records the image URI by digest; `image_uri=` and `digest=` go to `$GITHUB_OUTPUT` too.
 * With a signing key (`signingKey` / BUILDONCE_SIGNING_KEY) the version's signed provenance is written
 * after the files and before `manifest.json`; without one, one `unsigned` line.
 * @throws ManifestError, ArtifactIntegrityError, ArtifactConflictError, ConfigError, StoreAccessError, RegistryError,
 *   ProvenanceError (unusable signing key, KMS Sign failure)
 */
export async function runPublishCommand(
  o: PublishCommand,
): Promise<PublishResult & { version: Version; namespace: ArtifactNamespace; push?: PushImageResult; signing?: PublishSigning }> {
  const env = o.processEnv ?? process.env;
  const startedOn = new Date();
  const manifest = await readBuildManifest(o.outputDir, o.project);
  const { store, aws } = await openWorkspaceStore({ workspaceRoot: o.workspaceRoot, store: o.store, env, forcePathStyle: o.forcePathStyle });
  const metadata = publishMetadataFromEnv(env);
  const namespace: ArtifactNamespace = o.preview || !metadata.trusted ? 'preview' : 'trusted';
  const tag = `[${o.project}]`;
  const keySpec = o.signingKey ?? env.BUILDONCE_SIGNING_KEY ?? '';
  // the key is resolved before anything is uploaded, so an unusable key fails the publish with nothing written
  const signer = keySpec && !o.dryRun ? await signerFromSpec(keySpec, { kms: aws.kms, cwd: o.workspaceRoot }) : undefined;
  let signing: PublishSigning | undefined;
  const progress = new Map<string, TransferProgress>();
  const image =
    manifest.kind === 'oci-image'
      ? await pushImageBuild({
          project: o.project,
          outputDir: o.outputDir,
          manifest,
          registry: o.registry,
          namespace,
          metadata,
          dryRun: o.dryRun,
          env,
          aws,
          log: (l) => o.log(`${tag} ${l}`),
        })
      : undefined;
  const result = await publishArtifact({
    store,
    manifest,
    dir: o.outputDir,
    metadata,
    namespace,
    dryRun: o.dryRun,
    ...(image ? { registry: image.registry } : {}),
    log: (l) => o.log(`${tag} ${l}`),
    provenance: signer
      ? async () => {
          const a = await signPublishedVersion({
            workspaceRoot: o.workspaceRoot,
            projectRoot: o.projectRoot,
            env,
            manifest,
            signer,
            startedOn,
            namespace,
            pr: metadata.pr,
            buildTarget: o.buildTarget,
            buildOptions: o.buildOptions,
          });
          signing = { key: signer.describe, keyid: signer.keyid, signMs: a.signMs, totalMs: a.totalMs };
          o.log(
            `${tag} signed provenance with ${signer.describe}: signing ${a.signMs.toFixed(1)} ms, build facts (git, lock files) ${(a.totalMs - a.signMs).toFixed(1)} ms`,
          );
          if (a.uncommittedPaths)
            o.log(
              `${tag} the work tree has ${a.uncommittedPaths} uncommitted path(s): the provenance records this version as built from a dirty tree (dirty: true)`,
            );
          return a.bytes;
        }
      : undefined,
    onProgress: (file, loaded, total) => {
      let p = progress.get(file);
      if (!p) progress.set(file, (p = transferProgress({ label: `${tag} uploading ${file}`, log: o.log })));
      p(loaded, total);
    },
  }).finally(() => {
    for (const p of progress.values()) p.done();
  });
  if (result.status === 'dry-run') {
    for (const f of result.uploaded) o.log(`${tag} dry run: would upload ${result.uri}${f.name} (${formatBytes(f.size)})`);
    for (const f of result.reused) o.log(`${tag} dry run: ${result.uri}${f} already stored`);
    if (keySpec) o.log(`${tag} dry run: would sign provenance with ${keySpec} and write ${result.uri}provenance.intoto.json`);
    o.log(`${tag} dry run: would write ${result.uri}manifest.json`);
  } else if (result.status === 'repaired') {
    o.log(
      `${tag} version ${manifest.version} was published but missing ${result.uploaded.map((f) => f.name).join(', ')}: uploaded again, ${result.uri} is complete`,
    );
  } else if (result.status === 'already-published') {
    o.log(`${tag} version ${manifest.version} is already published at ${result.uri} (identical sha256, nothing uploaded)`);
  } else {
    if (!signer)
      o.log(
        `${tag} unsigned: BUILDONCE_SIGNING_KEY is not set, version ${manifest.version} has no provenance (environments that require provenance will refuse it)`,
      );
    o.log(`${tag} published version ${manifest.version} to ${result.uri}${namespace === 'preview' ? ' (preview namespace)' : ''}`);
  }
  if (result.status !== 'dry-run')
    await appendGithubOutput(
      { artifact_uri: result.uri, version: manifest.version, ...(image ? { image_uri: image.push.uri, digest: image.push.digest } : {}) },
      env,
    );
  return { ...result, version: manifest.version, namespace, ...(image ? { push: image.push } : {}), ...(signing ? { signing } : {}) };
}

export interface RetentionCommand {
  workspaceRoot: string;
  /** undefined: every project in the store */
  projects?: string[];
  /** days; versions published longer ago may go */
  olderThanDays: number;
  /** newest versions kept per project and namespace */
  keep: number;
  pr?: number;
  /** `--store` (see openWorkspaceStore) */
  store?: string;
  dryRun: boolean;
  processEnv?: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** the clock retention compares publish times with (tests); default now */
  now?: Date;
}

/**
 * `nx run <project>:retention` / `buildonce retention`: opens the workspace store and runs retention
 * (runImageRetention: store retention plus the registry images of deleted oci-image versions, in the
 * repository they were published to and in every region registry of buildonce.json), logging one line per deleted version and a summary with the bytes freed.
 * `keep` and `olderThanDays` must be at least 1 and `pr` a positive pull request number, on every path
 * (CLI and Nx target alike): 0 would make every unprotected version deletable, and Nx reads an
 * empty `--keep=` as 0.
 * @throws ConfigError (bad numbers, before the store is opened), StoreAccessError
 */
export async function runRetentionCommand(c: RetentionCommand): Promise<ImageRetentionResult> {
  checkRetentionNumbers(c);
  const { store, config, location, aws } = await openWorkspaceStore({ workspaceRoot: c.workspaceRoot, store: c.store, env: c.processEnv });
  c.log(
    `retention on ${store.location.url}: ${c.pr ? `preview versions of PR #${c.pr}` : `older than ${c.olderThanDays} days, keeping the newest ${c.keep} per project`}${c.dryRun ? ' (dry run)' : ''}`,
  );
  const regionStores = regionStoresOf(config, location.url, c.processEnv ?? process.env);
  const regionRegistries = regionRegistriesOf(config, aws, c.processEnv ?? process.env);
  // oci-image versions: their registry images go by digest too; protected ones keep their keep-<version> tag (ECR)
  return runImageRetention({
    store,
    ...(regionStores.length ? { regionStores } : {}),
    ...(regionRegistries.length ? { regionRegistries } : {}),
    ...(c.now ? { now: c.now } : {}),
    projects: c.projects,
    olderThanDays: c.olderThanDays,
    keep: c.keep,
    pr: c.pr,
    dryRun: c.dryRun,
    env: c.processEnv,
    aws,
    log: c.log,
  });
}

/** Every distinct region store of the environments (not the home store): retention sweeps their copies too. */
function regionStoresOf(config: BuildonceConfig, homeUrl: string, env: NodeJS.ProcessEnv): { region: string; store: BlobStore }[] {
  const seen = new Map<string, { region: string; store: BlobStore }>();
  for (const e of config.environments)
    for (const g of e.regions ?? [])
      if (g.store && g.store !== homeUrl && !seen.has(g.store)) seen.set(g.store, { region: g.name, store: openRegionStore(g.store, g.name, { env }) });
  return [...seen.values()];
}

/**
 * Every distinct region registry repository of the environments (buildonce.json `regions.<r>.registry`),
 * the first region listing it, and its admin (libs/image openImageAdmin, opened once on first use): an ECR
 * repository through ECR clients in its own region (as `ecr-lifecycle` does), another registry with the
 * command's clients. Opening does no I/O.
 */
function regionRegistriesOf(config: BuildonceConfig, aws: AwsClients, env: NodeJS.ProcessEnv): RegionRegistry[] {
  const seen = new Map<string, RegionRegistry>();
  for (const e of config.environments)
    for (const g of e.regions ?? []) {
      const repository = g.registry;
      if (!repository || seen.has(repository)) continue;
      let admin: Promise<ImageAdmin> | undefined;
      const open = () => {
        const ecr = ecrHost(parseImageReference(repository).registry);
        return openImageAdmin(repository, { env, aws: ecr ? awsClients({ env: regionEnv(env, ecr.region) }) : aws });
      };
      seen.set(repository, { region: g.name, repository, admin: () => (admin ??= open()) });
    }
  return [...seen.values()];
}

/**
 * Refuses retention numbers that would widen deletion by accident: `keep` a whole number >= 1,
 * `olderThanDays` a finite number >= 1, `pr` (when given) a whole number >= 1.
 * @throws ConfigError naming the option and the fix
 */
export function checkRetentionNumbers(c: Pick<RetentionCommand, 'keep' | 'olderThanDays' | 'pr'>): void {
  if (!Number.isInteger(c.keep) || c.keep < 1)
    throw new ConfigError(`--keep must be a whole number >= 1 (the newest versions that always stay), got ${c.keep}`);
  if (!Number.isFinite(c.olderThanDays) || c.olderThanDays < 1) throw new ConfigError(`--older-than must be a number of days >= 1, got ${c.olderThanDays}`);
  if (c.pr !== undefined && (!Number.isInteger(c.pr) || c.pr < 1))
    throw new ConfigError(`--pr must be a pull request number >= 1, got ${c.pr} (omit it for normal retention)`);
}

export interface EcrLifecycleCommand {
  workspaceRoot: string;
  /** `--registry` (else BUILDONCE_REGISTRY): an ECR repository `<account>.dkr.ecr.<region>.amazonaws.com/<repo>` */
  registry?: string;
  keepLast: number;
  untaggedDays: number;
  dryRun?: boolean;
  processEnv?: NodeJS.ProcessEnv;
}

/**
 * `buildonce ecr-lifecycle`: writes the lifecycle policy (libs/image ecrLifecyclePolicy) to the given
 * repository and to every region's `registry` of buildonce.json, each through an ECR client in the
 * repository's own region (ECR lifecycle policies act only in their own region). ECR API: PutLifecyclePolicy.
 * @returns per repository: its region and the policy text (written, or with dryRun only computed)
 * @throws ConfigError when no repository is named or one is not an ECR repository; RegistryError when ECR refuses
 */
export async function runEcrLifecycleCommand(c: EcrLifecycleCommand): Promise<{ repository: string; region: string; policy: string }[]> {
  const env = c.processEnv ?? process.env;
  const config = await loadConfig(c.workspaceRoot, env);
  const named = c.registry || env.BUILDONCE_REGISTRY;
  const repositories = [
    ...new Set([...(named ? [named] : []), ...config.environments.flatMap((e) => (e.regions ?? []).flatMap((g) => (g.registry ? [g.registry] : [])))]),
  ];
  if (!repositories.length)
    throw new ConfigError(
      `--registry=<account>.dkr.ecr.<region>.amazonaws.com/<repo> (or BUILDONCE_REGISTRY, or buildonce.json regions.<region>.registry) must name an ECR repository`,
    );
  const out: { repository: string; region: string; policy: string }[] = [];
  for (const repository of repositories) {
    let host: ReturnType<typeof ecrHost>;
    try {
      host = ecrHost(parseImageReference(repository).registry);
    } catch {
      host = undefined;
    }
    if (!host) throw new ConfigError(`"${repository}" must name an ECR repository: <account>.dkr.ecr.<region>.amazonaws.com/<repo>`);
    const aws = awsClients({ env: { ...env, AWS_REGION: host.region, AWS_DEFAULT_REGION: host.region } });
    const policy = await putEcrLifecyclePolicy(aws, repository, { keepLast: c.keepLast, untaggedDays: c.untaggedDays, dryRun: c.dryRun });
    out.push({ repository, region: host.region, policy });
  }
  return out;
}
