/**
 * Test child (crash-points.int.spec.ts): promotes one version on a file store with a file-backed
 * deploy target, and dies by SIGKILL at the crash point named in BUILDONCE_CRASH_AT (see crashPoint), one
 * of PROMOTION_CRASH_POINTS (../promotion-crash-points.ts), which lists them in the order reached here.
 * Usage: crash-child.ts <storeDir> <liveFile> <version>
 */
import { crashPoint } from '@buildonce/testing';
import { unusedAwsClients } from '../aws';
import { openStore, parseStoreUrl, type BlobStore } from '@buildonce/store';
import { parseConfig, resolveEnvironment } from '@buildonce/config';
import { promoteVersion } from '@buildonce/promotion';
import { CRASH_CHILD_REQUEST, FileTarget, reportChild } from './crash-target';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

const [storeDir, liveFile, version] = process.argv.slice(2) as [string, string, string];
const base = openStore(parseStoreUrl(`file://${storeDir}`));
const store: BlobStore = Object.create(base);
store.putBytesIfMatch = async (key, bytes, etag, o) => {
  const r = await base.putBytesIfMatch(key, bytes, etag, o);
  if (r.status === 'written' && key.endsWith('/lock.json') && Buffer.from(bytes).toString().includes('"held"')) crashPoint('after-lock');
  if (r.status === 'written' && key.endsWith('/current.json')) crashPoint('after-pointer');
  return r;
};
store.putBytesIfAbsent = async (key, bytes, o) => {
  const r = await base.putBytesIfAbsent(key, bytes, o);
  if (key.includes('/history/')) crashPoint('after-history');
  return r;
};
reportChild(
  promoteVersion({
    store,
    aws: unusedAwsClients(),
    project: 'svc' as ProjectName,
    version: version as Version,
    environment: resolveEnvironment(parseConfig({}), 'dev' as EnvironmentName),
    target: new FileTarget(liveFile, { before: () => crashPoint('before-deploy'), after: () => crashPoint('after-deploy') }),
    ...CRASH_CHILD_REQUEST,
  }),
);
