import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { firstIssue } from '@buildonce/artifact';
import { provenancePolicySchema, type ProvenancePolicy } from '@buildonce/provenance';
import { environmentNameSchema, isPreviewEnvironment, parseEnvironmentName, type EnvironmentName } from '@buildonce/values';
import { ConfigError, UnknownEnvironmentError } from '@buildonce/errors';
import type { DeployTargetKind } from '@buildonce/deploy';
import type { StoreLocation } from '@buildonce/store';
import { alarmCheckSchema, isMeasured, measuredCheckProblem, metricCheckSchema } from './measure-config';
import { parseRegions, regionConfigSchema, type EnvironmentRegion } from './regions';

/** File name of the workspace configuration, at the workspace root. */
export const CONFIG_FILE = 'buildonce.json';

/**
 * How deploy targets are chosen: `auto` = the embedded `local` target when the store is a file
 * store, the project's own target (`lambda`, `ec2`) when it is S3; `local` = always local; `cloud` =
 * always the project's own target (needs an S3 store).
 */
export const deployModeSchema = z.enum(['auto', 'local', 'cloud']);
export type DeployMode = z.infer<typeof deployModeSchema>;

const envName = environmentNameSchema;

/** Fields every verification check has. */
const checkBase = {
  /** projects this check applies to (Nx names); default: every project promoted to the environment */
  projects: z.array(z.string().min(1)).min(1).optional(),
  /** what a failed check does: `rollback` (default) restores the previous version, `hold` leaves the new one running */
  onFailure: z.enum(['rollback', 'hold']).optional(),
};

/**
 * Lambda check: invokes the newly published function version (its number, not the alias) with the JSON
 * payload in `payload` (path relative to the workspace root); passes when Lambda reports no
 * `FunctionError` and the response contains `expect` (JSON subset).
 */
export const lambdaCheckSchema = z
  .object({
    kind: z.literal('lambda'),
    payload: z.string().min(1),
    expect: z.unknown().optional(),
    attempts: z.number().int().min(1).max(20).optional(),
    timeoutSeconds: z.number().positive().max(900).optional(),
    intervalSeconds: z.number().nonnegative().max(300).optional(),
    ...checkBase,
  })
  .strict();

/** HTTP check: GET `url` until it answers `status` (and, with `expectVersion`, reports the promoted version). */
export const httpCheckSchema = z
  .object({
    kind: z.literal('http'),
    url: z.string().regex(/^https?:\/\/\S+$/, 'must be an http:// or https:// URL'),
    status: z.number().int().min(100).max(599).optional(),
    /** the JSON body's `versionField` (default `version`) must equal the promoted version */
    expectVersion: z.boolean().optional(),
    versionField: z.string().min(1).optional(),
    timeoutSeconds: z.number().positive().max(3600).optional(),
    intervalSeconds: z.number().positive().max(300).optional(),
    ...checkBase,
  })
  .strict();

/** Command check: runs `command` (argument array, no shell) with BUILDONCE_VERSION/ENV/PROJECT set; exit 0 passes. */
export const commandCheckSchema = z
  .object({
    kind: z.literal('command'),
    command: z.array(z.string().min(1)).min(1),
    timeoutSeconds: z.number().positive().max(3600).optional(),
    ...checkBase,
  })
  .strict();

export const verifyCheckSchema = z.discriminatedUnion('kind', [lambdaCheckSchema, httpCheckSchema, commandCheckSchema, alarmCheckSchema, metricCheckSchema]);
export type VerifyCheck = z.infer<typeof verifyCheckSchema>;

const canaryStepSchema = z
  .object({
    percent: z.number().positive().max(99),
    minutes: z.number().nonnegative().max(1440),
  })
  .strict();

/**
 * Lambda canary: the alias keeps the old version and sends `percent` % to the new one for `minutes`,
 * verified, then 100 %. `steps` (instead of percent + minutes) raises the share step by step; the
 * checks run through every step.
 */
export const strategySchema = z
  .object({
    canary: z.union([canaryStepSchema, z.object({ steps: z.array(canaryStepSchema).min(1).max(20) }).strict()]),
  })
  .strict();
/** The strategy after parseConfig: `percent`/`minutes` are the first step, `steps` every step. */
export type DeployStrategy = { canary: { percent: number; minutes: number; steps: { percent: number; minutes: number }[] } };

const environmentSchema = z
  .object({
    name: envName,
    /** environments in which the version must already have succeeded; default: the previous environment of the chain */
    requires: z.array(envName).optional(),
    /** minutes the version must have been deployed in every required environment before this one accepts it */
    soakMinutes: z.number().int().nonnegative().max(525_600).optional(),
    /**
     * signed provenance the version must carry before it is promoted here: `{ required (default true),
     * keys: [PEM | file:<path> | kms:<key-id|arn|alias>], builders: [...], refs: [...] }`
     */
    provenance: provenancePolicySchema.optional(),
    description: z.string().optional(),
    /** checks run after every deploy to this environment (one object or a list) */
    verify: z.preprocess((v) => (v && typeof v === 'object' && !Array.isArray(v) ? [v] : v), z.array(verifyCheckSchema).min(1)).optional(),
    /** how the Lambda target shifts traffic (other targets ignore it) */
    strategy: strategySchema.optional(),
    /**
     * the AWS Regions the environment runs in, each with its own store (`s3://bucket/prefix` in that
     * region; absent: the home store) and image registry; absent: one region, the home store's
     */
    regions: z.record(z.string(), regionConfigSchema).optional(),
    /** a region whose deploy or verification fails: `rollback` (default) restores every region moved, `hold` keeps them (a partial release) */
    regionFailure: z.enum(['rollback', 'hold']).optional(),
  })
  .strict();

/** JSON shape of buildonce.json (validated with zod; unknown keys are errors so typos surface). */
export const configFileSchema = z
  .object({
    $schema: z.string().optional(),
    /** store URL (s3://bucket/prefix or file:///abs/path); BUILDONCE_STORE overrides it */
    store: z.string().min(1).optional(),
    /** deploy mode; BUILDONCE_DEPLOY overrides it */
    deploy: deployModeSchema.optional(),
    /** ordered chain of environments */
    environments: z.array(environmentSchema).min(1).optional(),
    preview: z
      .object({
        /** accept `pr-<n>` environments (no upstream requirement) */
        enabled: z.boolean().optional(),
      })
      .strict()
      .optional(),
    lock: z
      .object({
        /** lease length of the per-environment promotion lock, seconds (renewed while held) */
        ttlSeconds: z.number().int().min(5).max(3600).optional(),
        /** how long a promotion waits for another one of the same project and environment, seconds */
        waitSeconds: z.number().int().min(0).max(7200).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type ConfigFile = z.infer<typeof configFileSchema>;

/** One environment of the chain after defaults are applied. */
export interface ChainEnvironment {
  name: EnvironmentName;
  /** environments in which the version must have succeeded first (may be empty) */
  requires: EnvironmentName[];
  /** minutes, 0 = no soak */
  soakMinutes: number;
  /** verification checks after a deploy (absent: none) */
  verify?: VerifyCheck[];
  strategy?: DeployStrategy;
  /** provenance policy (keys' `file:` paths absolute); undefined = no verification */
  provenance?: ProvenancePolicy;
  /** the regions it runs in (at least one; absent: one region, the home store's) */
  regions?: EnvironmentRegion[];
  /** what a failed region does (absent: `rollback`); only with `regions` */
  regionFailure?: 'rollback' | 'hold';
}

/** The validated, defaulted configuration every command uses. */
export interface BuildonceConfig {
  /** buildonce.json `store` (undefined: none); resolveStoreLocation applies --store and BUILDONCE_STORE before it */
  store?: string;
  deploy: DeployMode;
  environments: ChainEnvironment[];
  preview: { enabled: boolean };
  lock: { ttlMs: number; waitMs: number };
  /** where the config came from (path, or "defaults") */
  source: string;
}

/** An environment as a promotion sees it. */
export type ResolvedEnvironment = ({ kind: 'chain' } & ChainEnvironment) | { kind: 'preview'; name: EnvironmentName; requires: []; soakMinutes: 0 };

/** The default chain when buildonce.json does not define one: dev → staging → prod. */
export const DEFAULT_ENVIRONMENTS: ChainEnvironment[] = [
  { name: parseEnvironmentName('dev'), requires: [], soakMinutes: 0 },
  { name: parseEnvironmentName('staging'), requires: [parseEnvironmentName('dev')], soakMinutes: 0 },
  { name: parseEnvironmentName('prod'), requires: [parseEnvironmentName('staging')], soakMinutes: 0 },
];

/**
 * Validates and defaults a parsed buildonce.json object, then applies the environment override
 * `BUILDONCE_DEPLOY` (auto | local | cloud). Pure. (The store's precedence is resolveStoreLocation's.)
 * Rules beyond the schema: names are unique, `requires` only names environments defined earlier in
 * the chain (so the chain is acyclic), a chain environment may not look like a preview `pr-<n>`.
 * @param source for messages (path of the file)
 * @throws ConfigError `<source>: <field path>: <problem>`
 */
export function parseConfig(value: unknown, source = CONFIG_FILE, env: NodeJS.ProcessEnv = {}): BuildonceConfig {
  const r = configFileSchema.safeParse(value);
  if (!r.success) throw new ConfigError(`${source}: ${firstIssue(r.error)}`);
  const file = r.data;
  const environments: ChainEnvironment[] = [];
  const list = file.environments;
  if (list) {
    const seen = new Set<string>();
    list.forEach((e, i) => {
      if (seen.has(e.name)) throw new ConfigError(`${source}: environments.${i}.name: "${e.name}" is defined twice`);
      if (isPreviewEnvironment(e.name)) throw new ConfigError(`${source}: environments.${i}.name: "${e.name}" is reserved for preview environments (pr-<n>)`);
      const requires = e.requires ?? (i > 0 ? [list[i - 1]!.name] : []);
      requires.forEach((req, j) => {
        if (!seen.has(req)) {
          throw new ConfigError(`${source}: environments.${i}.requires.${j}: "${req}" must be an environment defined earlier in the chain`);
        }
      });
      seen.add(e.name);
      (e.verify ?? []).forEach((c, j) => {
        const problem = isMeasured(c) ? measuredCheckProblem(c, !!e.strategy) : undefined;
        if (problem) throw new ConfigError(`${source}: environments.${i}.verify.${j}.${problem}`);
      });
      let regions: EnvironmentRegion[] | undefined;
      if (e.regions) {
        const parsed = parseRegions(e.regions, `environments.${i}.regions`, file.store || undefined);
        if (!parsed.ok) throw new ConfigError(`${source}: ${parsed.problem}`);
        if (!parsed.regions.length) throw new ConfigError(`${source}: environments.${i}.regions: list at least one region, or leave "regions" out`);
        if (file.deploy === 'local')
          throw new ConfigError(
            `${source}: environments.${i}.regions: the local deploy target has no regions: remove "regions" or set "deploy" to auto or cloud`,
          );
        regions = parsed.regions;
      } else if (e.regionFailure) {
        throw new ConfigError(`${source}: environments.${i}.regionFailure: only environments with "regions" have region failures: remove it or add "regions"`);
      }
      environments.push({
        name: e.name,
        requires,
        soakMinutes: e.soakMinutes ?? 0,
        ...(e.provenance ? { provenance: withAbsoluteKeyFiles(e.provenance, source) } : {}),
        ...(e.verify ? { verify: e.verify } : {}),
        ...(e.strategy ? { strategy: normalizeStrategy(e.strategy) } : {}),
        ...(regions ? { regions, ...(e.regionFailure ? { regionFailure: e.regionFailure } : {}) } : {}),
      });
    });
  } else {
    environments.push(...DEFAULT_ENVIRONMENTS.map((e) => ({ ...e, requires: [...e.requires] })));
  }
  let deploy: DeployMode = file.deploy ?? 'auto';
  if (env.BUILDONCE_DEPLOY) {
    const d = deployModeSchema.safeParse(env.BUILDONCE_DEPLOY);
    if (!d.success) throw new ConfigError(`BUILDONCE_DEPLOY: "${env.BUILDONCE_DEPLOY}" must be one of auto, local, cloud`);
    deploy = d.data;
  }
  const store = file.store || undefined;
  return {
    ...(store ? { store } : {}),
    deploy,
    environments,
    preview: { enabled: file.preview?.enabled ?? true },
    lock: { ttlMs: (file.lock?.ttlSeconds ?? 60) * 1000, waitMs: (file.lock?.waitSeconds ?? 900) * 1000 },
    source,
  };
}

/** The single-step canary form becomes one step. */
function normalizeStrategy(s: z.infer<typeof strategySchema>): DeployStrategy {
  const steps = 'steps' in s.canary ? s.canary.steps : [s.canary];
  return { canary: { percent: steps[0]!.percent, minutes: steps[0]!.minutes, steps } };
}

/** `file:<relative path>` keys resolve from the directory of buildonce.json (the workspace root). */
function withAbsoluteKeyFiles(p: ProvenancePolicy, source: string): ProvenancePolicy {
  const base = isAbsolute(source) ? dirname(source) : process.cwd();
  return { ...p, keys: p.keys.map((k) => (k.startsWith('file:') && !isAbsolute(k.slice(5)) ? `file:${join(base, k.slice(5))}` : k)) };
}

/**
 * Loads `<workspaceRoot>/buildonce.json` (defaults when the file does not exist) and applies the
 * BUILDONCE_DEPLOY override.
 * @throws ConfigError for unreadable or invalid JSON and schema violations (names the field)
 */
export async function loadConfig(workspaceRoot: string, env: NodeJS.ProcessEnv = process.env): Promise<BuildonceConfig> {
  const path = join(workspaceRoot, CONFIG_FILE);
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(`${path}: cannot read: ${(e as Error).message}`);
  }
  if (text === undefined) return parseConfig({}, 'defaults', env);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: not JSON (${(e as Error).message})`);
  }
  return parseConfig(value, path, env);
}

/**
 * Looks an environment up: a chain environment from the config, or a preview `pr-<n>` (when enabled).
 * @throws UnknownEnvironmentError listing the known ones (the name was parsed at the edge: parseEnvironmentName)
 */
export function resolveEnvironment(config: BuildonceConfig, name: EnvironmentName): ResolvedEnvironment {
  const chain = config.environments.find((e) => e.name === name);
  if (chain) return { kind: 'chain', ...chain };
  if (isPreviewEnvironment(name) && config.preview.enabled) return { kind: 'preview', name, requires: [], soakMinutes: 0 };
  const known = config.environments.map((e) => e.name).join(', ');
  const previews = config.preview.enabled ? ' and previews pr-<n>' : '';
  throw new UnknownEnvironmentError(
    `unknown environment "${name}": known environments are ${known}${previews} (${config.source === 'defaults' ? 'default chain, no buildonce.json' : config.source})`,
  );
}

/**
 * Refuses regions on the embedded `local` target (after BUILDONCE_DEPLOY and the store chose it):
 * local deploys have no region, so a multi-region environment cannot be promoted there.
 * @throws ConfigError naming the environment and the fix
 */
export function checkRegionsTarget(env: ResolvedEnvironment, kind: DeployTargetKind): void {
  if (env.kind === 'chain' && env.regions?.length && kind === 'local')
    throw new ConfigError(
      `environment ${env.name} lists regions (${env.regions.map((r) => r.name).join(', ')}) but deploys to the local target: use an s3:// store and BUILDONCE_DEPLOY=auto|cloud, or remove "regions"`,
    );
}

/**
 * The deploy target kind actually used: `local` when the mode says so or (auto) the store is a file
 * store; otherwise the project's own target.
 * @throws ConfigError when a cloud target is forced onto a file store
 */
export function effectiveTargetKind(mode: DeployMode, storeKind: StoreLocation['kind'], projectTarget: DeployTargetKind): DeployTargetKind {
  if (mode === 'local' || projectTarget === 'local') return 'local';
  if (storeKind === 'file') {
    if (mode === 'cloud')
      throw new ConfigError(`BUILDONCE_DEPLOY=cloud needs an S3 store for the ${projectTarget} target: set BUILDONCE_STORE=s3://<bucket>/<prefix>`);
    return 'local';
  }
  return projectTarget;
}
