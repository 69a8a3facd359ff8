import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import { afterAll, expect, it } from 'vitest';
import { offlineRegistryArgs, run } from '@buildonce/build';
import { removeTempDirs, tempDir } from '@buildonce/testing';
import { rustLambdaGenerator } from './generator';

const registry = process.env.BUILDONCE_CARGO_OFFLINE_REGISTRY ?? '/usr/share/cargo/registry';
const dir = tempDir('buildonce-rust-lambda-');
afterAll(removeTempDirs);

it('generates a crate whose Cargo.lock is accepted as is (--locked) and whose tests pass', async () => {
  const tree = createTreeWithEmptyWorkspace();
  await rustLambdaGenerator(tree, { name: 'greeter' });
  for (const c of tree.listChanges()) {
    if (!c.path.startsWith('apps/greeter/') || !c.content) continue;
    const abs = join(dir, c.path);
    mkdirSync(dirname(abs), { recursive: true });
    writeFileSync(abs, c.content);
  }
  const crate = join(dir, 'apps/greeter');
  const r = await run('cargo', ['test', '--locked', '--manifest-path', join(crate, 'Cargo.toml'), ...offlineRegistryArgs(registry)], {
    cwd: crate,
    env: { ...process.env, CARGO_TARGET_DIR: join(dir, 'target'), CARGO_TERM_COLOR: 'never' },
  });
  const out = r.stdout + r.stderr;
  // 3 handler tests + 3 runtime-client tests (bin) + 2 Runtime API tests
  expect(out).toMatch(/test result: ok\. 3 passed/);
  expect(out).toMatch(/test result: ok\. 2 passed/);
  expect(out).not.toMatch(/warning:/);
}, 240_000);
