import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import { run } from '@buildonce/process';
import type { DeployResult, DeployTargetKind } from '@buildonce/deploy';
import { ConfigError } from '@buildonce/errors';
import type { VerifyCheck } from '@buildonce/config';
import { ReleaseError } from '@buildonce/errors';
import type { Verification } from '@buildonce/ledger';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { isMeasured } from '@buildonce/config';
import { prepareMeasuredCheck } from './measure-prepare';
import { measuredLabel, needsSteps, type Step } from './stepped';
import { verifySteppedDeploy } from './verify-stepped';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

/**
 * Verification (docs/promotion.md "Verification"): the checks an environment runs after a deploy.
 * A release counts — moves the pointer, satisfies a downstream `requires` — only once every check
 * that applies to the project passed.
 *
 * - `lambda`: Lambda `Invoke` (API 2015-03-31, `POST /2015-03-31/functions/{name}/invocations`) of the
 *   newly published function version (Qualifier = version number, never the alias, so a canary's 90 %
 *   old traffic cannot answer for the new code); passes when the response has no `FunctionError` and
 *   its JSON payload contains `expect` ({@link jsonSubset}).
 * - `http`: `GET url` until it answers the expected status (and, with `expectVersion`, a JSON body whose
 *   `versionField` is the promoted version, as express-api's `/v1/release` reports it).
 * - `command`: runs an argument array (libs/process run(), no shell) in the workspace root with
 *   `BUILDONCE_VERSION`, `BUILDONCE_ENV`, `BUILDONCE_PROJECT`; exit 0 passes.
 * - `alarm`, `metric`: CloudWatch measurements over time through every canary step (alarm-check.ts,
 *   metric-check.ts, run by stepped.ts through verify-stepped.ts; decisions in analysis.ts).
 */

/** A check failed; the message is one line naming the check and what it saw. */
export class VerificationFailedError extends ReleaseError {
  override name = 'VerificationFailedError';
  readonly verification?: Verification;
  /** history seq of the `failed` entry */
  readonly seq?: number;
  readonly onFailure: 'rollback' | 'hold';
  constructor(message: string, o: { verification?: Verification; seq?: number; onFailure?: 'rollback' | 'hold' } = {}) {
    super(message);
    this.verification = o.verification;
    this.seq = o.seq;
    this.onFailure = o.onFailure ?? 'rollback';
  }
}

/**
 * True when `expected` is contained in `actual`: objects match when every key of `expected` matches
 * (extra keys in `actual` are fine), arrays element-wise with equal length, primitives by `===`.
 */
export function jsonSubset(expected: unknown, actual: unknown): boolean {
  if (expected === null || typeof expected !== 'object') return expected === actual;
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => jsonSubset(e, actual[i]));
  }
  if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false;
  const a = actual as Record<string, unknown>;
  return Object.entries(expected as Record<string, unknown>).every(([k, v]) => k in a && jsonSubset(v, a[k]));
}

/** Facts a check needs about the deploy it verifies. */
export interface CheckContext {
  project: ProjectName;
  environment: EnvironmentName;
  version: Version;
  /** what the target did (lambda checks read functionName + functionVersion) */
  deploy: DeployResult;
  /** payload paths and command cwd are relative to it */
  workspaceRoot: string;
  /** environment of command checks (default process.env) */
  processEnv?: NodeJS.ProcessEnv;
  /** Lambda client of the command's AWS clients (libs/aws), needed by lambda checks */
  lambda?: () => LambdaClient;
  log: (line: string) => void;
  /** injectable clock and sleep (unit tests) */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Outcome of one check. */
export interface CheckOutcome {
  passed: boolean;
  attempts: number;
  durationMs: number;
  detail: string;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const oneLine = (s: string, max = 240) => {
  const l = s.replace(/\s+/g, ' ').trim();
  return l.length > max ? `${l.slice(0, max - 1)}…` : l;
};

/** Checks of `checks` that apply to a project (no `projects` list, or listed). */
export function checksFor(checks: VerifyCheck[] | undefined, project: ProjectName): VerifyCheck[] {
  return (checks ?? []).filter((c) => !c.projects || c.projects.includes(project));
}

/** One-line name of a check for logs and errors, e.g. `http GET https://x/v1/release`. */
export function describeCheck(c: VerifyCheck): string {
  switch (c.kind) {
    case 'lambda':
      return `lambda invoke with ${c.payload}`;
    case 'http':
      return `http GET ${c.url}`;
    case 'command':
      return `command ${c.command.join(' ')}`;
    case 'alarm':
    case 'metric':
      return measuredLabel(c);
  }
}

async function readPayload(c: Extract<VerifyCheck, { kind: 'lambda' }>, workspaceRoot: string): Promise<Uint8Array> {
  const path = isAbsolute(c.payload) ? c.payload : join(workspaceRoot, c.payload);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError(
      `verify lambda payload ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): fix "payload" in buildonce.json`,
    );
  }
  try {
    JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`verify lambda payload ${path}: not JSON (${(e as Error).message})`);
  }
  return Buffer.from(text);
}

/**
 * Checks, before anything is deployed, that the checks can run: lambda payload files exist and are
 * JSON. Lambda checks need the lambda target; with another target (the local target of a file
 * store) they do not apply and are dropped with a log line.
 * @returns the checks that will run
 * @throws ConfigError naming the check and the fix
 */
export async function prepareChecks(
  checks: VerifyCheck[],
  o: { targetKind: DeployTargetKind; workspaceRoot: string; log: (l: string) => void },
): Promise<VerifyCheck[]> {
  const out: VerifyCheck[] = [];
  for (const c of checks) {
    if (c.kind === 'lambda') {
      if (o.targetKind !== 'lambda') {
        o.log(`verify: ${describeCheck(c)} skipped: the ${o.targetKind} target has no Lambda function to invoke`);
        continue;
      }
      await readPayload(c, o.workspaceRoot);
    }
    if (isMeasured(c) && !prepareMeasuredCheck(c, { ...o, describe: describeCheck(c) })) continue;
    out.push(c);
  }
  return out;
}

async function lambdaCheck(c: Extract<VerifyCheck, { kind: 'lambda' }>, ctx: CheckContext): Promise<Omit<CheckOutcome, 'durationMs'>> {
  const d = ctx.deploy;
  if (d.target !== 'lambda') return { passed: false, attempts: 0, detail: `the ${d.target} target has no Lambda version to invoke` };
  if (!ctx.lambda) throw new Error('lambda check without a Lambda client');
  const { InvokeCommand } = await import('@aws-sdk/client-lambda');
  const payload = await readPayload(c, ctx.workspaceRoot);
  const attempts = c.attempts ?? 3;
  const timeoutMs = (c.timeoutSeconds ?? 30) * 1000;
  const sleep = ctx.sleep ?? defaultSleep;
  const target = `${d.functionName}:${d.functionVersion}`;
  let detail = '';
  for (let i = 1; i <= attempts; i++) {
    if (i > 1) await sleep((c.intervalSeconds ?? 1) * 1000);
    let out: InvokeCommandOutput;
    try {
      out = await ctx.lambda().send(new InvokeCommand({ FunctionName: d.functionName, Qualifier: d.functionVersion, Payload: payload }), {
        abortSignal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const err = e as Error;
      detail = `invoke ${target}: ${err.name === 'TimeoutError' || err.name === 'AbortError' ? `no answer within ${timeoutMs / 1000} s` : `${err.name}: ${err.message}`}`;
      ctx.log(`verify: attempt ${i}/${attempts} ${oneLine(detail)}`);
      continue;
    }
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
    if (out.FunctionError) {
      detail = `invoke ${target}: FunctionError ${out.FunctionError}: ${text}`;
    } else {
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = text;
      }
      if (c.expect === undefined || jsonSubset(c.expect, body)) return { passed: true, attempts: i, detail: oneLine(`invoke ${target}: ${text}`) };
      detail = `invoke ${target}: response ${text} does not contain ${JSON.stringify(c.expect)}`;
    }
    ctx.log(`verify: attempt ${i}/${attempts} ${oneLine(detail)}`);
  }
  return { passed: false, attempts, detail: oneLine(detail) };
}

async function httpCheck(c: Extract<VerifyCheck, { kind: 'http' }>, ctx: CheckContext): Promise<Omit<CheckOutcome, 'durationMs'>> {
  const now = ctx.now ?? Date.now;
  const sleep = ctx.sleep ?? defaultSleep;
  const status = c.status ?? 200;
  const field = c.versionField ?? 'version';
  const intervalMs = (c.intervalSeconds ?? 2) * 1000;
  const deadline = now() + (c.timeoutSeconds ?? 60) * 1000;
  let attempts = 0;
  let detail = '';
  for (;;) {
    attempts++;
    const left = Math.max(1000, deadline - now());
    try {
      const res = await fetch(c.url, { signal: AbortSignal.timeout(Math.min(left, 10_000)), redirect: 'manual' });
      const text = await res.text();
      if (res.status !== status) {
        detail = `GET ${c.url} → ${res.status}, expected ${status}`;
      } else if (!c.expectVersion) {
        return { passed: true, attempts, detail: `GET ${c.url} → ${res.status}` };
      } else {
        let seen: unknown;
        try {
          seen = (JSON.parse(text) as Record<string, unknown>)?.[field];
        } catch {
          seen = undefined;
        }
        if (seen === ctx.version) return { passed: true, attempts, detail: `GET ${c.url} → ${res.status}, ${field} ${ctx.version}` };
        detail = `GET ${c.url} → ${res.status} but ${field} is ${seen === undefined ? 'missing' : JSON.stringify(seen)}, expected ${ctx.version}`;
      }
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      detail = `GET ${c.url}: ${err.cause?.code ?? err.name}: ${err.cause ? String((err.cause as Error).message ?? '') : err.message}`;
    }
    if (now() + intervalMs >= deadline)
      return { passed: false, attempts, detail: oneLine(`${detail} (gave up after ${attempts} attempt(s), ${c.timeoutSeconds ?? 60} s)`) };
    if (attempts === 1 || attempts % 5 === 0) ctx.log(`verify: ${oneLine(detail)}; retrying every ${intervalMs / 1000} s`);
    await sleep(intervalMs);
  }
}

async function commandCheck(c: Extract<VerifyCheck, { kind: 'command' }>, ctx: CheckContext): Promise<Omit<CheckOutcome, 'durationMs'>> {
  const [file, ...args] = c.command as [string, ...string[]];
  const env = { ...(ctx.processEnv ?? process.env), BUILDONCE_VERSION: ctx.version, BUILDONCE_ENV: ctx.environment, BUILDONCE_PROJECT: ctx.project };
  const timeoutMs = (c.timeoutSeconds ?? 300) * 1000;
  try {
    const r = await run(file, args, { cwd: ctx.workspaceRoot, env, reject: false, timeoutMs });
    if (r.exitCode === 0) return { passed: true, attempts: 1, detail: oneLine(`${c.command.join(' ')} exited 0`) };
    const last = (r.stderr.trim() || r.stdout.trim()).split('\n').filter(Boolean).slice(-1)[0] ?? '';
    return { passed: false, attempts: 1, detail: oneLine(`${c.command.join(' ')} exited ${r.exitCode}${last ? `: ${last}` : ''}`) };
  } catch (e) {
    return { passed: false, attempts: 1, detail: oneLine((e as Error).message) };
  }
}

/** Runs one check. Never throws for a failing service; throws only for configuration errors (ConfigError). */
export async function runCheck(c: VerifyCheck, ctx: CheckContext): Promise<CheckOutcome> {
  const now = ctx.now ?? Date.now;
  const t0 = now();
  if (isMeasured(c)) throw new Error(`${describeCheck(c)} measures over time: verifyDeploy runs it, not runCheck`);
  const r = c.kind === 'lambda' ? await lambdaCheck(c, ctx) : c.kind === 'http' ? await httpCheck(c, ctx) : await commandCheck(c, ctx);
  return { ...r, durationMs: Math.max(0, Math.round(now() - t0)) };
}

/**
 * Runs `checks` in order, stopping at the first failure.
 * @returns the record for the history entry (undefined when no check ran) and the failed check
 */
export async function runChecks(checks: VerifyCheck[], ctx: CheckContext): Promise<{ verification: Verification; failed?: VerifyCheck } | undefined> {
  if (!checks.length) return undefined;
  let attempts = 0;
  let durationMs = 0;
  const details: string[] = [];
  for (const c of checks) {
    ctx.log(`verify: ${describeCheck(c)}`);
    const r = await runCheck(c, ctx);
    attempts += r.attempts;
    durationMs += r.durationMs;
    if (!r.passed) return { verification: { kind: c.kind, passed: false, attempts, durationMs, detail: r.detail }, failed: c };
    ctx.log(`verify: passed in ${r.durationMs} ms (${r.attempts} attempt(s)): ${r.detail}`);
    details.push(r.detail);
  }
  return { verification: { kind: checks[checks.length - 1]!.kind, passed: true, attempts, durationMs, detail: oneLine(details.join('; '), 400) } };
}

/** How a promotion verifies (built by the promote command from buildonce.json and the clients). */
export interface VerifySetup {
  /** the environment's checks that apply to the project and target ({@link checksFor}, {@link prepareChecks}) */
  checks: VerifyCheck[];
  workspaceRoot: string;
  processEnv?: NodeJS.ProcessEnv;
  /** Lambda client of the command's AWS clients (libs/aws, built once by libs/commands), needed by lambda checks */
  lambda: () => LambdaClient;
  /** CloudWatch client of the command's AWS clients, needed by alarm and metric checks */
  cloudwatch: () => CloudWatchClient;
  /** injectable sleep (tests) */
  sleep?: (ms: number) => Promise<void>;
}

/** Result of {@link verifyDeploy}: the (possibly canary-completed) deploy result and the verification record. */
export interface VerifiedDeploy {
  result: DeployResult;
  verification?: Verification;
  /** one-line reason when the checks failed (or the canary was interrupted) */
  failure?: string;
  /** what the failed check asks for (default rollback) */
  onFailure?: 'rollback' | 'hold';
}

/** What {@link verifyDeploy} (and the stepped variant, verify-stepped.ts) is given. */
export interface VerifyDeployOptions {
  setup: VerifySetup | undefined;
  started: DeployResult;
  project: ProjectName;
  environment: EnvironmentName;
  version: Version;
  canaryMinutes?: number;
  /** stepped canary (`strategy.canary.steps`; the first step is `canaryMinutes`' percent and minutes) */
  steps?: Step[];
  /** moves a running canary to `percent` % (steps after the first) */
  shiftCanary?: (started: DeployResult, percent: number) => Promise<DeployResult>;
  completeCanary?: (started: DeployResult) => Promise<DeployResult>;
  log: (line: string) => void;
}

/**
 * Verifies a deploy. Without a canary: runs the checks once. With a canary running (`started.canary`):
 * runs the checks at the start of the window, waits out the window (`minutes`; SIGINT/SIGTERM end it
 * as a failure), runs them again, and only then shifts 100 % (`target.completeCanary`).
 * Never throws for a failing check, an interrupted window or a failed final shift (see `failure`).
 */
export async function verifyDeploy(o: VerifyDeployOptions): Promise<VerifiedDeploy> {
  const { setup, started, log } = o;
  const ctx: CheckContext = {
    project: o.project,
    environment: o.environment,
    version: o.version,
    deploy: started,
    workspaceRoot: setup?.workspaceRoot ?? process.cwd(),
    processEnv: setup?.processEnv,
    lambda: setup?.lambda,
    sleep: setup?.sleep,
    log,
  };
  const checks = setup?.checks ?? [];
  if (needsSteps(checks, o.steps)) return verifySteppedDeploy({ ...o, ctx, checks });
  const first = await runChecks(checks, ctx);
  if (first && !first.verification.passed) return fail(first);
  const canary = started.target === 'lambda' ? started.canary : undefined;
  if (!canary) return { result: started, ...(first ? { verification: first.verification } : {}) };
  const windowMs = (o.canaryMinutes ?? 0) * 60_000;
  let verification = first?.verification;
  if (windowMs > 0) {
    log(
      `canary: ${canary.percent}% on version ${started.target === 'lambda' ? started.functionVersion : ''} for ${o.canaryMinutes} min (Ctrl-C ends it and restores ${canary.stableVersion})`,
    );
    const interrupted = await interruptibleSleep(windowMs, setup?.sleep);
    if (interrupted) {
      const v: Verification = {
        kind: verification?.kind ?? checks[0]?.kind ?? 'command',
        passed: false,
        attempts: verification?.attempts ?? 0,
        durationMs: verification?.durationMs ?? 0,
        detail: `canary interrupted by ${interrupted}`,
      };
      return { result: started, verification: v, failure: `canary interrupted by ${interrupted}`, onFailure: 'rollback' };
    }
    const again = await runChecks(checks, ctx);
    if (again && !again.verification.passed) {
      const v = again.verification;
      return fail({
        ...again,
        verification: { ...v, attempts: v.attempts + (verification?.attempts ?? 0), durationMs: v.durationMs + (verification?.durationMs ?? 0) },
      });
    }
    if (again && verification)
      verification = {
        ...again.verification,
        attempts: again.verification.attempts + verification.attempts,
        durationMs: again.verification.durationMs + verification.durationMs,
      };
  }
  let result = started;
  if (o.completeCanary) {
    try {
      result = await o.completeCanary(started);
    } catch (e) {
      const why = `canary shift to 100% failed: ${oneLine((e as Error).message ?? String(e))}`;
      return {
        result: started,
        verification: {
          kind: verification?.kind ?? checks[0]?.kind ?? 'command',
          passed: false,
          attempts: verification?.attempts ?? 0,
          durationMs: verification?.durationMs ?? 0,
          detail: why,
        },
        failure: why,
        onFailure: 'rollback',
      };
    }
  }
  log(`canary: 100% on the new version`);
  return { result, ...(verification ? { verification } : {}) };

  function fail(r: { verification: Verification; failed?: VerifyCheck }): VerifiedDeploy {
    return failedCheck(started, r.verification, r.failed);
  }
}

/** The failed outcome of a one-look check: the check named in `failure`, its `onFailure` (default rollback). */
export function failedCheck(started: DeployResult, verification: Verification, failed?: VerifyCheck): VerifiedDeploy {
  const what = failed ? describeCheck(failed) : verification.kind;
  return { result: started, verification, failure: `${what} failed: ${verification.detail}`, onFailure: failed?.onFailure ?? 'rollback' };
}

/** A promise resolving with the name of the first SIGINT / SIGTERM, and `dispose()` removing the handlers. */
export function watchSignals(): { signalled: Promise<string>; dispose: () => void } {
  let onInt: (() => void) | undefined;
  let onTerm: (() => void) | undefined;
  const signalled = new Promise<string>((resolve) => {
    onInt = () => resolve('SIGINT');
    onTerm = () => resolve('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
  });
  return {
    signalled,
    dispose: () => {
      process.off('SIGINT', onInt!);
      process.off('SIGTERM', onTerm!);
    },
  };
}

/** Sleeps `ms`; resolves early with the signal's name on SIGINT/SIGTERM (handlers removed afterwards). */
async function interruptibleSleep(ms: number, sleep?: (ms: number) => Promise<void>): Promise<string | undefined> {
  const signals = watchSignals();
  let timer: NodeJS.Timeout | undefined;
  const slept = sleep ? sleep(ms) : new Promise<void>((r) => (timer = setTimeout(r, ms)));
  try {
    return await Promise.race([slept.then(() => undefined), signals.signalled]);
  } finally {
    clearTimeout(timer); // an interrupted window must not keep the process alive
    signals.dispose();
  }
}
