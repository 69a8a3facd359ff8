import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { DeployRequest, DeployResult, DeployTarget } from '@buildonce/deploy';

/**
 * Test deploy target (crash tests): "deploying" writes the version into one file atomically (temp +
 * rename), so another process can see what is live. Hooks run before and after the write.
 */
export class FileTarget implements DeployTarget {
  readonly kind = 'local' as const;
  constructor(
    readonly liveFile: string,
    private readonly hooks: { before?: () => void; after?: () => void } = {},
  ) {}
  describe(req: Pick<DeployRequest, 'project' | 'environment'>): string {
    return `file ${this.liveFile} (${req.project}/${req.environment})`;
  }
  async preflight(): Promise<void> {}
  async deploy(req: DeployRequest): Promise<DeployResult> {
    this.hooks.before?.();
    writeFileSync(`${this.liveFile}.tmp`, req.version);
    renameSync(`${this.liveFile}.tmp`, this.liveFile);
    this.hooks.after?.();
    return { target: 'local', root: this.liveFile, path: this.liveFile, status: 'deployed' };
  }
  /** the version live now (undefined before the first deploy) */
  live(): string | undefined {
    try {
      return readFileSync(this.liveFile, 'utf8');
    } catch {
      return undefined;
    }
  }
}

/** What every crash child's promotion carries: the crash-child identity, a 1 s lease (taken over soon after the kill), no log. */
export const CRASH_CHILD_REQUEST = {
  meta: { commit: 'c', runId: 'child', actor: 'crash-child' },
  lock: { ttlMs: 1_000, waitMs: 30_000 },
  log: (): void => undefined,
};

/** Ends a crash child: the promotion's status on stdout, or its error on stderr and exit code 1 (what the crash specs read). */
export function reportChild(result: Promise<{ status: string }>): void {
  result.then(
    (r) => process.stdout.write(`${r.status}\n`),
    (e: Error) => {
      process.stderr.write(`${e.message}\n`);
      process.exit(1);
    },
  );
}
