import { createRemoteJWKSet, decodeJwt, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Principal } from './tokens';
import { TRUSTED } from './tokens';

/** GitHub Actions' OIDC issuer (`iss` of every job's ID token). */
export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';

/** How the server checks OIDC ID tokens and maps their claims to access (from BUILDONCE_CACHE_OIDC_*). */
export interface OidcConfig {
  /** expected `iss`, e.g. GITHUB_ISSUER */
  issuer: string;
  /** expected `aud` (what the workflow asks for with `core.getIDToken(aud)`) */
  audience: string;
  /** where the issuer's signing keys are published (GitHub: `<issuer>/.well-known/jwks`) */
  jwksUrl: string;
  /** `owner/name` repositories whose jobs get access (compared case-insensitively) */
  repositories: string[];
  /** refs whose `push` jobs are trusted read-write, e.g. `refs/heads/main` */
  trustedRefs: string[];
  /** allowed clock difference for `exp`/`nbf`/`iat`, seconds */
  clockSkewSeconds: number;
  /**
   * Accept an ID token until `iat` + this many seconds instead of until its `exp` (0: honour `exp`). GitHub's ID
   * tokens live 5 minutes while one `nx` process (which reads its token once) runs a whole CI job.
   */
  maxTokenAgeSeconds: number;
  /** least time between two JWKS fetches triggered by unknown `kid`s, ms (default 30000; tests use 0) */
  jwksCooldownMs?: number;
}

/** The GitHub Actions ID-token claims the rules read (https://docs.github.com/actions/reference/openid-connect-reference). */
interface GithubClaims extends JWTPayload {
  repository?: string;
  ref?: string;
  event_name?: string;
  job_workflow_ref?: string;
  run_id?: string;
}

/** Result of checking an OIDC token (no secret in it: claims are not secrets). */
export type OidcResult =
  | { ok: true; principal: Principal }
  /** signature, issuer, audience, expiry or format is wrong, or the repository is not one of ours: 401 */
  | { ok: false; reason: 'invalid'; detail: string }
  /** a genuine token whose claims grant nothing here (other repository, branch or event): 403 */
  | { ok: false; reason: 'forbidden'; detail: string }
  /** the issuer's keys could not be fetched: 503 */
  | { ok: false; reason: 'unavailable'; detail: string };

/** Whether a bearer value has the compact JWS shape (`header.payload.signature`, header a JSON object). */
export function looksLikeJwt(token: string): boolean {
  return /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/.test(token);
}

const PR_REF = /^refs\/pull\/([1-9][0-9]{0,9})\/merge$/;

/**
 * Maps verified GitHub Actions claims to access (a repository not in the list is `invalid`: not an identity of
 * this cache, 401):
 * - `event_name: push` on a ref in `trustedRefs` of an allowed repository → trusted read-write;
 * - `event_name: pull_request` with `ref: refs/pull/<n>/merge` of an allowed repository → read-write in namespace
 *   `pr-<n>`, which also reads `trusted` (never writes it);
 * - anything else (other repository, branch, event such as `pull_request_target`) → forbidden.
 */
export function accessFromClaims(claims: GithubClaims, cfg: Pick<OidcConfig, 'repositories' | 'trustedRefs'>): OidcResult {
  const repo = typeof claims.repository === 'string' ? claims.repository : '';
  const ref = typeof claims.ref === 'string' ? claims.ref : '';
  const event = typeof claims.event_name === 'string' ? claims.event_name : '';
  const who = `${repo || '?'} ${event || '?'} ${ref || '?'}`;
  if (!cfg.repositories.some((r) => r.toLowerCase() === repo.toLowerCase())) {
    return { ok: false, reason: 'invalid', detail: `repository "${repo}" is not in BUILDONCE_CACHE_OIDC_REPOSITORIES` };
  }
  const identity = `oidc:${who}`;
  if (event === 'push' && cfg.trustedRefs.includes(ref)) {
    return { ok: true, principal: { access: 'read-write', namespace: TRUSTED, identity } };
  }
  const pr = event === 'pull_request' ? PR_REF.exec(ref) : null;
  if (pr) return { ok: true, principal: { access: 'read-write', namespace: `pr-${pr[1]}`, identity } };
  return { ok: false, reason: 'forbidden', detail: `no rule grants ${who} (trusted: push to ${cfg.trustedRefs.join(' ')}; pull_request: refs/pull/<n>/merge)` };
}

/**
 * Verifies GitHub Actions OIDC ID tokens (RFC 7519 JWT, RS256 signature per RFC 7515) against the issuer's JWKS
 * with `jose` (issuer, audience, signature always; expiry per `maxTokenAgeSeconds`): keys are fetched on first use, cached (10 min), and re-fetched when a token names an unknown `kid`
 * (key rotation; at most once per 30 s). Checks `iss`, `aud`, `exp`, `nbf` (with `clockSkewSeconds`), requires
 * `exp`, and accepts only RS256, so `alg: none` and HS256-signed-with-the-public-key tokens are refused.
 */
export class OidcVerifier {
  private readonly keys: JWTVerifyGetKey;

  constructor(
    readonly config: OidcConfig,
    opts: { keys?: JWTVerifyGetKey } = {},
  ) {
    this.keys =
      opts.keys ??
      createRemoteJWKSet(new URL(config.jwksUrl), { cacheMaxAge: 10 * 60_000, cooldownDuration: config.jwksCooldownMs ?? 30_000, timeoutDuration: 5_000 });
  }

  /** Verifies `token` and maps its claims (accessFromClaims). Never throws; never echoes the token. */
  async authenticate(token: string): Promise<OidcResult> {
    let payload: GithubClaims;
    // With a max token age, exp/nbf are judged as at issuance (signature, iss and aud as always), and the age
    // against the real clock: a token is good from iat to iat + maxTokenAgeSeconds (plus the skew).
    let currentDate: Date | undefined;
    const maxAge = this.config.maxTokenAgeSeconds;
    if (maxAge > 0) {
      let iat: unknown;
      try {
        iat = decodeJwt(token).iat;
      } catch (e) {
        return { ok: false, reason: 'invalid', detail: `not a JWT: ${(e as Error).message}` };
      }
      if (typeof iat !== 'number' || !Number.isFinite(iat)) return { ok: false, reason: 'invalid', detail: 'the token has no numeric iat claim' };
      const now = Date.now() / 1000;
      const skew = this.config.clockSkewSeconds;
      if (iat - now > skew) return { ok: false, reason: 'invalid', detail: `the token is issued ${Math.round(iat - now)} s in the future` };
      if (now - iat > maxAge + skew)
        return {
          ok: false,
          reason: 'invalid',
          detail: `the token was issued ${Math.round(now - iat)} s ago, more than BUILDONCE_CACHE_OIDC_MAX_TOKEN_AGE_SECONDS=${maxAge}`,
        };
      currentDate = new Date(Math.min(now, iat) * 1000);
    }
    try {
      ({ payload } = await jwtVerify<GithubClaims>(token, this.keys, {
        issuer: this.config.issuer,
        audience: this.config.audience,
        algorithms: ['RS256'],
        clockTolerance: this.config.clockSkewSeconds,
        requiredClaims: ['exp', 'iat'],
        ...(currentDate ? { currentDate } : {}),
      }));
    } catch (e) {
      if (e instanceof errors.JWKSTimeout || !(e instanceof errors.JOSEError)) {
        return { ok: false, reason: 'unavailable', detail: `signing keys from ${this.config.jwksUrl}: ${(e as Error).message}` };
      }
      return { ok: false, reason: 'invalid', detail: `${e.code}: ${e.message}` };
    }
    return accessFromClaims(payload, this.config);
  }
}
