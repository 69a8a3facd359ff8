import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runRetentionCommand } from './retention';

const USAGE = `usage: buildonce <command> [options]
  retention [--older-than=<days>] [--keep=<n>] [--pr=<n>] [--project=<p>]... [--store=<url>] [--dry-run]
`;

/** Nearest directory upwards from `start` holding nx.json (the workspace root). */
export function findWorkspaceRoot(start = process.cwd()): string {
  let dir = start;
  while (!existsSync(join(dir, 'nx.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no nx.json found above ${start}: run buildonce inside the workspace`);
    dir = up;
  }
  return dir;
}

function int(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number >= 0, got "${v}"`);
  return n;
}

/**
 * Entry point of the `buildonce` bin (workspace-wide commands).
 * @param argv arguments after the binary name
 * @returns process exit code (0 success, 1 failure, 2 usage error)
 */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'retention') {
      const { values } = parseArgs({
        args: rest,
        options: {
          'older-than': { type: 'string' },
          keep: { type: 'string' },
          pr: { type: 'string' },
          project: { type: 'string', multiple: true },
          store: { type: 'string' },
          'dry-run': { type: 'boolean', default: false },
        },
        strict: true,
      });
      await runRetentionCommand({
        workspaceRoot: findWorkspaceRoot(),
        projects: values.project,
        olderThanDays: int('older-than', values['older-than'], 30),
        keep: int('keep', values.keep, 10),
        pr: values.pr === undefined ? undefined : int('pr', values.pr, 0),
        store: values.store,
        dryRun: values['dry-run'] ?? false,
        log: (l) => console.log(l),
      });
      return 0;
    }
    process.stderr.write(command ? `buildonce: unknown command "${command}"\n${USAGE}` : USAGE);
    return 2;
  } catch (e) {
    console.error(`buildonce ${command}: ${(e as Error).message}`);
    return 1;
  }
}
