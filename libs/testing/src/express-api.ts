import { join } from 'node:path';
import { repoRoot } from './workspace';

/** The EC2 boot script of apps/express-api (absolute path). */
export const EXPRESS_API_USER_DATA = join(repoRoot, 'apps/express-api/deploy/user-data.sh');

/** The file name of the deployment tarball that express-api's build writes and publishes. */
export const EXPRESS_API_TARBALL = 'express-api-deployment.tar.gz';
