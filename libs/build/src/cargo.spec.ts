import { describe, expect, it } from 'vitest';
import { cargoBuildArgs, cargoLambdaBuildArgs, hostArchitecture, offlineRegistryArgs } from './cargo';

describe('cargo argument lists', () => {
  it('builds the host binary from crates.io by default', () => {
    expect(cargoBuildArgs({ cargoDir: '/w/apps/x', binary: 'bootstrap' })).toEqual([
      'build', '--release', '--locked', '--manifest-path', '/w/apps/x/Cargo.toml', '--bin', 'bootstrap',
    ]);
  });
  it('adds the offline registry only when asked', () => {
    const args = cargoBuildArgs({ cargoDir: '/w', binary: 'bootstrap', offlineRegistry: '/usr/share/cargo/registry' });
    expect(args).toContain('--offline');
    expect(args).toContain('source.buildonce-offline.directory="/usr/share/cargo/registry"');
    expect(offlineRegistryArgs(undefined)).toEqual([]);
  });
  it('uses cargo-lambda zip output and --arm64 for arm64', () => {
    const arm = cargoLambdaBuildArgs({ cargoDir: '/w', binary: 'bootstrap', architecture: 'arm64' });
    expect(arm.slice(0, 6)).toEqual(['lambda', 'build', '--release', '--locked', '--output-format', 'zip']);
    expect(arm).toContain('--arm64');
    expect(cargoLambdaBuildArgs({ cargoDir: '/w', binary: 'bootstrap', architecture: 'x86_64' })).not.toContain('--arm64');
  });
  it('maps node arch names to Lambda architectures', () => {
    expect(hostArchitecture('x64')).toBe('x86_64');
    expect(hostArchitecture('arm64')).toBe('arm64');
    expect(hostArchitecture('ia32')).toBeUndefined();
  });
});
