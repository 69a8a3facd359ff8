#!/usr/bin/env node
// Runs `cargo <sub> --target <triple> <args>` in the current directory (a crate) with the toolchain that
// builds the Rust Lambda (libs/rust/src/rust-toolchain.mjs: same rule, same identity as the build target),
// the cross linker it found, and, when BUILDONCE_CARGO_OFFLINE_REGISTRY names a directory registry (e.g.
// Debian's /usr/share/cargo/registry), the flags that build from it offline.
//
//   node cargo.mjs test [--architecture x86_64|arm64] [more cargo args]
//
// Binaries of a foreign architecture (arm64 on an x86_64 host) run under qemu-user through binfmt_misc, so
// tests that spawn the built `bootstrap` work too (a CARGO_TARGET_<T>_RUNNER would only cover the test binary).
// When qemu-aarch64 is installed but not registered and we are root, the registration of
// /usr/lib/binfmt.d/qemu-<arch>.conf is done here (as tools/scripts/setup.sh does); when that is impossible
// the run prints why and skips (exit 0). Argument arrays only, no shell.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { RUST_TARGETS, resolveRustToolchain } from '../../libs/rust/src/rust-toolchain.mjs';

const argv = process.argv.slice(2);
const sub = argv.shift();
let architecture = process.arch === 'arm64' ? 'arm64' : 'x86_64';
const rest = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--architecture') architecture = argv[++i];
  else if (argv[i].startsWith('--architecture=')) architecture = argv[i].slice('--architecture='.length);
  else rest.push(argv[i]);
}
if (!sub || !RUST_TARGETS[architecture]) {
  console.error('usage: node cargo.mjs <cargo subcommand> [--architecture x86_64|arm64] [cargo args]');
  process.exit(2);
}

const tc = resolveRustToolchain({ cargoDir: process.cwd(), architecture, runtime: 'provided.al2023', cargoLambda: 'never' });
if (tc.problems.length) {
  console.error(`[cargo ${sub} ${architecture}] ${tc.problems[0]}`);
  process.exit(1);
}
console.log(`[cargo ${sub} ${architecture}] toolchain: ${tc.summary} (${tc.via})`);

const QEMU_ARCH = { 'aarch64-unknown-linux-gnu': 'aarch64', 'x86_64-unknown-linux-gnu': 'x86_64' };
const BINFMT = '/proc/sys/fs/binfmt_misc';

/** Makes sure the kernel runs `arch` ELF binaries through qemu-user. @returns undefined when it does, else why not */
function ensureBinfmt(arch) {
  const entry = `${BINFMT}/qemu-${arch}`;
  const enabled = () => existsSync(entry) && readFileSync(entry, 'utf8').startsWith('enabled');
  if (enabled()) return undefined;
  const conf = `/usr/lib/binfmt.d/qemu-${arch}.conf`;
  if (!existsSync(conf)) return `qemu-user-binfmt is not installed (apt-get install qemu-user qemu-user-binfmt, or run tools/scripts/setup.sh)`;
  if (process.getuid?.() !== 0) return `binfmt_misc has no qemu-${arch} entry and only root can register it (sudo bash tools/scripts/setup.sh)`;
  if (!existsSync(`${BINFMT}/register`)) spawnSync('mount', ['-t', 'binfmt_misc', 'binfmt_misc', BINFMT], { stdio: 'ignore' });
  try {
    if (!existsSync(entry)) writeFileSync(`${BINFMT}/register`, readFileSync(conf, 'utf8').trim());
    else writeFileSync(entry, '1');
  } catch (e) {
    return `registering ${conf} in ${BINFMT} failed (${e.message})`;
  }
  return enabled() ? undefined : `binfmt_misc did not enable qemu-${arch}`;
}

if (sub === 'test' && tc.host && tc.host !== tc.triple) {
  const why = ensureBinfmt(QEMU_ARCH[tc.triple]);
  if (why) {
    console.log(`[cargo test ${architecture}] SKIPPED: cannot run ${tc.triple} binaries on this ${tc.host} host: ${why}`);
    process.exit(0);
  }
}

const registry = process.env.BUILDONCE_CARGO_OFFLINE_REGISTRY;
const offline = registry
  ? ['--offline', '--config', 'source.crates-io.replace-with="buildonce-offline"', '--config', `source.buildonce-offline.directory=${JSON.stringify(registry)}`]
  : [];
const args = [...tc.cargo.args, sub, '--target', tc.triple, ...tc.cargoConfigArgs, ...offline, ...rest];
// stdout is re-emitted whole lines at a time: libtest writes `test result: `, `ok` and `. N passed…` separately,
// and under emulation those writes reach Nx's output prefixer as separate chunks (split lines that the
// summary in .ci/run could not count).
const child = spawn(tc.cargo.file, args, { stdio: ['inherit', 'pipe', 'inherit'], env: { ...process.env, ...tc.env } });
createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => process.stdout.write(line + '\n'));
child.on('error', (e) => {
  console.error(`[cargo ${sub} ${architecture}] cannot run ${tc.cargo.file}: ${e.message}`);
  process.exit(1);
});
child.on('close', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
