import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { writeBuildManifest, writeDeterministicZip, type Manifest, readZipEntry, type Architecture } from '@buildonce/artifact';
import { BuildonceError, ConfigError } from '@buildonce/errors';
import { checkGlibcCeiling, readElfVersionNeeds } from './elf';
import { run } from '@buildonce/process';
import { RUNTIME_GLIBC, resolveRustToolchain, type RustToolchain } from './rust-toolchain.mjs';
import type { ProjectName, Version } from '@buildonce/values';

/** Lambda architectures. */

/** Options of a Rust Lambda build. Paths are absolute. */
export interface RustLambdaBuild {
  project: ProjectName;
  /** the build's Nx task hash: the artifact version */
  version: Version;
  /** directory holding Cargo.toml */
  cargoDir: string;
  /** where bootstrap.zip and artifact.json go */
  outputDir: string;
  architecture: Architecture;
  /** Cargo binary target name; the Lambda custom runtime requires the executable to be named `bootstrap` */
  binary: string;
  /** Lambda runtime id: `provided.al2023` (glibc 2.34) or `provided.al2` (glibc 2.26) */
  runtime: string;
  /** directory of a vendored/offline crate registry (e.g. Debian's /usr/share/cargo/registry); undefined = crates.io */
  offlineRegistry?: string;
  /** `auto`: cargo-lambda when installed, else plain cargo with a cross linker */
  cargoLambda: 'auto' | 'always' | 'never';
  /** toolchain selector (see rust-toolchain.mjs): '' = PATH rule, `+name` = rustup, `/dir` = toolchain directory; BUILDONCE_RUST_TOOLCHAIN wins */
  toolchain?: string;
  log: (line: string) => void;
  env?: Record<string, string | undefined>;
}

/** The toolchain cannot build the requested target (missing cross linker, std, cargo-lambda…); the message names the piece and how to install it. */
export class RustToolchainError extends BuildonceError {
  override name = 'RustToolchainError';
}

/** ELF `e_machine` names per Lambda architecture (what the built binary must be). */
const ELF_MACHINE: Record<Architecture, string> = { x86_64: 'x86_64', arm64: 'aarch64' };

/** Host architecture in Lambda's terms, or undefined when Lambda has no such architecture. */
export function hostArchitecture(arch: string = process.arch): Architecture | undefined {
  return arch === 'x64' ? 'x86_64' : arch === 'arm64' ? 'arm64' : undefined;
}

/** `--config` flags that replace crates.io with a local directory registry (offline builds). */
export function offlineRegistryArgs(registryDir: string | undefined): string[] {
  if (!registryDir) return [];
  return [
    '--offline',
    '--config',
    'source.crates-io.replace-with="buildonce-offline"',
    '--config',
    `source.buildonce-offline.directory=${JSON.stringify(registryDir)}`,
  ];
}

/** What both builds build: the target triple, the crate's manifest and its one bin. */
function targetBinArgs(o: { cargoDir: string; binary: string; target: string }): string[] {
  return ['--target', o.target, '--manifest-path', join(o.cargoDir, 'Cargo.toml'), '--bin', o.binary];
}

/** Arguments of plain `cargo build --release --target <triple>` (after any `+toolchain`). */
export function cargoBuildArgs(o: { cargoDir: string; binary: string; target: string; configArgs?: string[]; offlineRegistry?: string }): string[] {
  return ['build', '--release', '--locked', ...targetBinArgs(o), ...(o.configArgs ?? []), ...offlineRegistryArgs(o.offlineRegistry)];
}

/**
 * Arguments of `cargo lambda build --release --output-format zip --target <triple>[.<glibc>]`: with a glibc
 * suffix (`aarch64-unknown-linux-gnu.2.34`) cargo-lambda links with zig against that glibc version.
 * Source: cargo-lambda docs, "cargo lambda build" (--target, glibc version suffix).
 */
export function cargoLambdaBuildArgs(o: { cargoDir: string; binary: string; target: string; offlineRegistry?: string }): string[] {
  return ['lambda', 'build', '--release', '--locked', '--output-format', 'zip', ...targetBinArgs(o), ...offlineRegistryArgs(o.offlineRegistry)];
}

/**
 * The Cargo.lock cargo would use for the crate at `cargoDir`: its own, or that of a Cargo workspace above
 * it (searched up to the directory holding `.git` or `nx.json`, the repository / Nx workspace root).
 * @returns the absolute path, or undefined when there is none
 */
export function findCargoLock(cargoDir: string): string | undefined {
  let dir = resolve(cargoDir);
  for (;;) {
    const lock = join(dir, 'Cargo.lock');
    if (existsSync(lock)) return lock;
    const parent = dirname(dir);
    if (parent === dir || existsSync(join(dir, '.git')) || existsSync(join(dir, 'nx.json'))) return undefined;
    dir = parent;
  }
}

/** The crate has no Cargo.lock: the build (cargo --locked) cannot pin its dependencies. */
export class MissingCargoLockError extends ConfigError {
  override name = 'MissingCargoLockError';
}

/**
 * Builds a Rust Lambda once and leaves a deterministic `bootstrap.zip` (one entry `bootstrap`,
 * mode 0755, 1980-01-01, sorted, no extra fields) plus the build manifest `artifact.json`
 * (`version` = the Nx task hash, `architecture`, `glibcMax`, `toolchain`) in `outputDir`.
 *
 * Toolchain: {@link resolveRustToolchain} (the one rule, shared with the Nx runtime input
 * tools/scripts/rust-toolchain.mjs). cargo-lambda (zig, `--target <triple>.<glibc>`) when installed and not
 * `never`; otherwise plain `cargo build --target <triple>` with the linker from `CARGO_TARGET_<TRIPLE>_LINKER`,
 * cargo config `target.<triple>.linker`, or a detected `<arch>-linux-gnu-gcc`. The binary's ELF machine and
 * glibc symbol versions (`.gnu.version_r`) are checked before anything is written.
 * @returns the manifest written
 * @throws RustToolchainError when a piece of the toolchain is missing (one line: the piece and how to install it)
 * @throws ConfigError for a runtime without a known glibc
 * @throws MissingCargoLockError when the crate has no Cargo.lock (before cargo runs)
 * @throws CommandFailedError when cargo fails
 * @throws GlibcTooNewError when the binary needs a newer glibc than the runtime (names the symbol)
 */
export async function buildRustLambdaZip(b: RustLambdaBuild): Promise<Manifest> {
  const ceiling = RUNTIME_GLIBC[b.runtime];
  if (!ceiling)
    throw new ConfigError(
      `[${b.project}] runtime "${b.runtime}" has no known glibc: use ${Object.keys(RUNTIME_GLIBC).join(' or ')} (the OS-only Lambda runtimes)`,
    );
  // cargo's own message for this ("remove the --locked flag") would be the wrong fix: the lockfile is
  // what makes every clone build the same dependencies
  if (!findCargoLock(b.cargoDir)) {
    throw new MissingCargoLockError(
      `[${b.project}] ${b.cargoDir} has no Cargo.lock: run \`cargo generate-lockfile\` in it and commit Cargo.lock (the build runs cargo --locked)`,
    );
  }
  const baseEnv = { ...process.env, ...b.env };
  let tc: RustToolchain;
  try {
    tc = resolveRustToolchain({
      cargoDir: b.cargoDir,
      architecture: b.architecture,
      runtime: b.runtime,
      toolchain: b.toolchain,
      cargoLambda: b.cargoLambda,
      env: baseEnv,
    });
  } catch (e) {
    throw new RustToolchainError(`[${b.project}] ${(e as Error).message}`);
  }
  if (tc.problems.length) throw new RustToolchainError(`[${b.project}] ${tc.problems[0]}`);
  const env = { ...baseEnv, ...tc.env };
  // a failed or refused build leaves no output behind (no stale artifact.json of an earlier build)
  await rm(b.outputDir, { recursive: true, force: true });
  b.log(`[${b.project}] toolchain: ${tc.summary} (${[tc.cargo.file, ...tc.cargo.args].join(' ')}: ${tc.via})`);
  const targetDir = env.CARGO_TARGET_DIR ? resolve(b.cargoDir, env.CARGO_TARGET_DIR) : join(b.cargoDir, 'target');
  let bytes: Buffer;
  if (tc.builder === 'cargo-lambda') {
    const args = [...tc.cargo.args, ...cargoLambdaBuildArgs({ ...b, target: tc.cargoTarget })];
    b.log(`[${b.project}] cargo ${args.join(' ')}`);
    await run(tc.cargo.file, args, { cwd: b.cargoDir, env, inherit: true });
    bytes = await readZipEntry(join(targetDir, 'lambda', b.binary, 'bootstrap.zip'), 'bootstrap');
  } else {
    const args = [...tc.cargo.args, ...cargoBuildArgs({ ...b, target: tc.triple, configArgs: tc.cargoConfigArgs })];
    b.log(`[${b.project}] cargo ${args.join(' ')}`);
    await run(tc.cargo.file, args, { cwd: b.cargoDir, env, inherit: true });
    const path = join(targetDir, tc.triple, 'release', b.binary);
    bytes = await readFile(path).catch(() => {
      throw new BuildonceError(`[${b.project}] cargo finished but ${path} is missing: is the [[bin]] named "${b.binary}"?`);
    });
  }
  const label = `[${b.project}] ${b.binary}`;
  const elf = readElfVersionNeeds(bytes, label);
  if (elf.machine !== ELF_MACHINE[b.architecture]) {
    throw new RustToolchainError(
      `${label} is an ${elf.machine} binary, not ${ELF_MACHINE[b.architecture]} (${b.architecture}): the toolchain ignored --target ${tc.cargoTarget}; check cargo's build.target settings`,
    );
  }
  const glibcMax = checkGlibcCeiling(elf, ceiling, label, b.runtime);
  await mkdir(b.outputDir, { recursive: true });
  const zipPath = join(b.outputDir, 'bootstrap.zip');
  await writeDeterministicZip([{ name: 'bootstrap', bytes }], zipPath);
  const { manifest, digest } = await writeBuildManifest(zipPath, {
    project: b.project,
    version: b.version,
    kind: 'lambda-zip',
    runtime: b.runtime,
    architecture: b.architecture,
    ...(glibcMax ? { glibcMax } : {}),
    handler: 'bootstrap',
    toolchain: tc.summary,
  });
  b.log(
    `[${b.project}] wrote ${zipPath} (${digest.size} bytes, sha256 ${digest.hex}, ${b.architecture}, needs glibc ${glibcMax ?? '(none)'} <= ${ceiling}) version ${b.version}`,
  );
  return manifest;
}
