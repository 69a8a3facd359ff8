import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configuredLinker, linkerEnvName, parseToolchainSpec, resolveRustToolchain, rustToolchainRuntimeInput, userPath } from './rust-toolchain.mjs';

const tmp = mkdtempSync(join(tmpdir(), 'rust-toolchain-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A fake toolchain: cargo/rustc scripts printing `-vV` like the real ones, with a sysroot that may hold a std. */
function fakeToolchain(name: string, release: string, stdFor: string[] = []): string {
  const root = join(tmp, name);
  const bin = join(root, 'bin');
  mkdirSync(bin, { recursive: true });
  const script = (tool: string, body: string) => {
    writeFileSync(join(bin, tool), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, tool), 0o755);
  };
  script(
    'cargo',
    `case "$1" in -vV) printf 'cargo ${release} (${name})\\nrelease: ${release}\\ncommit-hash: ${name}\\nhost: x86_64-unknown-linux-gnu\\nos: anything\\n';; *) exit 101;; esac`,
  );
  script(
    'rustc',
    `case "$1" in -vV) printf 'rustc ${release} (${name})\\nbinary: rustc\\nhost: x86_64-unknown-linux-gnu\\nrelease: ${release}\\n';; --print) echo ${root};; esac`,
  );
  for (const t of stdFor) {
    mkdirSync(join(root, 'lib', 'rustlib', t, 'lib'), { recursive: true });
    writeFileSync(join(root, 'lib', 'rustlib', t, 'lib', 'libstd-0123.rlib'), '');
  }
  return bin;
}
const crossGcc = (() => {
  const bin = join(tmp, 'cross', 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'aarch64-linux-gnu-gcc'), '#!/bin/sh\necho "aarch64-linux-gnu-gcc (Fake) 12.2.0"\n');
  chmodSync(join(bin, 'aarch64-linux-gnu-gcc'), 0o755);
  writeFileSync(join(bin, 'cc'), '#!/bin/sh\necho "cc (Fake) 12.2.0"\n');
  chmodSync(join(bin, 'cc'), 0o755);
  return bin;
})();
const crate = join(tmp, 'crate');
mkdirSync(crate, { recursive: true });
/** What most cases resolve for: the crate as an arm64 Lambda on provided.al2023, with node outside every PATH entry. */
const armLambda = { cargoDir: crate, architecture: 'arm64', runtime: 'provided.al2023', execPath: '/nowhere/node' } as const;

describe('the PATH rule: cargo/rustc as the user had them, not the ones next to node', () => {
  it('skips the leading node_modules/.bin, node-gyp-bin and node directory that Nx/npm put in front', () => {
    const p =
      '/w/node_modules/.bin:/node_modules/.bin:/usr/bin:/usr/lib/node_modules/npm/node_modules/@npmcli/run-script/lib/node-gyp-bin:/root/.cargo/bin:/usr/local/bin:/usr/bin:/bin';
    expect(userPath(p, '/usr/bin/node')).toBe('/root/.cargo/bin:/usr/local/bin:/usr/bin:/bin');
    expect(userPath('/root/.cargo/bin:/usr/bin', '/usr/bin/node')).toBe('/root/.cargo/bin:/usr/bin');
  });

  it('resolves the rustup-like toolchain the user put first, although a Debian one sits in node’s directory', () => {
    const nodeDir = fakeToolchain('debian', '1.96.0', ['x86_64-unknown-linux-gnu']);
    const userBin = fakeToolchain('rustup', '1.95.0', ['x86_64-unknown-linux-gnu']);
    const env = { PATH: [join(tmp, 'ws/node_modules/.bin'), nodeDir, userBin, crossGcc, nodeDir].join(':') };
    const t = resolveRustToolchain({
      cargoDir: crate,
      architecture: 'x86_64',
      runtime: 'provided.al2023',
      cargoLambda: 'never',
      env,
      execPath: join(nodeDir, 'node'),
    });
    expect(t.problems).toEqual([]);
    expect(t.cargo.file).toBe(join(userBin, 'cargo'));
    expect(t.identity).toContain('rustc: rustc 1.95.0 (rustup)');
    expect(t.identity).toContain('cargo: cargo 1.95.0 (rustup)\nrelease: 1.95.0\ncommit-hash: rustup\nhost: x86_64-unknown-linux-gnu');
    expect(t.identity).not.toContain('os: anything');
    expect(t.identity).toContain('linker: cc (Fake) 12.2.0');
    expect(t.env.PATH).toBe([userBin, crossGcc, nodeDir].join(':'));
  });

  it('takes the first cargo on the user PATH whose rustc has the target std, pinning its rustc', () => {
    const rustup = fakeToolchain('rustup-x86', '1.95.0', ['x86_64-unknown-linux-gnu']);
    const debian = fakeToolchain('debian-arm', '1.96.0', ['x86_64-unknown-linux-gnu', 'aarch64-unknown-linux-gnu']);
    const env = { PATH: [join(tmp, 'ws/node_modules/.bin'), debian, rustup, crossGcc, debian].join(':') };
    const req = { cargoDir: crate, runtime: 'provided.al2023', cargoLambda: 'never' as const, env, execPath: join(debian, 'node') };
    const arm = resolveRustToolchain({ ...req, architecture: 'arm64' });
    expect(arm.problems).toEqual([]);
    expect(arm.cargo.file).toBe(join(debian, 'cargo'));
    expect(arm.env).toMatchObject({ RUSTC: join(debian, 'rustc'), PATH: [debian, rustup, crossGcc, debian].join(':') });
    expect(arm.via).toBe('first cargo on PATH with the aarch64-unknown-linux-gnu std');
    const x86 = resolveRustToolchain({ ...req, architecture: 'x86_64' });
    expect(x86.cargo.file).toBe(join(rustup, 'cargo'));
    expect(x86.env.RUSTC).toBeUndefined();
    expect(x86.via).toBe('first cargo on PATH');
  });

  it('an absolute toolchain directory (BUILDONCE_RUST_TOOLCHAIN over the option) selects its cargo and RUSTC', () => {
    const debian = fakeToolchain('debian2', '1.96.0', ['aarch64-unknown-linux-gnu']);
    const userBin = fakeToolchain('rustup2', '1.95.0', ['x86_64-unknown-linux-gnu']);
    const env = { PATH: [userBin, crossGcc].join(':'), BUILDONCE_RUST_TOOLCHAIN: join(debian, '..') };
    const t = resolveRustToolchain({ ...armLambda, toolchain: '+ignored', cargoLambda: 'auto', env });
    expect(t.problems).toEqual([]);
    expect(t.cargo).toEqual({ file: join(debian, 'cargo'), args: [] });
    expect(t.env.RUSTC).toBe(join(debian, 'rustc'));
    expect(t.builder).toBe('cargo');
    expect(t.triple).toBe('aarch64-unknown-linux-gnu');
    expect(t.linker).toMatchObject({ name: 'aarch64-linux-gnu-gcc', source: 'detected' });
    expect(t.cargoConfigArgs).toEqual(['--config', 'target.aarch64-unknown-linux-gnu.linker="aarch64-linux-gnu-gcc"']);
    expect(t.summary).toBe('rustc 1.96.0 (debian2); cargo 1.96.0 (debian2); aarch64-unknown-linux-gnu; linker aarch64-linux-gnu-gcc (Fake) 12.2.0');
  });

  it('names the missing std and the missing cross linker, with how to install them', () => {
    const userBin = fakeToolchain('rustup3', '1.95.0', ['x86_64-unknown-linux-gnu']);
    const t = resolveRustToolchain({ ...armLambda, cargoLambda: 'auto', env: { PATH: userBin } });
    expect(t.problems[0]).toMatch(
      /^no linker for aarch64-unknown-linux-gnu \(arm64\) on this x86_64-unknown-linux-gnu host: install cargo-lambda .*apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross.*CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER$/,
    );
    expect(t.problems[1]).toMatch(/has no standard library for aarch64-unknown-linux-gnu: rustup target add aarch64-unknown-linux-gnu/);
    expect(t.identity).toMatch(/^problem: no linker/m);
  });

  it('takes the linker from CARGO_TARGET_<TRIPLE>_LINKER, then from cargo config, without overriding them', () => {
    const userBin = fakeToolchain('rustup4', '1.95.0', ['aarch64-unknown-linux-gnu']);
    const dir = join(tmp, 'cfg', 'app');
    mkdirSync(join(tmp, 'cfg', '.cargo'), { recursive: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(tmp, 'cfg', '.cargo', 'config.toml'), '[target.aarch64-unknown-linux-gnu]\nlinker = "tools/ld"\n');
    expect(configuredLinker('aarch64-unknown-linux-gnu', dir, { CARGO_HOME: join(tmp, 'nohome') })).toEqual({
      linker: join(tmp, 'cfg', 'tools/ld'),
      file: join(tmp, 'cfg', '.cargo', 'config.toml'),
    });
    const base = { cargoDir: dir, architecture: 'arm64' as const, runtime: 'provided.al2', cargoLambda: 'never' as const, execPath: '/nowhere/node' };
    const fromConfig = resolveRustToolchain({ ...base, env: { PATH: [userBin, crossGcc].join(':'), CARGO_HOME: join(tmp, 'nohome') } });
    expect(fromConfig.linker).toMatchObject({ source: 'config', name: join(tmp, 'cfg', 'tools/ld') });
    expect(fromConfig.cargoConfigArgs).toEqual([]);
    expect(fromConfig.problems[0]).toMatch(/linker ".*tools\/ld" \(from .*config.toml\) is not on PATH/);
    const fromEnv = resolveRustToolchain({
      ...base,
      env: { PATH: [userBin, crossGcc].join(':'), [linkerEnvName('aarch64-unknown-linux-gnu')]: 'aarch64-linux-gnu-gcc' },
    });
    expect(fromEnv.linker).toMatchObject({ source: 'env', version: 'aarch64-linux-gnu-gcc (Fake) 12.2.0' });
    expect(fromEnv.problems).toEqual([]);
    expect(fromEnv.glibcMax).toBe('2.26');
  });

  it('with cargo-lambda installed: zig links for the runtime glibc (target suffix), and its versions are the identity', () => {
    const bin = fakeToolchain('lambda', '1.95.0', ['x86_64-unknown-linux-gnu']);
    writeFileSync(
      join(bin, 'cargo'),
      `#!/bin/sh\ncase "$1" in -vV) printf 'cargo 1.95.0 (l)\\nrelease: 1.95.0\\n';; lambda) echo 'cargo-lambda 1.8.6 (abc 2025-01-01Z)';; esac\n`,
    );
    writeFileSync(join(bin, 'zig'), '#!/bin/sh\necho 0.13.0\n');
    chmodSync(join(bin, 'zig'), 0o755);
    const t = resolveRustToolchain({ ...armLambda, cargoLambda: 'auto', env: { PATH: bin } });
    expect(t.builder).toBe('cargo-lambda');
    expect(t.cargoTarget).toBe('aarch64-unknown-linux-gnu.2.34');
    expect(t.problems).toEqual([]);
    expect(t.identity).toContain('builder: cargo-lambda (cargo-lambda 1.8.6 (abc 2025-01-01Z))');
    expect(t.identity).toContain('linker: zig 0.13.0');
    expect(t.summary).toContain('aarch64-unknown-linux-gnu.2.34; cargo-lambda 1.8.6 (abc 2025-01-01Z) + zig 0.13.0');
    const never = resolveRustToolchain({ ...armLambda, runtime: 'provided.al2', cargoLambda: 'never', env: { PATH: bin } });
    expect(never.builder).toBe('cargo');
    expect(never.identity).not.toBe(t.identity);
  });

  it('parses toolchain selectors', () => {
    expect(parseToolchainSpec('')).toEqual({ kind: 'path' });
    expect(parseToolchainSpec('+stable')).toEqual({ kind: 'rustup', name: 'stable' });
    expect(parseToolchainSpec('/usr/')).toEqual({ kind: 'dir', dir: '/usr' });
    expect(() => parseToolchainSpec('rel/dir')).toThrow(/neither a rustup toolchain name nor an absolute directory/);
  });

  it('builds the Nx runtime input that inferred Rust Lambda targets hash (the plugin mirrors it: plugin.spec.ts)', () => {
    const project = JSON.parse(readFileSync(join(__dirname, '../../../apps/rust-scorer/project.json'), 'utf8'));
    for (const architecture of ['x86_64', 'arm64'] as const) {
      expect(project.targets.test.inputs).toContainEqual({
        runtime: `node tools/scripts/rust-toolchain.mjs --cargo-dir apps/rust-scorer --architecture ${architecture} --cargo-lambda never`,
      });
    }
    expect(rustToolchainRuntimeInput({ cargoDir: 'apps/api', architecture: 'arm64', script: 'node_modules/@buildonce/nx/dist/rust-toolchain.js' })).toEqual({
      runtime: 'node node_modules/@buildonce/nx/dist/rust-toolchain.js --cargo-dir apps/api --architecture arm64 --runtime provided.al2023',
    });
    expect(rustToolchainRuntimeInput({ cargoDir: 'apps/my app', architecture: 'x86_64', toolchain: '+stable', cargoLambda: 'never' })).toEqual({
      runtime:
        "node tools/scripts/rust-toolchain.mjs --cargo-dir 'apps/my app' --architecture x86_64 --runtime provided.al2023 --toolchain +stable --cargo-lambda never",
    });
  });
});
