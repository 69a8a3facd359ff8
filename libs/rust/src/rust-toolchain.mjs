// Which Rust toolchain builds a Rust Lambda, and its identity (what goes into the version).
//
// Plain JavaScript (ESM, node built-ins + smol-toml) on purpose: besides the build executor (libs/rust/src/
// cargo.ts, bundled), it runs un-transpiled as an Nx `runtime` input at hash time
// (tools/scripts/rust-toolchain.mjs, before any build step) and from tools/scripts/cargo.mjs (the test
// targets), so all three resolve the toolchain the same way. Types: rust-toolchain.d.mts.
// Probes (`rustc -vV`, `cargo -vV`, `<linker> --version`) are short synchronous child processes with argument
// arrays (execFileSync), never shell strings; the build itself runs through run.ts.
//
// THE RULE (documented in docs/rust-lambda.md):
//   1. BUILDONCE_RUST_TOOLCHAIN, else the target's `toolchain` option, selects the toolchain:
//      - empty: the first `cargo` on PATH *as the user had it* whose sibling `rustc` has the target's
//        standard library (the first `cargo` when none has it; the build then names what is missing).
//        "As the user had it": the leading run of entries that Nx and npm put in front of a task's PATH
//        (node_modules/.bin directories, npm's node-gyp-bin, node's own directory) is skipped, so a
//        /usr/bin/rustc next to /usr/bin/node never silently replaces the rustup toolchain earlier on the
//        user's PATH, and the hash-time identity (run by Nx without that prefix) equals the build's.
//        A cargo that is not the first one on PATH runs with RUSTC=<its dir>/rustc (cargo would otherwise
//        call the first rustc on PATH);
//      - `+name` (or a bare name): the rustup toolchain `name` (`cargo +name`, `rustc +name`);
//      - an absolute directory: `<dir>/bin/cargo` with RUSTC=`<dir>/bin/rustc` (e.g. `/usr` for Debian's
//        rustc-web/cargo-web, whose /usr/lib/rustlib has the arm64 std from libstd-rust-web-dev:arm64).
//   2. RUSTC in the environment wins over the toolchain's rustc, as it does for cargo.
//   3. The identity is `cargo -vV` and `rustc -vV` of exactly that choice (same PATH, same +toolchain,
//      same cwd, so rust-toolchain.toml and rustup overrides apply), plus the target triple and the
//      linker's version (zig's and cargo-lambda's when cargo-lambda builds).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { parse as parseToml } from 'smol-toml';

/** Lambda architecture → Rust target triple (glibc, Linux). */
export const RUST_TARGETS = Object.freeze({ x86_64: 'x86_64-unknown-linux-gnu', arm64: 'aarch64-unknown-linux-gnu' });

/**
 * Highest glibc each Lambda OS-only runtime ships (Amazon Linux 2023: glibc 2.34; Amazon Linux 2: 2.26).
 * Source: AWS Lambda runtimes documentation (OS-only runtimes) and the AL2023/AL2 release notes.
 */
export const RUNTIME_GLIBC = Object.freeze({ 'provided.al2023': '2.34', 'provided.al2': '2.26' });

/** Cross linkers detected on PATH when nothing configures one (Debian's gcc-<arch>-linux-gnu packages). */
export const CROSS_LINKERS = Object.freeze({
  'aarch64-unknown-linux-gnu': 'aarch64-linux-gnu-gcc',
  'x86_64-unknown-linux-gnu': 'x86_64-linux-gnu-gcc',
});

/** Debian packages that provide a cross linker + libc for a target (named in the missing-linker error). */
const CROSS_APT = Object.freeze({
  'aarch64-unknown-linux-gnu': 'gcc-aarch64-linux-gnu libc6-dev-arm64-cross',
  'x86_64-unknown-linux-gnu': 'gcc-x86-64-linux-gnu libc6-dev-amd64-cross',
});

/** Environment variable that overrides the `toolchain` option. */
export const TOOLCHAIN_ENV = 'BUILDONCE_RUST_TOOLCHAIN';

function isNodeOrNpmEntry(entry, nodeDir) {
  const e = entry.replace(/[\\/]+$/, '');
  return (
    e === nodeDir ||
    e.endsWith(`${sep}node_modules${sep}.bin`) ||
    e.endsWith(`${sep}@npmcli${sep}run-script${sep}lib${sep}node-gyp-bin`) ||
    e.endsWith(`${sep}node-gyp-bin`)
  );
}

/**
 * PATH as the user had it before Nx/npm prefixed it: drops the leading run of node_modules/.bin directories,
 * npm's node-gyp-bin and node's own directory (`dirname(execPath)`). Entries after the first other one stay,
 * so a node directory the user placed later keeps its place.
 * @param pathValue the PATH to clean (`:`-separated on POSIX)
 * @param execPath node's executable (its directory is what Nx prepends to task PATHs)
 * @returns the cleaned PATH (the input unchanged when nothing leads it)
 */
export function userPath(pathValue = '', execPath = process.execPath) {
  const nodeDir = dirname(execPath);
  const entries = pathValue.split(delimiter);
  let i = 0;
  while (i < entries.length && (entries[i] === '' || isNodeOrNpmEntry(entries[i], nodeDir))) i++;
  return entries.slice(i).join(delimiter);
}

/**
 * First executable `name` on `pathValue`, or undefined. Absolute/relative paths with a separator are
 * returned resolved when they exist.
 */
export function which(name, pathValue = '') {
  if (name.includes('/')) return existsSync(name) ? resolve(name) : undefined;
  for (const dir of pathValue.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      const st = statSync(p);
      if (st.isFile() && (st.mode & 0o111) !== 0) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/**
 * Parses a toolchain selector.
 * @param {string | undefined} value `''`, `+name`, `name` or an absolute directory
 * @returns {{ kind: 'path' } | { kind: 'rustup', name: string } | { kind: 'dir', dir: string }}
 * @throws Error when a relative path is given (a directory must be absolute)
 */
export function parseToolchainSpec(value) {
  const v = (value ?? '').trim();
  if (!v) return { kind: 'path' };
  if (isAbsolute(v)) return { kind: 'dir', dir: v.replace(/\/+$/, '') || '/' };
  if (v.includes('/')) throw new Error(`toolchain "${v}" is neither a rustup toolchain name nor an absolute directory: use e.g. "+stable" or "/usr"`);
  return { kind: 'rustup', name: v.replace(/^\+/, '') };
}

/** `CARGO_TARGET_<TRIPLE>_LINKER` name for a triple (cargo's environment convention). */
export function linkerEnvName(triple) {
  return `CARGO_TARGET_${triple.toUpperCase().replace(/[-.]/g, '_')}_LINKER`;
}

/**
 * `target.<triple>.linker` from cargo's configuration files, searched as cargo does: `.cargo/config.toml`
 * (or legacy `.cargo/config`) in `cwd` and each parent (nearest wins), then `$CARGO_HOME/config.toml`.
 * A value containing `/` is relative to the directory holding `.cargo/`. Source: The Cargo Book,
 * "Configuration" (hierarchical structure, config-relative paths, target.<triple>.linker).
 * @returns {{ linker: string, file: string } | undefined}
 */
export function configuredLinker(triple, cwd, env = process.env) {
  const files = [];
  let dir = resolve(cwd);
  for (;;) {
    for (const n of ['config.toml', 'config']) {
      const f = join(dir, '.cargo', n);
      if (existsSync(f)) {
        files.push({ f, base: dir });
        break;
      }
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  const cargoHome = env.CARGO_HOME || join(homedir(), '.cargo');
  for (const n of ['config.toml', 'config']) {
    const f = join(cargoHome, n);
    if (existsSync(f) && !files.some((x) => x.f === f)) {
      files.push({ f, base: dirname(cargoHome) });
      break;
    }
  }
  for (const { f, base } of files) {
    let doc;
    try {
      doc = parseToml(readFileSync(f, 'utf8'));
    } catch (e) {
      throw new Error(`cargo config ${f} is not valid TOML (${e.message.split('\n')[0]}): fix it, cargo reads it too`);
    }
    const linker = doc?.target?.[triple]?.linker;
    if (typeof linker === 'string' && linker) return { linker: linker.includes('/') && !isAbsolute(linker) ? join(base, linker) : linker, file: f };
  }
  return undefined;
}

function probe(file, args, opts) {
  try {
    return execFileSync(file, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 30_000 }).trim();
  } catch {
    return undefined;
  }
}

function firstLine(s) {
  return (s ?? '').split('\n')[0].trim();
}

/** First line of a `-vV` output plus the named `key: value` lines (what identifies the build, not the machine). */
function keepLines(vV, keys) {
  return [firstLine(vV), ...keys.map((k) => (field(vV, k) ? `${k}: ${field(vV, k)}` : undefined)).filter(Boolean)].join('\n');
}

function field(vV, name) {
  const m = new RegExp(`^${name}: (.*)$`, 'm').exec(vV ?? '');
  return m ? m[1].trim() : undefined;
}

/** True when `<sysroot>/lib/rustlib/<triple>/lib` holds a libstd (the target's standard library is installed). */
function hasStd(sysroot, triple) {
  if (!sysroot) return false;
  const lib = join(sysroot, 'lib', 'rustlib', triple, 'lib');
  try {
    return readdirSync(lib).some((n) => /^libstd-.*\.(rlib|so)$/.test(n));
  } catch {
    return false;
  }
}

/**
 * Resolves the toolchain that builds a Rust Lambda and describes it.
 * @param {import('./rust-toolchain.d.mts').RustToolchainRequest} req
 * @returns {import('./rust-toolchain.d.mts').RustToolchain} never throws for a missing tool: what is missing is
 *   listed in `problems` (one line each, naming the piece and how to install it) so the hash-time identity
 *   command can still print; the build refuses when `problems` is not empty.
 * @throws Error for an invalid selector, unknown architecture or malformed cargo config
 */
export function resolveRustToolchain(req) {
  const env = req.env ?? process.env;
  const cwd = resolve(req.cargoDir);
  const triple = RUST_TARGETS[req.architecture];
  if (!triple) throw new Error(`architecture "${req.architecture}" is not a Lambda architecture: use x86_64 or arm64`);
  const selector = env[TOOLCHAIN_ENV] || req.toolchain || '';
  const spec = parseToolchainSpec(selector);
  const basePath = userPath(env.PATH ?? '', req.execPath ?? process.execPath);
  const problems = [];

  /** env overrides for every cargo/rustc process of this build */
  const runEnv = { PATH: basePath };
  let cargoFile = 'cargo';
  let rustcFile = env.RUSTC || 'rustc';
  const plus = [];
  /** PATH rule: the first cargo on the user's PATH whose sibling rustc has the target's std (else the first cargo) */
  let pathBin;
  if (spec.kind === 'path' && !env.RUSTC) {
    const candidates = [...new Set(basePath.split(delimiter).filter((d) => d && which(join(d, 'cargo')) && which(join(d, 'rustc'))))];
    pathBin = candidates.find((d) => hasStd(probe(join(d, 'rustc'), ['--print', 'sysroot'], { cwd, env: { ...env, PATH: basePath } }), triple));
    // the first cargo needs no pinning; a later one gets its own rustc (cargo would otherwise run the first rustc on PATH)
    if (!pathBin || pathBin === candidates[0]) pathBin = undefined;
  }
  if (spec.kind === 'dir' || pathBin) {
    const bin = pathBin ?? join(spec.dir, 'bin');
    runEnv.PATH = [bin, basePath].filter(Boolean).join(delimiter);
    cargoFile = join(bin, 'cargo');
    if (!env.RUSTC) {
      rustcFile = join(bin, 'rustc');
      runEnv.RUSTC = rustcFile;
      if (existsSync(join(bin, 'rustdoc'))) runEnv.RUSTDOC = join(bin, 'rustdoc');
    }
    if (!existsSync(cargoFile) && spec.kind === 'dir')
      problems.push(
        `toolchain directory ${spec.dir} has no bin/cargo: fix ${TOOLCHAIN_ENV} / the toolchain option (Debian: apt-get install rustc-web cargo-web)`,
      );
  } else if (spec.kind === 'rustup') {
    plus.push(`+${spec.name}`);
  }
  const cargoPath = which(cargoFile, runEnv.PATH);
  const rustcPath = which(rustcFile, runEnv.PATH);
  if (!cargoPath && spec.kind !== 'dir')
    problems.push(`cargo is not on PATH: install Rust (rustup, or apt-get install rustc-web cargo-web) or set ${TOOLCHAIN_ENV} to a toolchain directory`);
  const probeEnv = { ...env, ...runEnv };
  const opts = { cwd, env: probeEnv };
  const cargoVV = cargoPath ? probe(cargoPath, [...plus, '-vV'], opts) : undefined;
  const rustcArgs = env.RUSTC ? [] : plus;
  const rustcVV = rustcPath ? probe(rustcPath, [...rustcArgs, '-vV'], opts) : undefined;
  if (cargoPath && !cargoVV)
    problems.push(`${cargoPath} ${plus.join(' ')} -vV failed: is the rustup toolchain "${plus[0]?.slice(1) ?? ''}" installed (rustup toolchain list)?`);
  if (rustcPath && !rustcVV && cargoVV) problems.push(`${rustcPath} ${rustcArgs.join(' ')} -vV failed: check the toolchain`);
  if (!rustcPath && cargoPath) problems.push(`rustc is not on PATH next to ${cargoPath}: install it with the same toolchain`);
  const host = field(rustcVV, 'host');

  // Builder: cargo-lambda (zig linker, glibc-versioned target) when installed, else plain cargo.
  let builder = 'cargo';
  let cargoLambdaVersion;
  if (cargoVV && req.cargoLambda !== 'never') {
    cargoLambdaVersion = probe(cargoPath, [...plus, 'lambda', '--version'], opts);
    if (cargoLambdaVersion) builder = 'cargo-lambda';
    else if (req.cargoLambda === 'always')
      problems.push(
        'cargo-lambda is not installed (cargoLambda: always): pip3 install cargo-lambda, or brew install cargo-lambda/tap/cargo-lambda (see cargo-lambda.info)',
      );
  }
  const glibc = RUNTIME_GLIBC[req.runtime];
  const cargoTarget = builder === 'cargo-lambda' && glibc ? `${triple}.${glibc}` : triple;

  let linker;
  if (builder === 'cargo-lambda') {
    const zig = which('zig', runEnv.PATH);
    const zigVersion = zig ? probe(zig, ['version'], opts) : undefined;
    linker = { name: 'zig', source: 'cargo-lambda', path: zig, version: zigVersion ? `zig ${zigVersion}` : 'zig (as cargo-lambda finds it)' };
  } else {
    const fromEnv = env[linkerEnvName(triple)];
    const fromConfig = fromEnv ? undefined : configuredLinker(triple, cwd, env);
    let name;
    let source;
    if (fromEnv) {
      name = fromEnv;
      source = 'env';
    } else if (fromConfig) {
      name = fromConfig.linker;
      source = 'config';
    } else if (host && host !== triple) {
      name = CROSS_LINKERS[triple];
      source = 'detected';
    } else {
      name = 'cc';
      source = 'default';
    }
    const path = name ? which(name, runEnv.PATH) : undefined;
    if (!path) {
      if (source === 'detected')
        problems.push(
          `no linker for ${triple} (${req.architecture}) on this ${host ?? 'unknown'} host: install cargo-lambda (links with zig), or apt-get install ${CROSS_APT[triple]}, or set ${linkerEnvName(triple)}`,
        );
      else
        problems.push(
          `linker "${name}" (from ${source === 'env' ? linkerEnvName(triple) : source === 'config' ? fromConfig.file : 'rustc default'}) is not on PATH: install it or fix the setting`,
        );
    }
    const version = path ? firstLine(probe(path, ['--version'], opts)) : undefined;
    linker = { name, source, path, version: version || `${name} (version unknown)` };
    const sysroot = rustcPath && rustcVV ? probe(rustcPath, [...rustcArgs, '--print', 'sysroot'], opts) : undefined;
    if (rustcVV && !hasStd(sysroot, triple)) {
      problems.push(
        `${firstLine(rustcVV)} (${rustcPath}${plus.length ? ' ' + plus.join(' ') : ''}) has no standard library for ${triple}: rustup target add ${triple}, or pick a toolchain that has it with ${TOOLCHAIN_ENV} (Debian: apt-get install rustc-web cargo-web libstd-rust-web-dev:${req.architecture === 'arm64' ? 'arm64' : 'amd64'}, then ${TOOLCHAIN_ENV}=/usr)`,
      );
    }
  }

  /** args to give cargo so it uses the detected linker (config and env settings are cargo's own) */
  const cargoConfigArgs = linker.source === 'detected' && linker.path ? ['--config', `target.${triple}.linker=${JSON.stringify(linker.name)}`] : [];

  const identityLines = [
    'buildonce rust toolchain 1',
    `target: ${cargoTarget} (${req.architecture}, ${req.runtime}${glibc ? `, glibc <= ${glibc}` : ''})`,
    `builder: ${builder}${cargoLambdaVersion ? ` (${firstLine(cargoLambdaVersion)})` : ''}`,
    `cargo: ${cargoVV ? keepLines(cargoVV, ['release', 'commit-hash', 'host']) : 'missing'}`,
    `rustc: ${rustcVV ?? 'missing'}`,
    `linker: ${linker.version}`,
    ...problems.map((p) => `problem: ${p}`),
  ];
  const summary = [
    firstLine(rustcVV) || 'rustc missing',
    firstLine(cargoVV) || 'cargo missing',
    cargoTarget,
    builder === 'cargo-lambda' ? `${firstLine(cargoLambdaVersion)} + ${linker.version}` : `linker ${linker.version}`,
  ].join('; ');

  return {
    triple,
    cargoTarget,
    glibcMax: glibc,
    builder,
    spec,
    selector,
    via:
      spec.kind === 'dir'
        ? `${TOOLCHAIN_ENV}/toolchain option ${selector}`
        : spec.kind === 'rustup'
          ? `rustup toolchain ${spec.name}`
          : pathBin
            ? `first cargo on PATH with the ${triple} std`
            : 'first cargo on PATH',
    cargo: { file: cargoPath ?? cargoFile, args: plus },
    rustc: { file: rustcPath ?? rustcFile, args: rustcArgs },
    host,
    linker,
    env: runEnv,
    cargoConfigArgs,
    problems,
    identity: identityLines.join('\n'),
    summary,
  };
}

/** Workspace-relative path of the identity command (tools/scripts/rust-toolchain.mjs). */
export const RUST_TOOLCHAIN_SCRIPT = 'tools/scripts/rust-toolchain.mjs';

function shellWord(s) {
  return /^[A-Za-z0-9_./+=:@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The Nx `runtime` input that hashes a Rust Lambda build's toolchain identity; pass the build target's options
 * (Nx runs the command with the workspace root as cwd, so `cargoDir` is workspace-relative).
 * Source: Nx docs, "Inputs and Named Inputs" (runtime inputs).
 * @param {{ cargoDir: string, architecture: 'x86_64' | 'arm64', runtime?: string, toolchain?: string, cargoLambda?: 'auto' | 'always' | 'never', script?: string }} o (script: the identity command's workspace-relative path, default RUST_TOOLCHAIN_SCRIPT)
 * @returns {{ runtime: string }} e.g. `{ runtime: 'node tools/scripts/rust-toolchain.mjs --cargo-dir apps/api --architecture arm64 --runtime provided.al2023' }`
 */
export function rustToolchainRuntimeInput(o) {
  const args = [
    'node',
    o.script || RUST_TOOLCHAIN_SCRIPT,
    '--cargo-dir',
    o.cargoDir || '.',
    '--architecture',
    o.architecture,
    '--runtime',
    o.runtime || 'provided.al2023',
  ];
  if (o.toolchain) args.push('--toolchain', o.toolchain);
  if (o.cargoLambda && o.cargoLambda !== 'auto') args.push('--cargo-lambda', o.cargoLambda);
  return { runtime: args.map(shellWord).join(' ') };
}
