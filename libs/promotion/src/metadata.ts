import { userInfo } from 'node:os';
import { run } from '@buildonce/process';
import { ConfigError } from '@buildonce/errors';

/** Who runs a promotion, from where: recorded in every history entry. */
export interface PromotionMetadata {
  /** source commit (GITHUB_SHA, else `git rev-parse HEAD` of the workspace; null outside git) */
  commit: string | null;
  /** CI run id (GITHUB_RUN_ID, with `-<attempt>` when GITHUB_RUN_ATTEMPT > 1); null locally */
  runId: string | null;
  /** GITHUB_ACTOR, else USER, else the OS user name */
  actor: string;
  /** why (`--reason`): recorded in the history entry (one line, see {@link parseReason}) */
  reason?: string;
}

/** Longest `--reason` kept (characters). */
export const MAX_REASON_LENGTH = 500;

/**
 * Validates a `--reason` value: trimmed, one line, at most {@link MAX_REASON_LENGTH} characters.
 * @returns the trimmed reason, or undefined when none was given
 * @throws ConfigError for an empty, multi-line or too long reason
 */
export function parseReason(reason: string | undefined): string | undefined {
  if (reason === undefined) return undefined;
  const r = reason.trim();
  if (!r) throw new ConfigError('--reason is empty: say why (e.g. --reason="error rate after 1.4.2"), or leave it out');
  if (/[\r\n]/.test(r)) throw new ConfigError('--reason must be one line');
  if (r.length > MAX_REASON_LENGTH) throw new ConfigError(`--reason is ${r.length} characters: keep it under ${MAX_REASON_LENGTH}`);
  return r;
}

/**
 * Reads promotion metadata from the environment (GitHub Actions default variables) and the
 * workspace's git HEAD (one `git rev-parse HEAD`).
 */
export async function promotionMetadataFromEnv(workspaceRoot: string, env: NodeJS.ProcessEnv = process.env): Promise<PromotionMetadata> {
  let commit: string | null = env.GITHUB_SHA || null;
  if (!commit) {
    const r = await run('git', ['rev-parse', 'HEAD'], { cwd: workspaceRoot, reject: false }).catch(() => undefined);
    commit = r && r.exitCode === 0 && /^[0-9a-f]{40,64}$/.test(r.stdout.trim()) ? r.stdout.trim() : null;
  }
  const attempt = env.GITHUB_RUN_ATTEMPT && env.GITHUB_RUN_ATTEMPT !== '1' ? `-${env.GITHUB_RUN_ATTEMPT}` : '';
  let actor = env.GITHUB_ACTOR || env.USER || '';
  if (!actor) {
    try {
      actor = userInfo().username;
    } catch {
      actor = 'unknown';
    }
  }
  return { commit, runId: env.GITHUB_RUN_ID ? `${env.GITHUB_RUN_ID}${attempt}` : null, actor };
}
