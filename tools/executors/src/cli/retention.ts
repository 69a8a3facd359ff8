import { loadConfig, runImageRetention, type ImageRetentionResult } from '@buildonce/release';
import { openStore, resolveStoreLocation, type BlobStore } from '@buildonce/store';

/**
 * The workspace's store: `--store`, else BUILDONCE_STORE / buildonce.json `store` (loadConfig applies the
 * override), else the embedded file store.
 * @throws ConfigError for a bad buildonce.json, StoreConfigError for a bad URL
 */
export async function workspaceStore(workspaceRoot: string, store?: string, env: NodeJS.ProcessEnv = process.env): Promise<BlobStore> {
  const config = await loadConfig(workspaceRoot, env);
  return openStore(resolveStoreLocation({ store: store || config.store, env: {}, workspaceRoot }), { env });
}

export interface RetentionCommand {
  workspaceRoot: string;
  /** undefined: every project in the store */
  projects?: string[];
  olderThanDays: number;
  keep: number;
  pr?: number;
  store?: string;
  dryRun: boolean;
  env?: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

/**
 * Resolves the store (option, BUILDONCE_STORE, embedded default) and runs retention (libs/release
 * runImageRetention: store retention + registry images of oci-image versions), logging one line per
 * deleted version and a summary with the bytes freed.
 * @throws StoreConfigError, StoreAccessError, RangeError for bad numbers
 */
export async function runRetentionCommand(c: RetentionCommand): Promise<ImageRetentionResult> {
  const store = await workspaceStore(c.workspaceRoot, c.store, c.env);
  c.log(`retention on ${store.location.url}: ${c.pr ? `preview versions of PR #${c.pr}` : `older than ${c.olderThanDays} days, keeping the newest ${c.keep} per project`}${c.dryRun ? ' (dry run)' : ''}`);
  // oci-image versions: their registry images go by digest too, protected ones keep their keep-<version> tag (ECR)
  return runImageRetention({ store, projects: c.projects, olderThanDays: c.olderThanDays, keep: c.keep, pr: c.pr, dryRun: c.dryRun, env: c.env, log: c.log });
}
