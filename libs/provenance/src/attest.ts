import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, relative, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import { run } from '@buildonce/process';
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
  /** GITHUB_REF, else the checked-out ref `refs/heads/<branch>` (absent on a detached HEAD) */
  ref?: string;
  /** source commit (GITHUB_SHA, else `git rev-parse HEAD`) */
  commit?: string;
  /** source repository URI in CI (`git+https://github.com/<repo>`); absent locally */
  repository?: string;
  /**
   * How many paths of the work tree differ from `commit` (modified, staged, deleted or untracked and not
   * ignored, per `git status`); present only when there are any: the built tree is then not the commit.
   */
  uncommittedPaths?: number;
  internalParameters: Record<string, unknown>;
}

/**
 * Collects the {@link BuildContext} from the CI environment (GitHub Actions variables) and git, with ONE
 * process (`git status --porcelain=v2 --branch`: the checked-out commit and branch where CI does not name
 * them, and whether the work tree differs from the commit; a failure leaves all three absent). Locally
 * the repository URI is not recorded.
 */
export async function buildContextFromEnv(workspaceRoot: string, env: NodeJS.ProcessEnv = process.env, now = new Date()): Promise<BuildContext> {
  const gha = env.GITHUB_ACTIONS === 'true';
  let commit = env.GITHUB_SHA || undefined;
  let ref = env.GITHUB_REF || undefined;
  let uncommittedPaths: number | undefined;
  const r = await run('git', ['status', '--porcelain=v2', '--branch'], { cwd: workspaceRoot, reject: false }).catch(() => undefined);
  if (r && r.exitCode === 0) {
    const lines = r.stdout.split('\n').filter(Boolean);
    const header = (key: string) =>
      lines
        .find((l) => l.startsWith(`# ${key} `))
        ?.slice(key.length + 3)
        .trim();
    const sha = header('branch.oid');
    const branch = header('branch.head');
    if (!commit && sha && /^[0-9a-f]{40,64}$/.test(sha)) commit = sha;
    if (!ref && branch && branch !== '(detached)') ref = `refs/heads/${branch}`;
    const changed = lines.filter((l) => !l.startsWith('#')).length;
    if (changed) uncommittedPaths = changed;
  }
  const server = env.GITHUB_SERVER_URL || 'https://github.com';
  const repository = gha && env.GITHUB_REPOSITORY ? `git+${server}/${env.GITHUB_REPOSITORY}` : undefined;
  const internal: Record<string, unknown> = {};
  if (gha) {
    for (const [k, v] of Object.entries({
      eventName: env.GITHUB_EVENT_NAME,
      repositoryId: env.GITHUB_REPOSITORY_ID,
      repositoryOwnerId: env.GITHUB_REPOSITORY_OWNER_ID,
      runnerEnvironment: env.RUNNER_ENVIRONMENT,
      workflowSha: env.GITHUB_WORKFLOW_SHA,
    })) {
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
    ...(uncommittedPaths ? { uncommittedPaths } : {}),
    internalParameters: internal,
  };
}

/**
 * sha256 of every {@link LOCK_FILES} entry present in `dirs` (read whole: lock files are small), named by
 * their path relative to the first directory (the workspace root): `package-lock.json`,
 * `apps/scorer/Cargo.lock`. Never an absolute path: provenance must not depend on (or reveal) where the
 * builder's checkout lives.
 */
export async function lockFileDigests(dirs: string[]): Promise<ResourceDescriptor[]> {
  const paths = [...new Set(dirs.flatMap((d) => LOCK_FILES.map((f) => join(d, f))))];
  const found = await Promise.all(paths.map(async (p) => ({ p, bytes: await readFile(p).catch(() => undefined) })));
  return found
    .filter((x) => x.bytes)
    .map(({ p, bytes }) => ({ name: relative(dirs[0]!, p).split(sep).join('/'), digest: { sha256: createHash('sha256').update(bytes!).digest('hex') } }));
}

/**
 * `resolvedDependencies` of a build: the source commit (`{ uri: <repo>@<ref>, digest: { gitCommit } }`,
 * or `{ name: "source", … }` without a repository URI; built from a dirty work tree it carries
 * `annotations: { dirty: true, uncommittedPaths: <n> }`), the lock files' digests and the toolchain identity.
 */
export function resolvedDependencies(o: {
  context: BuildContext;
  lockFiles: ResourceDescriptor[];
  toolchain: string;
  runtime?: string;
  architecture?: string;
}): ResourceDescriptor[] {
  const deps: ResourceDescriptor[] = [];
  if (o.context.commit) {
    deps.push({
      ...(o.context.repository ? { uri: `${o.context.repository}${o.context.ref ? `@${o.context.ref}` : ''}` } : { name: 'source' }),
      digest: { gitCommit: o.context.commit },
      ...(o.context.uncommittedPaths ? { annotations: { dirty: true, uncommittedPaths: o.context.uncommittedPaths } } : {}),
    });
  }
  deps.push(...o.lockFiles);
  deps.push({
    name: 'toolchain',
    annotations: {
      toolchain: o.toolchain,
      ...(o.runtime ? { runtime: o.runtime } : {}),
      ...(o.architecture ? { architecture: o.architecture } : {}),
      node: process.version,
    },
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
  const envelope: Envelope = {
    payloadType: IN_TOTO_PAYLOAD_TYPE,
    payload: payload.toString('base64'),
    signatures: [{ keyid: signer.keyid, sig: sig.toString('base64') }],
  };
  const bytes = serializeEnvelope(envelope);
  return { envelope, bytes, statement, signMs: performance.now() - t0 };
}
