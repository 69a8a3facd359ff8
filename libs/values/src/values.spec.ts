import { describe, expect, it } from 'vitest';
import { ConfigError, describeFailure } from '@buildonce/errors';
import {
  InvalidEnvironmentNameError,
  InvalidProjectNameError,
  InvalidVersionError,
  environmentNameSchema,
  isPreviewEnvironment,
  parseEnvironmentName,
  parseProjectName,
  parseVersion,
  projectNameSchema,
  versionSchema,
} from './values';

/** Deterministic generator of strings over an alphabet that hits every rule's edges. */
function* strings(seed: number, n: number, alphabet: string, maxLen: number): Generator<string> {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff), s);
  for (let i = 0; i < n; i++) {
    const len = next() % (maxLen + 1);
    let out = '';
    for (let j = 0; j < len; j++) out += alphabet[next() % alphabet.length];
    yield out;
  }
}

describe('one parser per value: the parser, the guard and the zod schema agree on every input', () => {
  const cases: Array<[string, (raw: unknown) => unknown, { safeParse: (v: unknown) => { success: boolean } }, new (m: string) => Error, string, number]> = [
    ['version', (r) => parseVersion(r), versionSchema, InvalidVersionError, '0123456789a -', 70],
    ['environment', (r) => parseEnvironmentName(r), environmentNameSchema, InvalidEnvironmentNameError, 'abprz019-_A.', 70],
    ['project', (r) => parseProjectName(r), projectNameSchema, InvalidProjectNameError, 'aaaZ09-._', 140],
  ];
  for (const [name, parse, schema, ErrorClass, alphabet, maxLen] of cases) {
    it(`${name}: 3000 generated inputs`, () => {
      let accepted = 0;
      const inputs = [...strings(name.length * 7919, 3000, alphabet, maxLen)];
      // project names: also scoped shapes, so the scope rule is reached from both sides
      if (name === 'project') inputs.push(...[...strings(11, 1000, 'aab-.@/', 12)].map((s, i) => (i % 2 ? `@${s}` : s)));
      for (const raw of inputs) {
        let threw: unknown;
        try {
          expect(parse(raw)).toBe(raw);
          accepted++;
        } catch (e) {
          threw = e;
        }
        expect(schema.safeParse(raw).success, raw).toBe(threw === undefined);
        if (threw) {
          expect(threw).toBeInstanceOf(ErrorClass);
          expect(threw).toBeInstanceOf(ConfigError);
          const r = describeFailure(threw);
          expect(r.kind).toBe('expected');
          expect(r.lines).toHaveLength(1);
          if (raw !== '') expect(r.lines[0]).toContain(JSON.stringify(raw));
        }
      }
      // the generator reaches both sides of every grammar
      expect(accepted).toBeGreaterThan(10);
      expect(accepted).toBeLessThan(2990);
    });
  }

  it('names the rule and the input on each edge', () => {
    expect(() => parseVersion('12a', '--to')).toThrow('--to "12a" is not a version: a version is the decimal Nx task hash of the build (1-64 digits)');
    expect(() => parseVersion('1'.repeat(65))).toThrow(InvalidVersionError);
    expect(() => parseEnvironmentName(undefined)).toThrow('no environment given: pass --env=<name>');
    expect(() => parseEnvironmentName('Prod')).toThrow('invalid environment name "Prod": names match ^[a-z][a-z0-9-]{0,62}$');
    expect(() => parseEnvironmentName('../x')).toThrow(InvalidEnvironmentNameError);
    expect(() => parseProjectName('@acme/a--b')).toThrow(InvalidProjectNameError);
    expect(() => parseProjectName('a'.repeat(129))).toThrow(InvalidProjectNameError);
    expect(parseProjectName('a'.repeat(128))).toHaveLength(128);
    expect(parseProjectName('@acme/api')).toBe('@acme/api');
  });

  it('preview environments are pr-<n> without leading zeros, and are environment names', () => {
    for (const ok of ['pr-1', 'pr-42', 'pr-1234567890']) {
      expect(isPreviewEnvironment(ok)).toBe(true);
      expect(parseEnvironmentName(ok)).toBe(ok);
    }
    for (const no of ['pr-0', 'pr-01', 'pr-', 'pr-12345678901', 'pr-1a', 'xpr-1']) expect(isPreviewEnvironment(no)).toBe(false);
  });
});
