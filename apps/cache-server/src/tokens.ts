import { createHash, timingSafeEqual } from 'node:crypto';
import { ConfigError } from './errors';

/** The namespace of trusted builds (tokens configured without a namespace, e.g. CI on `main`). */
export const TRUSTED = 'trusted';

/** Namespace names for untrusted tokens: like preview environments (`pr-51`), never `trusted`. */
export const NAMESPACE_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;

export type Access = 'read-write' | 'read-only';

/** Who a request is, once its bearer token matched. Never carries the token itself. */
export interface Principal {
  access: Access;
  /** `trusted`, or an untrusted namespace such as `pr-51` */
  namespace: string;
  /** position of the token in BUILDONCE_CACHE_TOKENS (0-based), for logs; absent for OIDC principals */
  index?: number;
  /** who an OIDC token named (`oidc:<repository> <event> <ref>`), for logs; absent for static tokens */
  identity?: string;
}

interface TokenEntry extends Principal {
  digest: Buffer;
  index: number;
}

/**
 * Parses `BUILDONCE_CACHE_TOKENS`: a comma list of `<token>:<access>[:<namespace>]`, access `read-write` or
 * `read-only`; without a namespace the token is trusted. Whitespace around items is ignored. An empty list is
 * allowed only with `allowEmpty` (OIDC mode, where ID tokens authenticate).
 * @throws ConfigError for an empty list, a malformed item, an unknown access, a bad or reserved namespace, or a
 *   duplicate token (messages name the item by position, never the token)
 */
export function parseTokens(raw: string | undefined, opts: { allowEmpty?: boolean } = {}): TokenTable {
  const items = (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0 && !opts.allowEmpty) {
    throw new ConfigError('BUILDONCE_CACHE_TOKENS is empty: set it to a comma list of <token>:<read-write|read-only>[:<namespace>]');
  }
  const entries: TokenEntry[] = [];
  const seen = new Set<string>();
  items.forEach((item, index) => {
    const parts = item.split(':');
    const where = `BUILDONCE_CACHE_TOKENS item ${index + 1}`;
    if (parts.length < 2 || parts.length > 3) throw new ConfigError(`${where} is not <token>:<access>[:<namespace>]`);
    const [token, access, namespace] = parts as [string, string, string | undefined];
    if (!token) throw new ConfigError(`${where} has an empty token`);
    if (access !== 'read-write' && access !== 'read-only') {
      throw new ConfigError(`${where} has access "${access}": use read-write or read-only`);
    }
    if (namespace !== undefined) {
      if (namespace === TRUSTED) throw new ConfigError(`${where}: "${TRUSTED}" is reserved; omit the namespace for a trusted token`);
      if (!NAMESPACE_PATTERN.test(namespace)) throw new ConfigError(`${where} has namespace "${namespace}": use ${NAMESPACE_PATTERN.source}, e.g. pr-51`);
    }
    const digest = digestOf(token);
    const key = digest.toString('hex');
    if (seen.has(key)) throw new ConfigError(`${where} repeats an earlier token`);
    seen.add(key);
    entries.push({ digest, access, namespace: namespace ?? TRUSTED, index });
  });
  return new TokenTable(entries);
}

function digestOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Result of authenticating an `Authorization` header. */
export type AuthResult = { ok: true; principal: Principal } | { ok: false; reason: 'missing' | 'malformed' | 'unknown' };

/** The configured tokens, stored only as sha256 digests. */
export class TokenTable {
  constructor(private readonly entries: readonly TokenEntry[]) {}

  get size(): number {
    return this.entries.length;
  }

  /**
   * Matches `Authorization: Bearer <token>` against every configured token in constant time: both sides are
   * sha256 digests (equal length) compared with `crypto.timingSafeEqual`, and every entry is compared even after
   * a match, so timing reveals neither the token nor which entry matched.
   */
  authenticate(header: string | undefined): AuthResult {
    const token = bearerToken(header);
    if (!token.ok) return token;
    return this.match(token.token);
  }

  /** Matches a bare token value (see authenticate). */
  match(token: string): AuthResult {
    const presented = digestOf(token);
    let found: TokenEntry | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(e.digest, presented) && !found) found = e;
    }
    if (!found) return { ok: false, reason: 'unknown' };
    return { ok: true, principal: { access: found.access, namespace: found.namespace, index: found.index } };
  }
}

/** The token of an `Authorization: Bearer <token>` header, or why there is none. */
export function bearerToken(header: string | undefined): { ok: true; token: string } | { ok: false; reason: 'missing' | 'malformed' } {
  if (!header) return { ok: false, reason: 'missing' };
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (!m) return { ok: false, reason: 'malformed' };
  return { ok: true, token: m[1]! };
}

/**
 * Namespaces a principal reads, in order (invariant 6): an untrusted namespace reads itself then `trusted`;
 * `trusted` reads only itself, so nothing a pull request uploads is ever restored by a trusted build.
 */
export function readNamespaces(p: Principal): string[] {
  return p.namespace === TRUSTED ? [TRUSTED] : [p.namespace, TRUSTED];
}

/** The only namespace a principal may write, or undefined for read-only tokens. */
export function writeNamespace(p: Principal): string | undefined {
  return p.access === 'read-write' ? p.namespace : undefined;
}
