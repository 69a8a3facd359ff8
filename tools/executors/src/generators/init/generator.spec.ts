import { readNxJson, updateNxJson, type Tree } from '@nx/devkit';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, initGenerator } from './generator';

describe('init generator', () => {
  let tree: Tree;
  beforeEach(() => {
    tree = createTreeWithEmptyWorkspace();
  });

  it('registers the plugin, writes buildonce.json and ignores .buildonce/', async () => {
    tree.write('.gitignore', 'node_modules\ndist');
    await initGenerator(tree, { skipFormat: true });
    expect(readNxJson(tree)?.plugins).toContainEqual({ plugin: '@buildonce/nx', options: {} });
    const cfg = JSON.parse(tree.read('buildonce.json', 'utf8') ?? '');
    expect(cfg).toEqual(DEFAULT_CONFIG);
    expect(cfg.environments.map((e: { name: string }) => e.name)).toEqual(['dev', 'staging', 'prod']);
    expect(tree.read('.gitignore', 'utf8')).toMatch(/^node_modules\ndist\n(.*\n)*\.buildonce\/\n$/);
  });

  it('is idempotent: a second run changes nothing', async () => {
    await initGenerator(tree, { skipFormat: true });
    const snapshot = Object.fromEntries(['nx.json', 'buildonce.json', '.gitignore'].map((f) => [f, tree.read(f, 'utf8')]));
    await initGenerator(tree, { skipFormat: true });
    for (const [f, text] of Object.entries(snapshot)) expect(tree.read(f, 'utf8'), f).toBe(text);
    expect(readNxJson(tree)?.plugins?.filter((p) => (typeof p === 'string' ? p : p.plugin) === '@buildonce/nx')).toHaveLength(1);
  });

  it('keeps an existing buildonce.json, plugin entry (with options) and ignore line', async () => {
    tree.write('buildonce.json', '{ "store": "s3://b/p" }\n');
    tree.write('.gitignore', '/.buildonce\n');
    const nx = readNxJson(tree)!;
    nx.plugins = [{ plugin: '@buildonce/nx', options: { retentionTargetName: false } }];
    updateNxJson(tree, nx);
    await initGenerator(tree, { skipFormat: true });
    expect(tree.read('buildonce.json', 'utf8')).toBe('{ "store": "s3://b/p" }\n');
    expect(tree.read('.gitignore', 'utf8')).toBe('/.buildonce\n');
    expect(readNxJson(tree)?.plugins).toEqual([{ plugin: '@buildonce/nx', options: { retentionTargetName: false } }]);
  });

  it('creates .gitignore when there is none', async () => {
    if (tree.exists('.gitignore')) tree.delete('.gitignore');
    await initGenerator(tree, { skipFormat: true });
    expect(tree.read('.gitignore', 'utf8')).toContain('.buildonce/\n');
  });

  it('fails with one line when there is no nx.json', async () => {
    tree.delete('nx.json');
    await expect(initGenerator(tree, { skipFormat: true })).rejects.toThrow(/^no nx.json at the workspace root/);
  });
});
