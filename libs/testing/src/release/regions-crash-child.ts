/**
 * Test child (regions-crash.int.spec.ts): promotes one version to an environment in two regions
 * (us-east-1 on the home store, eu-west-1 on its own store; S3 from the AWS_* environment, e.g. moto) with
 * file-backed deploy targets `<liveDir>/<region>`, and dies by SIGKILL at the crash point named in
 * BUILDONCE_CRASH_AT: `between-regions` (us-east-1 deployed, eu-west-1 not yet).
 * Usage: regions-crash-child.ts <homeUrl> <euUrl> <liveDir> <version>
 */
import { join } from 'node:path';
import { crashPoint } from '@buildonce/testing';
import { unusedAwsClients } from '../aws';
import { openRegionStore } from '@buildonce/store';
import { parseConfig, resolveEnvironment } from '@buildonce/config';
import { promoteVersion } from '@buildonce/promotion';
import { CRASH_CHILD_REQUEST, FileTarget, reportChild } from './crash-target';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

const [homeUrl, euUrl, liveDir, version] = process.argv.slice(2) as [string, string, string, string];
const home = openRegionStore(homeUrl, 'us-east-1');
reportChild(
  promoteVersion({
    store: home,
    aws: unusedAwsClients(),
    project: 'svc' as ProjectName,
    version: version as Version,
    environment: resolveEnvironment(
      parseConfig({ store: homeUrl, environments: [{ name: 'prod', regions: { 'us-east-1': {}, 'eu-west-1': { store: euUrl } } }] }),
      'prod' as EnvironmentName,
    ),
    target: new FileTarget(join(liveDir, 'us-east-1')),
    regions: [
      { name: 'us-east-1', store: home, home: true, target: new FileTarget(join(liveDir, 'us-east-1')) },
      {
        name: 'eu-west-1',
        store: openRegionStore(euUrl, 'eu-west-1'),
        home: false,
        target: new FileTarget(join(liveDir, 'eu-west-1'), { before: () => crashPoint('between-regions') }),
      },
    ],
    ...CRASH_CHILD_REQUEST,
  }),
);
