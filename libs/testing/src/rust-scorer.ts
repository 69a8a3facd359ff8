import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { run } from '@buildonce/process';
import { cargoBuildArgs } from '@buildonce/rust';

/** Repository root (libs/testing/src → ../../..). */
const REPO = resolve(__dirname, '../../..');
/** The real rust-scorer crate. */
export const RUST_SCORER_DIR = join(REPO, 'apps/rust-scorer');
const DEFAULT_REGISTRY = '/usr/share/cargo/registry';

/**
 * Builds the real rust-scorer `bootstrap` for x86_64-unknown-linux-gnu with `cargo build --release --locked --target` (offline from
 * BUILDONCE_CARGO_OFFLINE_REGISTRY, default Debian's /usr/share/cargo/registry, as tools/scripts/cargo.mjs).
 * With `weightsJson` the crate is copied to a temp dir with that `weights.json` compiled in instead
 * (e.g. one that fails to parse at init: a broken build); its target dir is kept under the crate's
 * `target/` so repeated runs only relink. Takes ~15 s of CPU on a cold target dir.
 * @returns absolute path of the built binary
 * @throws CommandFailedError when cargo fails
 */
export async function buildScorerBootstrap(o: { weightsJson?: string } = {}): Promise<string> {
  const registry = process.env.BUILDONCE_CARGO_OFFLINE_REGISTRY ?? (existsSync(DEFAULT_REGISTRY) ? DEFAULT_REGISTRY : undefined);
  let cargoDir = RUST_SCORER_DIR;
  const env: Record<string, string | undefined> = { ...process.env };
  let targetDir = join(RUST_SCORER_DIR, 'target');
  if (o.weightsJson !== undefined) {
    // a stable copy per weights content under the (gitignored) target dir: files are rewritten only
    // when they differ, so a second run is a cargo no-op instead of a full LTO build
    const variants = join(RUST_SCORER_DIR, 'target', 'buildonce-test-variant');
    cargoDir = join(variants, createHash('sha256').update(o.weightsJson).digest('hex').slice(0, 16));
    const files: [string, Buffer | string][] = [
      ...readdirSync(join(RUST_SCORER_DIR, 'src')).map((f): [string, Buffer] => [join('src', f), readFileSync(join(RUST_SCORER_DIR, 'src', f))]),
      ...['Cargo.toml', 'Cargo.lock'].map((f): [string, Buffer] => [f, readFileSync(join(RUST_SCORER_DIR, f))]),
      ['weights.json', o.weightsJson],
    ];
    mkdirSync(join(cargoDir, 'src'), { recursive: true });
    for (const [rel, bytes] of files) {
      const to = join(cargoDir, rel);
      if (!existsSync(to) || !readFileSync(to).equals(Buffer.from(bytes))) writeFileSync(to, bytes);
    }
    targetDir = join(variants, 'target');
  }
  env.CARGO_TARGET_DIR = targetDir;
  // the host's own triple (the tests run the binary here); the Lambda functions in the tests are x86_64 too
  const target = 'x86_64-unknown-linux-gnu';
  await run('cargo', cargoBuildArgs({ cargoDir, binary: 'bootstrap', target, offlineRegistry: registry }), { cwd: cargoDir, env });
  return join(targetDir, target, 'release', 'bootstrap');
}
