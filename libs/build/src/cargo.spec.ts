import { describe, expect, it } from 'vitest';
import { cargoBuildArgs, cargoLambdaBuildArgs, hostArchitecture, offlineRegistryArgs } from './cargo';

describe('cargo argument lists', () => {
  it('builds for an explicit target from crates.io by default', () => {
    expect(cargoBuildArgs({ cargoDir: '/w/apps/x', binary: 'bootstrap', target: 'aarch64-unknown-linux-gnu' })).toEqual([
      'build', '--release', '--locked', '--target', 'aarch64-unknown-linux-gnu', '--manifest-path', '/w/apps/x/Cargo.toml', '--bin', 'bootstrap',
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
