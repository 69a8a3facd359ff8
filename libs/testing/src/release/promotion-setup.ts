import { parseConfig, resolveEnvironment } from '@buildonce/config';
import type { PromoteRequest } from '@buildonce/promotion';
import { openStore, parseStoreUrl, type BlobStore } from '@buildonce/store';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';
import { unusedAwsClients } from '../aws';
import { tempDir } from '../temp';
import { FakeTarget } from './testkit';

/** What promotion specs work with: a file store in a temp dir, a fake target, the log lines and a request builder. */
export interface PromotionSetup {
  store: BlobStore;
  target: FakeTarget;
  lines: string[];
  /** the promoteVersion request of `svc` at `version` into `env` */
  req: (version: string, env: string) => PromoteRequest;
}

/**
 * A promotion of project `svc` against a fresh file store and a {@link FakeTarget} (no AWS: unused clients).
 * @param o.config buildonce.json as parsed (default: the default chain dev → staging → prod)
 * @param o.meta promotion metadata (default: commit abc123, run 7, actor tester)
 * @param o.extra fields every request adds, given its resolved environment (a lock, checks…)
 */
export function promotionSetup(
  o: {
    config?: ReturnType<typeof parseConfig>;
    meta?: PromoteRequest['meta'];
    extra?: (environment: ReturnType<typeof resolveEnvironment>) => Partial<PromoteRequest>;
  } = {},
): PromotionSetup {
  const config = o.config ?? parseConfig({});
  const store: BlobStore = openStore(parseStoreUrl(`file://${tempDir('promotion-')}`));
  const target = new FakeTarget();
  const lines: string[] = [];
  const req = (version: string, env: string): PromoteRequest => {
    const environment = resolveEnvironment(config, env as EnvironmentName);
    return {
      store,
      aws: unusedAwsClients(),
      project: 'svc' as ProjectName,
      version: version as Version,
      environment,
      target,
      meta: o.meta ?? { commit: 'abc123', runId: '7', actor: 'tester' },
      log: (l) => lines.push(l),
      ...o.extra?.(environment),
    };
  };
  return { store, target, lines, req };
}
