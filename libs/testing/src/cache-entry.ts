import { sha256Hex } from './cache-server/helpers';

/** What the cache server answered to a GET of an entry. */
export interface ServedEntry {
  /** HTTP status */
  status: number;
  /** the `x-buildonce-cache-namespace` header: where the entry came from (`trusted`, `pr-7`, …), null when absent */
  namespace: string | null;
  /** lowercase hex sha256 of the body (of the empty body on a miss) */
  sha256: string;
}

/**
 * Reads the answer to a cache GET (`GET /v1/cache/<hash>`) into one comparable value; the body is consumed.
 * @param res the response, or the pending fetch
 */
export async function servedEntry(res: Response | Promise<Response>): Promise<ServedEntry> {
  const r = await res;
  const body = Buffer.from(await r.arrayBuffer());
  return { status: r.status, namespace: r.headers.get('x-buildonce-cache-namespace'), sha256: sha256Hex(body) };
}
