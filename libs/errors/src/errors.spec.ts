import { describe, expect, it } from 'vitest';
import { BuildonceError, ConfigError, describeFailure, isExpectedError } from './index';

describe('describeFailure', () => {
  it('prints one line for an expected error, with the prefix once', () => {
    const r = describeFailure(new ConfigError('buildonce.json: environments[0].name "Prod" is invalid: use lowercase'), { prefix: '[api] ' });
    expect(r).toEqual({ kind: 'expected', lines: ['[api] buildonce.json: environments[0].name "Prod" is invalid: use lowercase'] });
    expect(describeFailure(new BuildonceError('[api] already prefixed'), { prefix: '[api] ' }).lines).toEqual(['[api] already prefixed']);
  });

  it('keeps only the first line of an expected error unless verbose, which adds the stack', () => {
    const e = new BuildonceError('first line\nsecond line');
    expect(describeFailure(e).lines).toEqual(['first line']);
    const v = describeFailure(e, { verbose: true }).lines;
    expect(v[0]).toBe('first line');
    expect(v[1]).toContain('errors.spec.ts');
  });

  it('reports a TypeError as a bug with its stack', () => {
    let caught: unknown;
    try {
      (undefined as unknown as { x: () => void }).x();
    } catch (e) {
      caught = e;
    }
    const r = describeFailure(caught, { prefix: '[p] ' });
    expect(r.kind).toBe('bug');
    expect(r.lines[0]).toMatch(/^\[p\] TypeError: /);
    expect(r.lines[1]).toContain('errors.spec.ts');
    expect(r.lines.at(-1)).toContain('this is a bug');
  });

  it('reports non-Error throws as bugs', () => {
    expect(describeFailure('boom').lines[0]).toBe('non-Error thrown: boom');
    expect(isExpectedError(new Error('x'))).toBe(false);
    expect(isExpectedError(new ConfigError('x'))).toBe(true);
  });
});
