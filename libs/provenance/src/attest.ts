import { hostname } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { sha256File } from '@buildonce/artifact';
import { run } from '@buildonce/build';
import { IN_TOTO_PAYLOAD_TYPE, pae, serializeEnvelope, type Envelope } from './dsse';
import type { Signer } from './keys';
import { buildStatement, type ResourceDescriptor, type Statement, type StatementInput } from './statement';

/** Lock files whose sha256 goes into `resolvedDependencies` when present (workspace root, then project root). */
export const LOCK_FILES = ['package-lock.json', 'npm-shrinkwrap.json', 'pnpm-lock.yaml', 'yarn.lock', 'bun.lock', 'Cargo.lock'] as const;

/** Where and by whom a version is being built, as the statement records it. */
export interface BuildContext {
  /** GITHUB_WORKFLOW_REF in GitHub Actions (`owner/repo/.github/workflows/release.yml@refs/heads/main`), else `local:<host>` */
  builderId: string;
  /** GitHub: `<server>/<repo>/actions/runs/<id>/attempts/<n>`; locally `local:<host>:<pid>:<ms since epoch>` */
  invocationId: string;
  /** GITHUB_REF, else the checked-out branch `refs/heads/<branch>` (absent on a detached HEAD) */
  ref?: string;
  /** source commit (GITHUB_SHA, else `git rev-parse HEAD`) */
  commit?: string;
  /** source repository URI (`git+https://github.com/<repo>`, else the `origin` remote, else absent) */
  repository?: string;
  internalParameters: Record<string, unknown>;
}

/**
 * Collects the {@link BuildContext} from the CI environment (GitHub Actions variables) or, locally,
 * from git (`git rev-parse HEAD`, `git symbolic-ref -q HEAD`, `git remote get-url origin`; failures
 * leave the field absent).
 */
export async function buildContextFromEnv(workspaceRoot: string, env: NodeJS.ProcessEnv = process.env, now = new Date()): Promise<BuildContext> {
  const gha = env.GITHUB_ACTIONS === 'true';
  const git = async (...args: string[]) => {
    const r = await run('git', args, { cwd: workspaceRoot, reject: false }).catch(() => undefined);
    return r && r.exitCode === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
  };
  const [commit, ref, origin] = gha && env.GITHUB_SHA && env.GITHUB_REF
    ? [env.GITHUB_SHA, env.GITHUB_REF, undefined]
    : await Promise.all([env.GITHUB_SHA || git('rev-parse', 'HEAD'), env.GITHUB_REF || git('symbolic-ref', '-q', 'HEAD'), git('remote', 'get-url', 'origin')]);
  const server = env.GITHUB_SERVER_URL || 'https://github.com';
  const repository = gha && env.GITHUB_REPOSITORY ? `git+${server}/${env.GITHUB_REPOSITORY}` : origin ? `git+${origin}` : undefined;
  const internal: Record<string, unknown> = {};
  if (gha) {
    for (const [k, v] of Object.entries({ eventName: env.GITHUB_EVENT_NAME, repositoryId: env.GITHUB_REPOSITORY_ID, repositoryOwnerId: env.GITHUB_REPOSITORY_OWNER_ID, runnerEnvironment: env.RUNNER_ENVIRONMENT, workflowSha: env.GITHUB_WORKFLOW_SHA })) {
      if (v) internal[k] = v;
    }
  }
  return {
    builderId: gha && env.GITHUB_WORKFLOW_REF ? env.GITHUB_WORKFLOW_REF : `local:${hostname()}`,
    invocationId:
      gha && env.GITHUB_RUN_ID
        ? `${server}/${env.GITHUB_REPOSITORY ?? 'unknown'}/actions/runs/${env.GITHUB_RUN_ID}/attempts/${env.GITHUB_RUN_ATTEMPT ?? '1'}`
        : `local:${hostname()}:${process.pid}:${now.getTime()}`,
    ...(ref ? { ref } : {}),
    ...(commit ? { commit } : {}),
    ...(repository ? { repository } : {}),
    internalParameters: internal,
  };
}

/**
 * `resolvedDependencies` of a build: the source commit (`{ uri: <repo>@<ref>, digest: { gitCommit } }`),
 * each lock file present in `dirs` (`{ name, digest: { sha256 } }`) and the toolchain identity.
 */
export async function resolvedDependencies(o: { context: BuildContext; dirs: string[]; toolchain: string; runtime?: string; architecture?: string }): Promise<ResourceDescriptor[]> {
  const deps: ResourceDescriptor[] = [];
  if (o.context.commit) {
    deps.push({ ...(o.context.repository ? { uri: `${o.context.repository}${o.context.ref ? `@${o.context.ref}` : ''}` } : { name: 'source' }), digest: { gitCommit: o.context.commit } });
  }
  const seen = new Set<string>();
  for (const dir of o.dirs) {
    for (const f of LOCK_FILES) {
      const path = join(dir, f);
      if (seen.has(path)) continue;
      seen.add(path);
      const d = await sha256File(path).catch(() => undefined);
      if (d) deps.push({ name: o.dirs.indexOf(dir) === 0 ? f : path, digest: { sha256: d.hex } });
    }
  }
  deps.push({
    name: 'toolchain',
    annotations: { toolchain: o.toolchain, ...(o.runtime ? { runtime: o.runtime } : {}), ...(o.architecture ? { architecture: o.architecture } : {}), node: process.version },
  });
  return deps;
}

/** A signed statement ready to store. */
export interface Attestation {
  envelope: Envelope;
  /** stored bytes of the envelope (`provenance.intoto.json`) */
  bytes: Buffer;
  statement: Statement;
  /** time spent serializing and signing, ms */
  signMs: number;
}

/**
 * Builds the Statement and signs it into a DSSE envelope: payload = the statement's JSON (UTF-8),
 * signature = signer(PAE(payloadType, payload)), base64 in the envelope.
 * @throws ProvenanceError from the signer
 */
export async function attest(input: StatementInput, signer: Signer): Promise<Attestation> {
  const t0 = performance.now();
  const statement = buildStatement(input);
  const payload = Buffer.from(JSON.stringify(statement));
  const sig = await signer.sign(pae(IN_TOTO_PAYLOAD_TYPE, payload));
  const envelope: Envelope = { payloadType: IN_TOTO_PAYLOAD_TYPE, payload: payload.toString('base64'), signatures: [{ keyid: signer.keyid, sig: sig.toString('base64') }] };
  const bytes = serializeEnvelope(envelope);
  return { envelope, bytes, statement, signMs: performance.now() - t0 };
}
