import { readBuildManifest } from '@buildonce/artifact';
import { appendGithubOutput, openStore, resolveStoreLocation, type BlobStore, type StoreLocation } from '@buildonce/store';
import { createDeployTarget, type CreateTargetContext, type DeployTarget, type DeployTargetKind, type DeployTargetOptions } from '@buildonce/deploy';
import { loadConfig, resolveEnvironment, type BuildonceConfig, type DeployMode, type ResolvedEnvironment } from './config';
import { validateEnvName } from './env';
import { ConfigError, ReleaseError } from './errors';
import { promotionMetadataFromEnv, type PromotionMetadata } from './metadata';
import { promoteVersion, type PromoteResult } from './promote';
import { collectReleases, fieldOf, releaseRowOf, renderMarkdown, renderTable, resolveCurrent, type ReleaseField, type ReleaseRow, type ResolvedRelease } from './releases';
import { rollbackEnvironment } from './rollback';

/** Facts every command gets from its executor (never an ExecutorContext). */
export interface CommandBase {
  project: string;
  workspaceRoot: string;
  /** environment name as typed by the user (validated before any I/O) */
  env: string;
  /** store URL option; empty/undefined → BUILDONCE_STORE → buildonce.json → embedded file store */
  store?: string;
  /** process environment (default process.env) */
  processEnv?: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

/** What the setup resolved: config, environment, store. */
export interface CommandContext {
  config: BuildonceConfig;
  environment: ResolvedEnvironment;
  location: StoreLocation;
  store: BlobStore;
}

/**
 * Validates the environment name (before any I/O), loads buildonce.json (+ BUILDONCE_STORE /
 * BUILDONCE_DEPLOY), resolves the environment and opens the store.
 * @throws InvalidEnvironmentNameError, ConfigError, UnknownEnvironmentError, StoreConfigError
 */
export async function openCommand(c: CommandBase): Promise<CommandContext> {
  validateEnvName(c.env);
  const env = c.processEnv ?? process.env;
  const config = await loadConfig(c.workspaceRoot, env);
  const environment = resolveEnvironment(config, c.env);
  const location = resolveStoreLocation({ store: c.store || config.store, env: {}, workspaceRoot: c.workspaceRoot });
  return { config, environment, location, store: openStore(location, { env }) };
}

/**
 * The deploy target kind actually used: `local` when the mode says so or (auto) the store is a file
 * store; otherwise the project's own target.
 * @throws ConfigError when a cloud target is forced onto a file store
 */
export function effectiveTargetKind(mode: DeployMode, storeKind: StoreLocation['kind'], projectTarget: DeployTargetKind): DeployTargetKind {
  if (mode === 'local' || projectTarget === 'local') return 'local';
  if (storeKind === 'file') {
    if (mode === 'cloud') throw new ConfigError(`BUILDONCE_DEPLOY=cloud needs an S3 store for the ${projectTarget} target: set BUILDONCE_STORE=s3://<bucket>/<prefix>`);
    return 'local';
  }
  return projectTarget;
}

export interface PromoteCommand extends CommandBase {
  /** directory of the build manifest artifact.json (absolute) */
  outputDir: string;
  deploy: DeployTargetOptions;
  dryRun?: boolean;
  /** injected clients / local unpacker (tests, and the executor for the local target) */
  clients?: Pick<CreateTargetContext, 'lambda' | 'ssm' | 'deployLocal'>;
  meta?: PromotionMetadata;
}

function targetFor(c: PromoteCommand | RollbackCommand, ctx: CommandContext): DeployTarget {
  const kind = effectiveTargetKind(ctx.config.deploy, ctx.location.kind, c.deploy.target);
  return createDeployTarget({ kind, options: c.deploy, workspaceRoot: c.workspaceRoot, env: c.processEnv, ...c.clients });
}

/**
 * `nx run <project>:promote --env=<env>`: reads the version from the build manifest (the build
 * target ran first, usually as a cache hit), then {@link promoteVersion}. Logs `[project] …` lines.
 * @throws every error of openCommand and promoteVersion; ManifestError for a missing build manifest
 */
export async function runPromoteCommand(c: PromoteCommand): Promise<PromoteResult> {
  validateEnvName(c.env);
  const log = (l: string) => c.log(`[${c.project}] ${l}`);
  const manifest = await readBuildManifest(c.outputDir, c.project);
  const ctx = await openCommand(c);
  const target = targetFor(c, ctx);
  log(`promote ${manifest.version} → ${ctx.environment.name} (${ctx.environment.kind}${ctx.environment.requires.length ? `, requires ${ctx.environment.requires.join(', ')}` : ''}) via ${target.kind}, store ${ctx.location.url}`);
  const meta = c.meta ?? (await promotionMetadataFromEnv(c.workspaceRoot, c.processEnv ?? process.env));
  const r = await promoteVersion({ store: ctx.store, project: c.project, version: manifest.version, environment: ctx.environment, target, meta, lock: ctx.config.lock, dryRun: c.dryRun, log });
  if (r.status === 'promoted') log(`promoted ${r.entry.version} to ${r.entry.environment} (seq ${r.entry.seq})`);
  return r;
}

export interface RollbackCommand extends CommandBase {
  to?: string;
  deploy: DeployTargetOptions;
  dryRun?: boolean;
  clients?: Pick<CreateTargetContext, 'lambda' | 'ssm' | 'deployLocal'>;
  meta?: PromotionMetadata;
}

/** `nx run <project>:rollback --env=<env> [--to=<version>]`: see {@link rollbackEnvironment}. */
export async function runRollbackCommand(c: RollbackCommand): Promise<PromoteResult> {
  validateEnvName(c.env);
  if (c.to !== undefined && !/^[0-9]{1,64}$/.test(c.to)) throw new ReleaseError(`--to=${JSON.stringify(c.to)} is not a version (decimal Nx task hash)`);
  const log = (l: string) => c.log(`[${c.project}] ${l}`);
  const ctx = await openCommand(c);
  const target = targetFor(c, ctx);
  const meta = c.meta ?? (await promotionMetadataFromEnv(c.workspaceRoot, c.processEnv ?? process.env));
  const r = await rollbackEnvironment({ store: ctx.store, project: c.project, environment: ctx.environment, target, meta, lock: ctx.config.lock, dryRun: c.dryRun, log, to: c.to });
  if (r.status === 'promoted') log(`rolled ${r.entry.environment} back to ${r.entry.version} (seq ${r.entry.seq})`);
  return r;
}

export interface ReleasesCommand extends Omit<CommandBase, 'env'> {
  /** one environment's history; undefined: current release of every environment */
  env?: string;
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
  if (c.env !== undefined) validateEnvName(c.env);
  if (c.field && !c.env) throw new ReleaseError(`--field=${c.field} needs --env=<env>`);
  const env = c.processEnv ?? process.env;
  const config = await loadConfig(c.workspaceRoot, env);
  const location = resolveStoreLocation({ store: c.store || config.store, env: {}, workspaceRoot: c.workspaceRoot });
  const store = openStore(location, { env });
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
  if (!r) throw new ReleaseError(`${c.project} has no release in ${ctx.environment.name} (${ctx.store.uriOf(`releases/${c.project}/${ctx.environment.name}/current.json`)} is missing): promote it first`);
  c.print(r.artifactUri);
  await appendGithubOutput({ artifact_uri: r.artifactUri, version: r.entry.version, sha256: r.entry.artifact.sha256 }, c.processEnv ?? process.env);
  return r;
}
