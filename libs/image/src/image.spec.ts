import { describe, expect, it } from 'vitest';
import { parseImageReference, ecrHost, imageUriByDigest } from './reference';
import { parseChallenge } from './registry';
import { imageTags, resolveRegistry } from './publish';
import { expandDestination } from './assemble';
import { ecrLifecyclePolicy, protectionTag } from './admin';
import { platformMismatch } from './build-target';
import type { Version } from '@buildonce/values';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseImageReference', () => {
  it('splits registry, repository, tag and digest; loopback is http', () => {
    expect(parseImageReference(`public.ecr.aws/lambda/provided:al2023@${D}`)).toEqual({
      scheme: 'https',
      registry: 'public.ecr.aws',
      repository: 'lambda/provided',
      tag: 'al2023',
      digest: D,
    });
    expect(parseImageReference('127.0.0.1:5000/rust-scorer')).toEqual({ scheme: 'http', registry: '127.0.0.1:5000', repository: 'rust-scorer' });
    expect(parseImageReference('localhost/a/b:1')).toMatchObject({ scheme: 'http', registry: 'localhost', repository: 'a/b', tag: '1' });
    expect(parseImageReference('http://reg.internal:8080/x')).toMatchObject({ scheme: 'http', registry: 'reg.internal:8080' });
    expect(parseImageReference('alpine:3')).toMatchObject({ registry: 'docker.io', repository: 'library/alpine', tag: '3' });
  });
  it('refuses bad digests, tags and repository names in one line', () => {
    expect(() => parseImageReference('r.io/x@sha256:abc')).toThrow(/digest must be sha256:<64 lowercase hex>/);
    expect(() => parseImageReference('r.io/x:-bad')).toThrow(/is not a valid tag/);
    expect(() => parseImageReference('r.io/Upper')).toThrow(/must be lowercase/);
  });
  it('recognises ECR hosts and builds URIs by digest', () => {
    expect(ecrHost('123456789012.dkr.ecr.eu-west-1.amazonaws.com')).toEqual({ account: '123456789012', region: 'eu-west-1' });
    expect(ecrHost('public.ecr.aws')).toBeUndefined();
    expect(imageUriByDigest({ registry: 'h:1', repository: 'r' }, D)).toBe(`h:1/r@${D}`);
  });
});

describe('parseChallenge', () => {
  it('parses Bearer and Basic WWW-Authenticate headers', () => {
    expect(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull' },
    });
    expect(parseChallenge('Basic realm="x"')).toEqual({ scheme: 'basic', params: { realm: 'x' } });
    expect(parseChallenge('Negotiate')).toBeUndefined();
    expect(parseChallenge(null)).toBeUndefined();
  });
});

describe('imageTags / resolveRegistry', () => {
  it('tags the version and sha-<commit>-<yyyymmdd>; previews only preview-<version>', () => {
    expect(imageTags({ version: '12' as Version, namespace: 'trusted', commit: 'abc1234', publishedAt: '2026-12-01T14:00:00.000Z' })).toEqual([
      '12',
      'sha-abc1234-20261201',
    ]);
    expect(imageTags({ version: '12' as Version, namespace: 'trusted', publishedAt: '2026-12-01T14:00:00.000Z' })).toEqual(['12']);
    expect(imageTags({ version: '12' as Version, namespace: 'trusted', commit: 'not a sha', publishedAt: '2026-12-01T14:00:00.000Z' })).toEqual(['12']);
    expect(imageTags({ version: '12' as Version, namespace: 'preview', commit: 'abc1234', publishedAt: '2026-12-01T14:00:00.000Z' })).toEqual(['preview-12']);
  });
  it('takes the option, then BUILDONCE_REGISTRY, and refuses tags or digests', () => {
    expect(resolveRegistry('h:1/a', { BUILDONCE_REGISTRY: 'other/b' }).repository).toBe('a');
    expect(resolveRegistry(undefined, { BUILDONCE_REGISTRY: 'r.io/b' }).repository).toBe('b');
    expect(() => resolveRegistry(undefined, {})).toThrow(/BUILDONCE_REGISTRY/);
    expect(() => resolveRegistry('r.io/b:latest', {})).toThrow(/without a tag or digest/);
  });
});

describe('expandDestination', () => {
  it('expands ${VAR} from the base Env and normalizes to a relative tar path', () => {
    expect(expandDestination('${LAMBDA_RUNTIME_DIR}/bootstrap', { LAMBDA_RUNTIME_DIR: '/var/runtime' })).toBe('var/runtime/bootstrap');
    expect(expandDestination('/opt//x/', {})).toBe('opt/x');
  });
  it('refuses unknown variables, relative paths and ..', () => {
    expect(() => expandDestination('${NOPE}/x', {})).toThrow(/Env does not define/);
    expect(() => expandDestination('rel/x', {})).toThrow(/absolute path/);
    expect(() => expandDestination('/a/../b', {})).toThrow(/absolute path/);
  });
});

describe('ecrLifecyclePolicy', () => {
  it('puts the keep- rule first so no lower rule can expire a protected image', () => {
    const p = ecrLifecyclePolicy({ keepLast: 30, untaggedDays: 1 }) as { rules: { rulePriority: number; selection: Record<string, unknown> }[] };
    expect(p.rules.map((r) => r.rulePriority)).toEqual([1, 2, 3]);
    expect(p.rules[0]!.selection).toMatchObject({ tagStatus: 'tagged', tagPrefixList: ['keep-'] });
    expect(p.rules[2]!.selection).toMatchObject({ tagStatus: 'any', countNumber: 30 });
    expect(protectionTag('123' as Version)).toBe('keep-123');
    expect(() => ecrLifecyclePolicy({ keepLast: 0 })).toThrow(RangeError);
  });
});

describe('platformMismatch', () => {
  /** An ELF header (64-bit) with e_machine `machine`, little- or big-endian. */
  const elf = (machine: number, le = true) => {
    const b = Buffer.alloc(64);
    b.writeUInt32BE(0x7f454c46, 0);
    b[4] = 2;
    b[5] = le ? 1 : 2;
    if (le) b.writeUInt16LE(machine, 18);
    else b.writeUInt16BE(machine, 18);
    return b;
  };
  it('refuses an executable built for another machine than the image platform, naming both', () => {
    expect(platformMismatch(elf(62), 'linux/arm64', '/var/runtime/bootstrap')).toBe(
      'image file /var/runtime/bootstrap is an ELF executable for x86_64 but the image platform is linux/arm64 (aarch64): build it for aarch64 or set platform to match',
    );
    expect(platformMismatch(elf(183), 'linux/amd64', '/b')).toMatch(/is an ELF executable for aarch64 but the image platform is linux\/amd64 \(x86_64\)/);
    expect(platformMismatch(elf(40, false), 'linux/arm64', '/b')).toMatch(/is an ELF executable for arm but/);
  });
  it('accepts matching executables and does not judge files that are not ELF', () => {
    expect(platformMismatch(elf(183), 'linux/arm64', '/b')).toBeUndefined();
    expect(platformMismatch(elf(62), 'linux/amd64', '/b')).toBeUndefined();
    expect(platformMismatch(Buffer.from('#!/bin/sh\necho hi\n'), 'linux/arm64', '/b')).toBeUndefined();
    expect(platformMismatch(Buffer.alloc(0), 'linux/arm64', '/b')).toBeUndefined();
  });
});
