import { runRetention, type RetentionResult } from '@buildonce/release';
import { openStore, resolveStoreLocation } from '@buildonce/store';

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
 * Resolves the store (option, BUILDONCE_STORE, embedded default) and runs retention, logging one line
 * per deleted version and a summary with the bytes freed.
 * @throws StoreConfigError, StoreAccessError, RangeError for bad numbers
 */
export async function runRetentionCommand(c: RetentionCommand): Promise<RetentionResult> {
  const env = c.env ?? process.env;
  const location = resolveStoreLocation({ store: c.store, env, workspaceRoot: c.workspaceRoot });
  const store = openStore(location, { env });
  c.log(`retention on ${location.url}: ${c.pr ? `preview versions of PR #${c.pr}` : `older than ${c.olderThanDays} days, keeping the newest ${c.keep} per project`}${c.dryRun ? ' (dry run)' : ''}`);
  return runRetention({ store, projects: c.projects, olderThanDays: c.olderThanDays, keep: c.keep, pr: c.pr, dryRun: c.dryRun, log: c.log });
}
