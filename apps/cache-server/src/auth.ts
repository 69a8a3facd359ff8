import { looksLikeJwt, type OidcVerifier } from './oidc';
import { bearerToken, type Principal, type TokenTable } from './tokens';

/** Who a request is, or the HTTP answer that refuses it (messages are safe to send; `reason` goes to the log). */
export type AuthOutcome = { ok: true; principal: Principal } | { ok: false; status: 401 | 403 | 503; reason: string; message: string; detail?: string };

/**
 * Authenticates `Authorization: Bearer <token>`: a static token (BUILDONCE_CACHE_TOKENS, constant-time match)
 * first; otherwise, in OIDC mode, a JWT-shaped token is verified as a GitHub Actions ID token.
 * 401: missing/malformed header, unknown token, invalid or expired JWT. 403: a valid ID token whose claims grant
 * nothing. 503: the issuer's signing keys cannot be fetched.
 */
export class Authenticator {
  constructor(
    private readonly tokens: TokenTable,
    private readonly oidc?: OidcVerifier,
  ) {}

  async authenticate(header: string | undefined): Promise<AuthOutcome> {
    const bearer = bearerToken(header);
    if (!bearer.ok) {
      return {
        ok: false,
        status: 401,
        reason: bearer.reason,
        message: bearer.reason === 'missing' ? 'missing bearer token' : 'unknown or malformed bearer token',
      };
    }
    const r = this.tokens.match(bearer.token);
    if (r.ok) return r;
    if (this.oidc && looksLikeJwt(bearer.token)) {
      const o = await this.oidc.authenticate(bearer.token);
      if (o.ok) return o;
      if (o.reason === 'forbidden')
        return { ok: false, status: 403, reason: 'oidc-forbidden', message: 'this identity has no access to the cache', detail: o.detail };
      if (o.reason === 'unavailable')
        return { ok: false, status: 503, reason: 'oidc-unavailable', message: 'identity provider keys unavailable, retry later', detail: o.detail };
      return { ok: false, status: 401, reason: 'oidc-invalid', message: 'invalid or expired identity token', detail: o.detail };
    }
    return { ok: false, status: 401, reason: 'unknown', message: 'unknown or malformed bearer token' };
  }
}
