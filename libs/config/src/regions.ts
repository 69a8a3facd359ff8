import { z } from 'zod';
import { parseStoreUrl } from '@buildonce/store';

/**
 * AWS Regions a `regions` entry may name (AWS General Reference, "Regions and Zones": the commercial
 * partition, GovCloud and China). A name outside the list is almost always a typo (`eu-west1`,
 * `us-east-01`), which would otherwise surface only as an unreachable endpoint mid-promotion.
 */
export const AWS_REGIONS: readonly string[] = [
  'us-east-1',
  'us-east-2',
  'us-west-1',
  'us-west-2',
  'af-south-1',
  'ap-east-1',
  'ap-east-2',
  'ap-south-1',
  'ap-south-2',
  'ap-southeast-1',
  'ap-southeast-2',
  'ap-southeast-3',
  'ap-southeast-4',
  'ap-southeast-5',
  'ap-southeast-7',
  'ap-northeast-1',
  'ap-northeast-2',
  'ap-northeast-3',
  'ca-central-1',
  'ca-west-1',
  'eu-central-1',
  'eu-central-2',
  'eu-west-1',
  'eu-west-2',
  'eu-west-3',
  'eu-south-1',
  'eu-south-2',
  'eu-north-1',
  'il-central-1',
  'me-south-1',
  'me-central-1',
  'mx-central-1',
  'sa-east-1',
  'us-gov-east-1',
  'us-gov-west-1',
  'cn-north-1',
  'cn-northwest-1',
];

/** True for a name in {@link AWS_REGIONS}. */
export function isAwsRegion(name: string): boolean {
  return AWS_REGIONS.includes(name);
}

/** One region of an environment as written in buildonce.json. */
export const regionConfigSchema = z
  .object({
    /** the region's store (`s3://bucket/prefix`, the bucket in that region); absent: the home store */
    store: z.string().min(1).optional(),
    /** the region's image registry repository (`<acct>.dkr.ecr.<region>.amazonaws.com/<repo>`) */
    registry: z.string().min(1).optional(),
  })
  .strict();

/** One region of an environment after parseConfig. */
export interface EnvironmentRegion {
  /** AWS Region name, e.g. `eu-west-1` */
  name: string;
  /** normalized store URL (`s3://bucket/prefix`); undefined: the home store */
  store?: string;
  registry?: string;
}

/**
 * Validates an environment's `regions` (pure): known AWS Region names, every region store an
 * `s3://` URL, no two regions sharing one store (a region without `store` uses the home store, so at
 * most one region may leave it out, and none may name the home store again). The bucket's own region
 * can only be checked against S3 (promotion does it before deploying: `checkStoreRegion`).
 * @param field path for messages, e.g. `environments.2.regions`
 * @param homeStore buildonce.json `store` (undefined: not configured; BUILDONCE_STORE may set it later)
 * @returns the regions in the file's order, or a one-line problem `<field>.<region>…: <problem>`
 */
export function parseRegions(
  regions: Record<string, z.infer<typeof regionConfigSchema>>,
  field: string,
  homeStore: string | undefined,
): { ok: true; regions: EnvironmentRegion[] } | { ok: false; problem: string } {
  const out: EnvironmentRegion[] = [];
  const byStore = new Map<string, string>();
  const home = homeStore ? normalizedS3(homeStore) : undefined;
  for (const [name, r] of Object.entries(regions)) {
    if (!isAwsRegion(name)) return { ok: false, problem: `${field}.${name}: "${name}" is not an AWS Region name (e.g. us-east-1, eu-west-1)` };
    let store: string | undefined;
    if (r.store !== undefined) {
      store = normalizedS3(r.store);
      if (!store) return { ok: false, problem: `${field}.${name}.store: "${r.store}" must be an s3://<bucket>/<prefix> URL whose bucket is in ${name}` };
    }
    const key = store ?? home ?? '(home store)';
    const other = byStore.get(key) ?? (store && store === home ? '(the home store)' : undefined);
    if (other)
      return {
        ok: false,
        problem: `${field}.${name}.store: ${name} and ${other} share the store ${key}: give each region its own bucket (at most one region may use the home store, by leaving out "store")`,
      };
    byStore.set(key, name);
    out.push({ name, ...(store ? { store } : {}), ...(r.registry ? { registry: r.registry } : {}) });
  }
  return { ok: true, regions: out };
}

/** `s3://bucket/prefix` normalized by the store URL parser; undefined for anything else. */
function normalizedS3(url: string): string | undefined {
  try {
    const l = parseStoreUrl(url);
    return l.kind === 's3' ? l.url : undefined;
  } catch {
    return undefined;
  }
}
