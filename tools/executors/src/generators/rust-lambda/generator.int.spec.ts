import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { run } from '@buildonce/process';
import { removeTempDirs, repoRoot, tempDir } from '@buildonce/testing';
import { generateCargoLock, rustLambdaGenerator } from './generator';

/**
 * The generated crate, written to disk and locked the way the generator's callback does it, passes its own
 * tests under real cargo for x86_64 and, under qemu-user, arm64 (tools/scripts/cargo.mjs): among them a
 * chunked 3 KiB event, 6 MiB events (chunked and by Content-Length) and the shared Runtime API client's
 * keep-alive tests.
 */
const registry = process.env.BUILDONCE_CARGO_OFFLINE_REGISTRY ?? '/usr/share/cargo/registry';
const dir = tempDir('buildonce-rust-lambda-');
const crate = join(dir, 'apps/greeter');
afterAll(removeTempDirs);

beforeAll(async () => {
  const tree = createTreeWithEmptyWorkspace();
  await rustLambdaGenerator(tree, { name: 'greeter' });
  for (const c of tree.listChanges()) {
    if (!c.path.startsWith('apps/greeter/') || !c.content) continue;
    const abs = join(dir, c.path);
    mkdirSync(dirname(abs), { recursive: true });
    writeFileSync(abs, c.content);
  }
  expect(await generateCargoLock(crate, { ...process.env, BUILDONCE_CARGO_OFFLINE_REGISTRY: registry })).toEqual({ ok: true });
  expect(readFileSync(join(crate, 'Cargo.lock'), 'utf8')).toMatch(/name = "ureq"/);
}, 120_000);

async function cargoTest(architecture: 'x86_64' | 'arm64') {
  const r = await run('node', [join(repoRoot, 'tools/scripts/cargo.mjs'), 'test', '--locked', '--architecture', architecture], {
    cwd: crate,
    reject: false, // the assertions below show cargo's output
    env: { ...process.env, BUILDONCE_CARGO_OFFLINE_REGISTRY: registry, CARGO_TARGET_DIR: join(dir, 'target'), CARGO_TERM_COLOR: 'never' },
  });
  return r.stdout + r.stderr;
}

it.each(['x86_64', 'arm64'] as const)(
  '%s: the generated crate builds --locked and its tests pass',
  async (architecture) => {
    const out = await cargoTest(architecture);
    if (/SKIPPED: cannot run/.test(out)) {
      console.warn(out);
      return;
    }
    for (const test of [
      'greets_the_name', // handler (lib)
      'reads_chunked_and_6_mib_events_over_one_kept_alive_connection', // the shared Runtime API client (bin)
      'answers_chunked_and_6_mib_events_and_refuses_larger_ones', // the real bootstrap against a fake Runtime API
      'exits_without_the_runtime_api_variable',
    ]) {
      expect(out).toContain(`${test} ... ok`);
    }
    expect(out).not.toMatch(/warning:|FAILED/);
  },
  600_000,
);

it('a crate whose generate-lockfile fails says why in one line', async () => {
  const r = await generateCargoLock(join(dir, 'nowhere'), process.env);
  expect(r.ok).toBe(false);
  expect(r.ok === false && r.reason.split('\n')).toHaveLength(1);
});
