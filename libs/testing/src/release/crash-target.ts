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
