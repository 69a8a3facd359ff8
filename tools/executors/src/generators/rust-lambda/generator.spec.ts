import type { Tree } from '@nx/devkit';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { detectRustLambda } from '../../plugin/detect';
import { rustLambdaGenerator } from './generator';

const repoRoot = join(__dirname, '../../../../..');

describe('rust-lambda generator', () => {
  let tree: Tree;
  beforeEach(() => {
    tree = createTreeWithEmptyWorkspace();
  });

  it('writes a Lambda crate the plugin detects, with tests, and returns the step that locks it', async () => {
    const lock = await rustLambdaGenerator(tree, { name: 'hello-fn' });
    expect(lock).toBeTypeOf('function');
    const files = tree
      .listChanges()
      .map((c) => c.path)
      .filter((p) => p.startsWith('apps/'))
      .sort();
    expect(files).toEqual(
      ['.gitignore', 'Cargo.toml', 'README.md', 'src/lib.rs', 'src/main.rs', 'src/runtime.rs', 'tests/fake_http/mod.rs', 'tests/runtime_api.rs'].map(
        (f) => `apps/hello-fn/${f}`,
      ),
    );
    const toml = tree.read('apps/hello-fn/Cargo.toml', 'utf8')!;
    expect(detectRustLambda('apps/hello-fn/Cargo.toml', toml)).toMatchObject({
      kind: 'rust-lambda',
      name: 'hello-fn',
      architecture: 'x86_64',
      binary: 'bootstrap',
    });
    expect(toml).toContain('name = "hello_fn"');
    expect(tree.read('apps/hello-fn/src/main.rs', 'utf8')).toContain('hello_fn::handle(&invocation.payload)');
    expect(tree.read('apps/hello-fn/.gitignore', 'utf8')).toBe('/target\n');
    // no template markers left behind
    for (const f of files) expect(tree.read(f, 'utf8'), f).not.toMatch(/<%|%>/);
  });

  it('records the architecture and honours --directory', async () => {
    await rustLambdaGenerator(tree, { name: 'edge', directory: 'services/edge-fn/', architecture: 'arm64' });
    const toml = tree.read('services/edge-fn/Cargo.toml', 'utf8')!;
    expect(detectRustLambda('services/edge-fn/Cargo.toml', toml)).toMatchObject({ name: 'edge', architecture: 'arm64' });
  });

  it("ships apps/rust-scorer's Runtime API client and its tests' fake HTTP server byte for byte: one source, and the generated crate depends on ureq like it", async () => {
    await rustLambdaGenerator(tree, { name: 'edge', architecture: 'arm64' });
    for (const file of ['src/runtime.rs', 'tests/fake_http/mod.rs']) {
      const scorer = readFileSync(join(repoRoot, 'apps/rust-scorer', file));
      expect(
        readFileSync(join(__dirname, `files/${file}__tmpl__`)).equals(scorer),
        `files/${file}__tmpl__ differs from apps/rust-scorer/${file}: copy it over`,
      ).toBe(true);
      expect(tree.read(`apps/edge/${file}`)!.equals(scorer), file).toBe(true);
    }
    const dep = (toml: string) => toml.match(/^ureq = .*$/m)?.[0];
    expect(dep(tree.read('apps/edge/Cargo.toml', 'utf8')!)).toBe(dep(readFileSync(join(repoRoot, 'apps/rust-scorer/Cargo.toml'), 'utf8')));
    expect(dep(tree.read('apps/edge/Cargo.toml', 'utf8')!)).toMatch(/default-features = false/);
  });

  it('refuses names that are not crate names and directories already in use, writing nothing', async () => {
    await expect(rustLambdaGenerator(tree, { name: 'My Fn' })).rejects.toThrow(/rust-lambda name "My Fn": use a crate name/);
    await expect(rustLambdaGenerator(tree, { name: 'x', directory: '../out' })).rejects.toThrow(
      /--directory="\.\.\/out": give a directory inside the workspace/,
    );
    tree.write('apps/taken/keep.txt', 'x');
    const before = tree.listChanges().length;
    await expect(rustLambdaGenerator(tree, { name: 'taken' })).rejects.toThrow(/--directory="apps\/taken" already exists and is not empty/);
    expect(tree.listChanges()).toHaveLength(before);
  });
});
