import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors';
import { parseTokens, readNamespaces, TRUSTED, writeNamespace } from './tokens';

describe('parseTokens', () => {
  it('parses trusted and namespaced tokens with their access', () => {
    const t = parseTokens(' ci-main-0123456789:read-write , laptop-0123456789:read-only, pr51-0123456789:read-write:pr-51 ');
    expect(t.size).toBe(3);
    expect(t.authenticate('Bearer ci-main-0123456789')).toEqual({ ok: true, principal: { access: 'read-write', namespace: TRUSTED, index: 0 } });
    expect(t.authenticate('Bearer laptop-0123456789')).toEqual({ ok: true, principal: { access: 'read-only', namespace: TRUSTED, index: 1 } });
    expect(t.authenticate('bearer   pr51-0123456789')).toEqual({ ok: true, principal: { access: 'read-write', namespace: 'pr-51', index: 2 } });
  });

  it.each([
    ['', /empty/],
    [' , ', /empty/],
    ['tok', /not <token>:<access>/],
    ['tok:write', /access "write"/],
    [':read-only', /empty token/],
    ['a:read-only:b:c', /not <token>:<access>/],
    ['tok:read-only:PR-1', /namespace "PR-1"/],
    ['tok:read-only:trusted', /reserved/],
    ['a1:read-only,a1:read-write', /repeats an earlier token/],
  ])('rejects %j', (raw, msg) => {
    expect(() => parseTokens(raw)).toThrow(ConfigError);
    expect(() => parseTokens(raw)).toThrow(msg);
  });

  it('never puts the token in an error message', () => {
    try {
      parseTokens('s3cr3t-value:admin');
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).not.toContain('s3cr3t-value');
    }
  });
});

describe('TokenTable.authenticate', () => {
  const t = parseTokens('alpha-token:read-write,beta-token:read-only:pr-7');

  it('distinguishes missing, malformed and unknown credentials', () => {
    expect(t.authenticate(undefined)).toEqual({ ok: false, reason: 'missing' });
    expect(t.authenticate('')).toEqual({ ok: false, reason: 'missing' });
    expect(t.authenticate('Basic YWxwaGE6')).toEqual({ ok: false, reason: 'malformed' });
    expect(t.authenticate('Bearer')).toEqual({ ok: false, reason: 'malformed' });
    expect(t.authenticate('Bearer alpha-token extra')).toEqual({ ok: false, reason: 'malformed' });
    expect(t.authenticate('Bearer alpha-tokeN')).toEqual({ ok: false, reason: 'unknown' });
    expect(t.authenticate('Bearer alpha-token-and-more')).toEqual({ ok: false, reason: 'unknown' });
    expect(t.authenticate('Bearer alpha')).toEqual({ ok: false, reason: 'unknown' });
  });

  it('matches tokens that are prefixes of each other exactly', () => {
    const p = parseTokens('abc:read-only,abcd:read-write');
    expect(p.authenticate('Bearer abc')).toMatchObject({ ok: true, principal: { index: 0 } });
    expect(p.authenticate('Bearer abcd')).toMatchObject({ ok: true, principal: { index: 1 } });
  });
});

describe('namespaces (invariant 6)', () => {
  it('trusted reads only trusted; a PR namespace reads itself then trusted', () => {
    expect(readNamespaces({ access: 'read-write', namespace: TRUSTED, index: 0 })).toEqual([TRUSTED]);
    expect(readNamespaces({ access: 'read-only', namespace: 'pr-51', index: 0 })).toEqual(['pr-51', TRUSTED]);
  });

  it('a token writes only its own namespace, read-only tokens nothing', () => {
    expect(writeNamespace({ access: 'read-write', namespace: 'pr-51', index: 0 })).toBe('pr-51');
    expect(writeNamespace({ access: 'read-write', namespace: TRUSTED, index: 0 })).toBe(TRUSTED);
    expect(writeNamespace({ access: 'read-only', namespace: TRUSTED, index: 0 })).toBeUndefined();
  });
});
