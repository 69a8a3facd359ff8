import { generateFiles, joinPathFragments, logger, type GeneratorCallback, type Tree } from '@nx/devkit';
import { run } from '@buildonce/process';
import { offlineRegistryArgs } from '@buildonce/rust';
import { join } from 'node:path';
import { checkProjectDirectory, GeneratorInputError } from '../../lib/generator-input';
import type { RustLambdaGeneratorSchema } from './schema';

/**
 * Resolves the generated crate's Cargo.lock with `cargo generate-lockfile` against the user's registry:
 * crates.io, or the directory registry named by BUILDONCE_CARGO_OFFLINE_REGISTRY (e.g. Debian's
 * /usr/share/cargo/registry). Generated rather than templated because no one lockfile fits both: a
 * directory registry records its own checksums for some crates (Debian's ureq dependencies), and
 * cargo refuses a lockfile whose checksums differ from the source's.
 * @param crateDir absolute directory holding the generated Cargo.toml
 * @returns `{ ok: false, reason }` (one line) when cargo is missing or fails; the caller tells the user
 *   to run `cargo generate-lockfile` themselves
 */
export async function generateCargoLock(crateDir: string, env: NodeJS.ProcessEnv = process.env): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    await run('cargo', ['generate-lockfile', '--manifest-path', join(crateDir, 'Cargo.toml'), ...offlineRegistryArgs(env.BUILDONCE_CARGO_OFFLINE_REGISTRY)], {
      cwd: crateDir,
      env,
    });
    return { ok: true };
  } catch (e) {
    const lines = ((e as { stderr?: string }).stderr || (e as Error).message).trim().split('\n');
    return { ok: false, reason: lines.find((l) => /error/i.test(l)) ?? lines[0] ?? 'cargo failed' };
  }
}

/**
 * `nx g @buildonce/nx:rust-lambda <name>`: writes a Lambda crate at `<directory>` (default `apps/<name>`):
 * Cargo.toml (`[[bin]] bootstrap`, `[package.metadata.lambda]`, a standalone `[workspace]`),
 * src/lib.rs (the handler), src/runtime.rs (the Runtime API client on ureq, byte-equal to
 * apps/rust-scorer's), src/main.rs (the loop), tests/runtime_api.rs, tests/fake_http/mod.rs (the request
 * reader of the tests' fake Runtime API, byte-equal to apps/rust-scorer's), README.md and .gitignore; then
 * (after the files are written, not on --dry-run) Cargo.lock through {@link generateCargoLock}. Nothing
 * else in the workspace changes: the plugin infers the project and its targets from Cargo.toml.
 * @returns the callback that writes Cargo.lock (prints the command to run when it cannot)
 * @throws GeneratorInputError when the name is not a crate name or the directory is taken
 */
export async function rustLambdaGenerator(tree: Tree, options: RustLambdaGeneratorSchema): Promise<GeneratorCallback> {
  const name = options.name;
  if (!/^[a-z][a-z0-9_-]{0,63}$/.test(name ?? '')) {
    throw new GeneratorInputError(`rust-lambda name "${name}": use a crate name (lowercase letters, digits, '-', '_', starting with a letter), e.g. scorer`);
  }
  const dir = checkProjectDirectory(tree, 'directory', options.directory || joinPathFragments('apps', name));
  const architecture = options.architecture ?? 'x86_64';
  generateFiles(tree, join(__dirname, 'files'), dir, { name, libName: name.replace(/-/g, '_'), architecture, tmpl: '', dot: '.' });
  return async () => {
    const r = await generateCargoLock(join(tree.root, dir));
    if (r.ok) logger.info(`rust-lambda: wrote ${dir}/Cargo.lock (commit it: the build runs cargo --locked)`);
    else logger.warn(`rust-lambda: could not write ${dir}/Cargo.lock (${r.reason}): run \`cargo generate-lockfile\` in ${dir} and commit Cargo.lock`);
  };
}

export default rustLambdaGenerator;
