import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import yauzl from 'yauzl';
import {
  writeBuildManifest,
  writeDeterministicZip,
  type Manifest,
} from '@buildonce/artifact';
import { run, succeeds } from './run';

/** Lambda architectures. */
export type Architecture = 'x86_64' | 'arm64';

/** Options of a Rust Lambda build. Paths are absolute. */
export interface RustLambdaBuild {
  project: string;
  /** the build's Nx task hash: the artifact version */
  version: string;
  /** directory holding Cargo.toml */
  cargoDir: string;
  /** where bootstrap.zip and artifact.json go */
  outputDir: string;
  architecture: Architecture;
  /** Cargo binary target name; the Lambda custom runtime requires the executable to be named `bootstrap` */
  binary: string;
  /** Lambda runtime id, e.g. `provided.al2023` */
  runtime: string;
  /** directory of a vendored/offline crate registry (e.g. Debian's /usr/share/cargo/registry); undefined = crates.io */
  offlineRegistry?: string;
  /** `auto`: cargo-lambda when installed, else cargo for the host */
  cargoLambda: 'auto' | 'always' | 'never';
  log: (line: string) => void;
  env?: Record<string, string | undefined>;
}

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

/** Arguments of `cargo build --release` for the host (no cargo-lambda). */
export function cargoBuildArgs(o: { cargoDir: string; binary: string; offlineRegistry?: string }): string[] {
  return ['build', '--release', '--locked', '--manifest-path', join(o.cargoDir, 'Cargo.toml'), '--bin', o.binary, ...offlineRegistryArgs(o.offlineRegistry)];
}

/** Arguments of `cargo lambda build --release --output-format zip [--arm64]`. */
export function cargoLambdaBuildArgs(o: { cargoDir: string; binary: string; architecture: Architecture; offlineRegistry?: string }): string[] {
  return [
    'lambda',
    'build',
    '--release',
    '--locked',
    '--output-format',
    'zip',
    ...(o.architecture === 'arm64' ? ['--arm64'] : []),
    '--manifest-path',
    join(o.cargoDir, 'Cargo.toml'),
    '--bin',
    o.binary,
    ...offlineRegistryArgs(o.offlineRegistry),
  ];
}

/** Reads one entry of a zip into memory (yauzl). @throws Error when the entry is missing */
export function readZipEntry(zipPath: string, name: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    yauzl.open(zipPath, { lazyEntries: true }, (err, zf) => {
      if (err || !zf) return reject(err ?? new Error(`cannot open ${zipPath}`));
      let found = false;
      zf.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName !== name) return zf.readEntry();
        found = true;
        zf.openReadStream(entry, (e2, rs) => {
          if (e2 || !rs) return reject(e2);
          const chunks: Buffer[] = [];
          rs.on('data', (c: Buffer) => chunks.push(c));
          rs.on('end', () => {
            zf.close();
            resolve(Buffer.concat(chunks));
          });
          rs.on('error', reject);
        });
      });
      zf.on('end', () => {
        if (!found) reject(new Error(`${zipPath} has no entry "${name}"`));
      });
      zf.on('error', reject);
      zf.readEntry();
    });
  });
}

/**
 * Builds a Rust Lambda once and leaves a deterministic `bootstrap.zip` (one entry `bootstrap`,
 * mode 0755, 1980-01-01, sorted, no extra fields) plus the build manifest `artifact.json`
 * (`version` = the Nx task hash) in `outputDir`. Uses cargo-lambda when installed (its zip takes the
 * binary's mtime, so the binary is repacked); otherwise `cargo build --release` for the host.
 * @returns the manifest written
 * @throws CommandFailedError when cargo fails; Error when the architecture needs cargo-lambda and it is missing
 */
export async function buildRustLambdaZip(b: RustLambdaBuild): Promise<Manifest> {
  const useLambda = b.cargoLambda === 'always' || (b.cargoLambda === 'auto' && (await succeeds('cargo', ['lambda', '--version'], { env: b.env })));
  const host = hostArchitecture();
  if (!useLambda && b.architecture !== host) {
    throw new Error(
      `[${b.project}] architecture ${b.architecture} needs cargo-lambda (cargo install cargo-lambda; it cross-compiles with zig) or a ${b.architecture} build machine; this host is ${host ?? process.arch}`,
    );
  }
  const env = { ...process.env, ...b.env };
  let binary: Buffer | string;
  let toolchain = (await run('rustc', ['--version'], { env })).stdout.trim();
  if (useLambda) {
    const args = cargoLambdaBuildArgs(b);
    b.log(`[${b.project}] cargo ${args.join(' ')}`);
    await run('cargo', args, { cwd: b.cargoDir, env, inherit: true });
    const zip = join(b.cargoDir, 'target', 'lambda', b.binary, 'bootstrap.zip');
    binary = await readZipEntry(zip, 'bootstrap');
    toolchain += `; ${(await run('cargo', ['lambda', '--version'], { env })).stdout.trim()}`;
  } else {
    const args = cargoBuildArgs(b);
    b.log(`[${b.project}] cargo ${args.join(' ')}`);
    await run('cargo', args, { cwd: b.cargoDir, env, inherit: true });
    binary = join(b.cargoDir, 'target', 'release', b.binary);
    await stat(binary).catch(() => {
      throw new Error(`[${b.project}] cargo finished but ${binary} is missing: is the [[bin]] named "${b.binary}"?`);
    });
  }
  await rm(b.outputDir, { recursive: true, force: true });
  await mkdir(b.outputDir, { recursive: true });
  const zipPath = join(b.outputDir, 'bootstrap.zip');
  const entry = typeof binary === 'string' ? { name: 'bootstrap', path: binary } : { name: 'bootstrap', bytes: binary };
  await writeDeterministicZip([entry], zipPath);
  const { manifest, digest } = await writeBuildManifest(zipPath, {
    project: b.project,
    version: b.version,
    kind: 'lambda-zip',
    runtime: b.runtime,
    architecture: b.architecture,
    handler: 'bootstrap',
    toolchain,
  });
  b.log(`[${b.project}] wrote ${zipPath} (${digest.size} bytes, sha256 ${digest.hex}) version ${b.version}`);
  return manifest;
}

