import { appendFile } from 'node:fs/promises';

/**
 * Appends `key=value` lines to the file named by `$GITHUB_OUTPUT` (GitHub Actions step outputs,
 * "Setting an output parameter" in the Actions workflow-commands docs). No-op when unset.
 * Values must be single-line.
 * @returns true when written
 * @throws Error for a multi-line value; fs errors
 */
export async function appendGithubOutput(pairs: Record<string, string>, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const file = env.GITHUB_OUTPUT;
  if (!file) return false;
  for (const [k, v] of Object.entries(pairs)) if (/[\r\n]/.test(v)) throw new Error(`GITHUB_OUTPUT value for ${k} must be one line`);
  await appendFile(
    file,
    Object.entries(pairs)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
  );
  return true;
}
