import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildRustLambdaZip, cargoBuildArgs, cargoLambdaBuildArgs, findCargoLock, hostArchitecture, MissingCargoLockError, offlineRegistryArgs } from './cargo';
import type { ProjectName, Version } from '@buildonce/values';

describe('cargo argument lists', () => {
  it('builds for an explicit target from crates.io by default', () => {
    expect(cargoBuildArgs({ cargoDir: '/w/apps/x', binary: 'bootstrap', target: 'aarch64-unknown-linux-gnu' })).toEqual([
      'build',
      '--release',
      '--locked',
      '--target',
      'aarch64-unknown-linux-gnu',
      '--manifest-path',
      '/w/apps/x/Cargo.toml',
      '--bin',
      'bootstrap',
    ]);
  });
  it('passes a detected linker as --config and adds the offline registry only when asked', () => {
    const args = cargoBuildArgs({
      cargoDir: '/w',
      binary: 'bootstrap',
      target: 'aarch64-unknown-linux-gnu',
      configArgs: ['--config', 'target.aarch64-unknown-linux-gnu.linker="aarch64-linux-gnu-gcc"'],
      offlineRegistry: '/usr/share/cargo/registry',
    });
    expect(args).toContain('target.aarch64-unknown-linux-gnu.linker="aarch64-linux-gnu-gcc"');
    expect(args).toContain('--offline');
    expect(args).toContain('source.buildonce-offline.directory="/usr/share/cargo/registry"');
    expect(offlineRegistryArgs(undefined)).toEqual([]);
  });
  it('gives cargo-lambda the glibc-suffixed target and zip output', () => {
    const arm = cargoLambdaBuildArgs({ cargoDir: '/w', binary: 'bootstrap', target: 'aarch64-unknown-linux-gnu.2.34' });
    expect(arm.slice(0, 8)).toEqual(['lambda', 'build', '--release', '--locked', '--output-format', 'zip', '--target', 'aarch64-unknown-linux-gnu.2.34']);
    expect(arm).not.toContain('--arm64');
  });
  it('maps node arch names to Lambda architectures', () => {
    expect(hostArchitecture('x64')).toBe('x86_64');
    expect(hostArchitecture('arm64')).toBe('arm64');
    expect(hostArchitecture('ia32')).toBeUndefined();
  });
});

describe('a crate without Cargo.lock', () => {
  it('is refused before cargo runs, naming the command that fixes it; a Cargo workspace lock above counts', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cargo-lock-'));
    try {
      mkdirSync(join(root, '.git'));
      const crate = join(root, 'apps/fn');
      mkdirSync(crate, { recursive: true });
      writeFileSync(join(crate, 'Cargo.toml'), '[package]\nname = "fn"\nversion = "0.1.0"\n');
      const lines: string[] = [];
      const err = await buildRustLambdaZip({
        project: 'fn' as ProjectName,
        version: '1' as Version,
        cargoDir: crate,
        outputDir: join(root, 'dist'),
        architecture: 'x86_64',
        binary: 'bootstrap',
        runtime: 'provided.al2023',
        cargoLambda: 'never',
        log: (l) => lines.push(l),
        env: { PATH: '/nonexistent' }, // nothing could run even if the check were skipped
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MissingCargoLockError);
      expect((err as Error).message).toBe(
        `[fn] ${crate} has no Cargo.lock: run \`cargo generate-lockfile\` in it and commit Cargo.lock (the build runs cargo --locked)`,
      );
      expect(lines).toEqual([]);
      expect(findCargoLock(crate)).toBeUndefined();
      writeFileSync(join(root, 'Cargo.lock'), 'version = 3\n');
      expect(findCargoLock(crate)).toBe(join(root, 'Cargo.lock'));
      writeFileSync(join(crate, 'Cargo.lock'), 'version = 3\n');
      expect(findCargoLock(crate)).toBe(join(crate, 'Cargo.lock'));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
