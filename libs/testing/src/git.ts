import { execFileSync } from 'node:child_process';

/**
 * Runs `git <args>` in `dir` as author and committer `t <t@t>` (specs that need commits).
 * @returns its stdout, trimmed
 * @throws Error when git exits non-zero
 */
export function gitIn(dir: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' },
  }).trim();
}
