import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetAliasCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { awsClients } from '@buildonce/aws';
import type { PromoteCommand, RollbackCommand } from '@buildonce/commands';
import { RegistryClient } from '@buildonce/image';
import type { PromotionMetadata } from '@buildonce/promotion';
import { openStore, parseStoreUrl, type S3BlobStore } from '@buildonce/store';
import type { EnvironmentName, ProjectName } from '@buildonce/values';
import { pushTestBaseImage, type TestBaseImage } from './image';
import { startMoto, type MotoServer } from './moto';
import { startRegistry, type RegistryServer } from './registry';
import { removeTempDirs, tempDir } from './temp';
import { createPlaceholderFunctions } from './release/testkit';

/**
 * Awaits `p`, which must reject with an instance of `type` (default Error) whose message is one line
 * (commands report failures in one line: no stack, no multi-line dumps).
 * @returns the error, typed as `type`
 * @throws an Error saying which expectation failed (no vitest import: child processes load this module too)
 */
export async function oneLineRejection<E extends Error = Error>(
  p: Promise<unknown>,
  type: abstract new (...args: never[]) => E = Error as unknown as abstract new (...args: never[]) => E,
): Promise<E> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  if (!(e instanceof type)) throw new Error(`expected a rejection with ${type.name}, got ${e === undefined ? 'none (it resolved)' : String(e)}`);
  if (e.message.includes('\n')) throw new Error(`expected a one-line message, got: ${e.message}`);
  return e as E;
}

/** The promotion metadata of the command specs: a CI run's commit, run id and actor. */
export const CI_PROMOTION_META: PromotionMetadata = { commit: '2222222222222222222222222222222222222222', runId: '7', actor: 'ci-bot' };

/** What every promote and rollback command of a spec shares (read when a command is built). */
export interface CommandDefaults {
  project: string;
  workspaceRoot: string;
  processEnv: NodeJS.ProcessEnv;
  /** default {@link CI_PROMOTION_META} */
  meta?: PromotionMetadata;
  log: (line: string) => void;
}

/** Builders of the Lambda promote and rollback commands of one project in one workspace. */
export interface LambdaCommands {
  /** the promote command of the version in `outputDir` into `env` (deploy target lambda); `extra` last */
  promote(env: string, outputDir: string, extra?: Partial<PromoteCommand>): PromoteCommand;
  /** the rollback command of `env` (deploy target lambda); `extra` last (`to`, `log`…) */
  rollback(env: string, extra?: Partial<RollbackCommand>): RollbackCommand;
}

/**
 * Promote and rollback command builders for the Lambda deploy target.
 * @param defaults called on every build, so it may read what a beforeAll sets (workspace, process env)
 */
export function lambdaCommands(defaults: () => CommandDefaults): LambdaCommands {
  const base = () => {
    const d = defaults();
    return {
      project: d.project as ProjectName,
      workspaceRoot: d.workspaceRoot,
      deploy: { target: 'lambda' as const },
      processEnv: d.processEnv,
      meta: d.meta ?? CI_PROMOTION_META,
      log: d.log,
    };
  };
  return {
    promote: (env, outputDir, extra = {}) => ({ ...base(), env: env as EnvironmentName, outputDir, ...extra }),
    rollback: (env, extra = {}) => ({ ...base(), env: env as EnvironmentName, ...extra }),
  };
}

/**
 * What a Lambda alias routes to: its version and the weights of additional versions (`{}` when all
 * traffic goes to `version`), as GetAlias reports them.
 */
export async function aliasRouting(lambda: LambdaClient, functionName: string, alias: string): Promise<{ version?: string; weights: Record<string, number> }> {
  const a = await lambda.send(new GetAliasCommand({ FunctionName: functionName, Name: alias }));
  return { version: a.FunctionVersion, weights: a.RoutingConfig?.AdditionalVersionWeights ?? {} };
}

/**
 * Calls `sample` every `intervalMs` (ms; the first at once) until `run` settles, and once more never
 * after: what a spec uses to see the states a promotion passes through (an alias' weights during a canary).
 * @returns what `run` resolved to and every sample taken
 * @throws what `run` rejects with (after the sampling stopped)
 */
export async function sampleWhile<S, T>(sample: () => Promise<S>, intervalMs: number, run: Promise<T>): Promise<{ result: T; samples: S[] }> {
  const samples: S[] = [];
  let running = true;
  const poll = (async () => {
    while (running) {
      samples.push(await sample());
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  try {
    return { result: await run, samples };
  } finally {
    running = false;
    await poll;
  }
}

/** moto_server with an S3 store and a temp workspace whose buildonce.json names that store. */
export interface MotoWorkspace {
  moto: MotoServer;
  /** `s3://<bucket>/team` */
  storeUrl: string;
  /** the store at storeUrl, its client on moto */
  store: S3BlobStore;
  /** the temp workspace */
  workspaceRoot: string;
}

/** What {@link motoWorkspace} sets up. */
export interface MotoWorkspaceOptions {
  bucket: string;
  /** the temp workspace's name prefix */
  prefix: string;
  /** buildonce.json but its `store` */
  config: Record<string, unknown>;
  /** Lambda functions to create the way IaC would (see createPlaceholderFunctions) */
  functions?: readonly string[];
  /** a moto_server the spec starts itself in an earlier beforeAll (and stops); default: one started and stopped here */
  moto?: () => MotoServer;
}

/** A {@link MotoWorkspace} whose fields are set by `start` (a spec's beforeAll) and which `stop` tears down (its afterAll). */
export interface MotoWorkspaceFixture extends MotoWorkspace {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A spec's moto world (`beforeAll(world.start); afterAll(world.stop)`): `start` starts moto_server (unless
 * the spec gives its own), puts its environment into `process.env` (code under test builds its own AWS SDK
 * clients, whose credential chain reads process.env), creates the bucket and the functions, and writes
 * `buildonce.json` (`{ store: storeUrl, ...config }`) into a fresh temp workspace; `stop` stops the moto it
 * started and removes the temp dirs (removeTempDirs).
 * @throws from start: when moto does not start, or the bucket or a function cannot be created
 */
export function motoWorkspace(o: MotoWorkspaceOptions): MotoWorkspaceFixture {
  const world = {
    async start() {
      world.moto = o.moto ? o.moto() : await startMoto();
      Object.assign(process.env, world.moto.env);
      await world.moto.createBucket(o.bucket);
      world.storeUrl = `s3://${o.bucket}/team`;
      world.store = openStore(parseStoreUrl(world.storeUrl), { env: { ...process.env, ...world.moto.env } }) as S3BlobStore;
      world.workspaceRoot = tempDir(o.prefix);
      writeFileSync(join(world.workspaceRoot, 'buildonce.json'), JSON.stringify({ store: world.storeUrl, ...o.config }));
      if (o.functions?.length) await createPlaceholderFunctions(awsClients({ env: world.moto.env }).lambda(), world.moto.endpoint, o.functions);
    },
    async stop() {
      if (!o.moto) await world.moto?.stop();
      removeTempDirs();
    },
  } as MotoWorkspaceFixture;
  return world;
}

/** moto_server and local registries, the first holding the stand-in base image (see pushTestBaseImage). */
export interface ImageStack {
  moto: MotoServer;
  /** the first of registries */
  registry: RegistryServer;
  registries: RegistryServer[];
  /** the base image in the first registry */
  base: TestBaseImage;
  /** stops moto and every registry */
  stop(): Promise<void>;
}

/**
 * Starts moto_server (its environment put into `process.env`, which the SDK's credential chain reads) and
 * `registries` (default 1) local registries, and pushes the base image into the first.
 */
export async function startImageStack(registries = 1): Promise<ImageStack> {
  const moto = await startMoto();
  Object.assign(process.env, moto.env);
  const started = await Promise.all(Array.from({ length: registries }, () => startRegistry()));
  const base = await pushTestBaseImage(new RegistryClient({ registry: started[0]!.host, scheme: 'http' }));
  return {
    moto,
    registry: started[0]!,
    registries: started,
    base,
    stop: async () => {
      await moto.stop();
      await Promise.all(started.map((r) => r.stop()));
    },
  };
}
