import { userInfo } from 'node:os';
import { run } from '@buildonce/build';

/** Who runs a promotion, from where: recorded in every history entry. */
export interface PromotionMetadata {
  /** source commit (GITHUB_SHA, else `git rev-parse HEAD` of the workspace; null outside git) */
  commit: string | null;
  /** CI run id (GITHUB_RUN_ID, with `-<attempt>` when GITHUB_RUN_ATTEMPT > 1); null locally */
  runId: string | null;
  /** GITHUB_ACTOR, else USER, else the OS user name */
  actor: string;
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
