/** Types of rust-toolchain.mjs (plain JS so it also runs un-transpiled as an Nx runtime input). */

export type LambdaArchitecture = 'x86_64' | 'arm64';

export declare const RUST_TARGETS: Readonly<Record<LambdaArchitecture, string>>;
export declare const RUNTIME_GLIBC: Readonly<Record<string, string>>;
export declare const CROSS_LINKERS: Readonly<Record<string, string>>;
export declare const TOOLCHAIN_ENV: 'BUILDONCE_RUST_TOOLCHAIN';

export type ToolchainSpec = { kind: 'path' } | { kind: 'rustup'; name: string } | { kind: 'dir'; dir: string };

export interface RustToolchainRequest {
  /** directory holding Cargo.toml; the probes run there (rust-toolchain.toml, rustup overrides, .cargo/config.toml) */
  cargoDir: string;
  architecture: LambdaArchitecture;
  /** Lambda runtime id: provided.al2023 (glibc 2.34) or provided.al2 (2.26) */
  runtime: string;
  /** `''` (PATH rule), `+name` / `name` (rustup), or an absolute toolchain directory; BUILDONCE_RUST_TOOLCHAIN wins */
  toolchain?: string;
  cargoLambda: 'auto' | 'always' | 'never';
  /** environment the build runs with (default process.env) */
  env?: Record<string, string | undefined>;
  /** node's executable (its directory is what Nx prepends to task PATHs); default process.execPath */
  execPath?: string;
}

export interface RustToolchain {
  /** Rust target triple, e.g. aarch64-unknown-linux-gnu */
  triple: string;
  /** what `--target` gets: the triple, with `.<glibc>` appended for cargo-lambda (zig links against that glibc) */
  cargoTarget: string;
  /** highest glibc the runtime ships, e.g. "2.34"; undefined for an unknown runtime */
  glibcMax: string | undefined;
  builder: 'cargo' | 'cargo-lambda';
  spec: ToolchainSpec;
  /** the selector as given (env or option), '' for the PATH rule */
  selector: string;
  /** why this toolchain, for the build log: e.g. `first cargo on PATH with the aarch64-unknown-linux-gnu std` */
  via: string;
  /** cargo to run: absolute path when found, and leading args (`+name`) */
  cargo: { file: string; args: string[] };
  rustc: { file: string; args: string[] };
  /** rustc's host triple */
  host: string | undefined;
  linker: { name: string; source: 'env' | 'config' | 'detected' | 'default' | 'cargo-lambda'; path: string | undefined; version: string };
  /** environment overrides (PATH, RUSTC, RUSTDOC) every cargo/rustc process of the build must get */
  env: Record<string, string>;
  /** `--config target.<triple>.linker=…` when the linker was detected (nothing when env/config set it) */
  cargoConfigArgs: string[];
  /** what is missing, one line each naming the piece and how to install it; empty when the build can run */
  problems: string[];
  /** multi-line identity hashed into the version (versions only, no machine paths) */
  identity: string;
  /** one-line form recorded in the manifest's `toolchain` */
  summary: string;
}

export declare function userPath(pathValue?: string, execPath?: string): string;
export declare function which(name: string, pathValue?: string): string | undefined;
export declare function parseToolchainSpec(value: string | undefined): ToolchainSpec;
export declare function linkerEnvName(triple: string): string;
export declare function configuredLinker(triple: string, cwd: string, env?: Record<string, string | undefined>): { linker: string; file: string } | undefined;
export declare function resolveRustToolchain(req: RustToolchainRequest): RustToolchain;
export declare const RUST_TOOLCHAIN_SCRIPT: 'tools/scripts/rust-toolchain.mjs';
/** The Nx `runtime` input hashing a Rust Lambda build's toolchain identity (same options as the build target). */
export declare function rustToolchainRuntimeInput(o: {
  cargoDir: string;
  architecture: LambdaArchitecture;
  runtime?: string;
  toolchain?: string;
  cargoLambda?: 'auto' | 'always' | 'never';
  /** workspace-relative path of the identity command (default RUST_TOOLCHAIN_SCRIPT) */
  script?: string;
}): { runtime: string };
