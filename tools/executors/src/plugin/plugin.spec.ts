import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { detectImageProject, detectNodeApp, detectRustLambda } from './detect';
import { createNodesV2, inferFromFile, pluginLocation } from './index';
import { normalizeOptions, rustToolchainInput, type PluginLocation } from './targets';
import { rustToolchainRuntimeInput } from '@buildonce/rust/src/rust-toolchain.mjs';

const installed: PluginLocation = { executorPrefix: '@buildonce/nx' };
const source: PluginLocation = { executorPrefix: './tools/executors', source: { project: 'executors', root: 'tools/executors', bundleTarget: 'bundle' } };
const ws = { hasProductionInput: true };
const CARGO_META = `[package]\nname = "scorer"\nversion = "0.1.0"\n\n[package.metadata.lambda]\narchitecture = "arm64"\nfunction-name = "{project}-fn-{env}"\n`;
const CARGO_BIN = `[package]\nname = "hello"\nversion = "0.1.0"\n\n[[bin]]\nname = "bootstrap"\npath = "src/main.rs"\n`;

describe('detect', () => {
  it('finds Lambdas by [package.metadata.lambda] or a bootstrap bin, with defaults', () => {
    expect(detectRustLambda('a/Cargo.toml', CARGO_META)).toEqual({
      kind: 'rust-lambda',
      name: 'scorer',
      architecture: 'arm64',
      runtime: 'provided.al2023',
      binary: 'bootstrap',
      functionName: '{project}-fn-{env}',
      alias: '{env}',
    });
    expect(detectRustLambda('b/Cargo.toml', CARGO_BIN)).toMatchObject({ name: 'hello', architecture: 'x86_64' });
    expect(detectRustLambda('c/Cargo.toml', '[package]\nname = "lib"\nversion = "0.1.0"\n')).toBeNull();
    expect(detectRustLambda('d/Cargo.toml', '[workspace]\nmembers = ["bootstrap"]\n')).toBeNull();
  });

  it('refuses bad Lambda declarations with one line naming the file', () => {
    expect(() => detectRustLambda('a/Cargo.toml', CARGO_META.replace('arm64', 'mips'))).toThrow(
      /^a\/Cargo.toml: \[package.metadata.lambda\] architecture must be "x86_64" or "arm64", got "mips"$/,
    );
    expect(() => detectRustLambda('a/Cargo.toml', CARGO_META + 'memory = 128\n')).toThrow(/unknown key "memory"/);
    expect(() => detectRustLambda('a/Cargo.toml', '[package.metadata.lambda\n')).toThrow(/^a\/Cargo.toml: invalid TOML/);
  });

  it('finds Node apps by the buildonce field (scoped names too) and checks it', () => {
    expect(detectNodeApp('apps/api/package.json', JSON.stringify({ name: '@acme/api', buildonce: { deploy: 'ec2' } }))).toEqual({
      kind: 'node-tarball',
      name: '@acme/api',
      deploy: 'ec2',
      main: '',
      parameterName: '',
    });
    expect(detectNodeApp('p/package.json', JSON.stringify({ name: 'x' }))).toBeNull();
    expect(() => detectNodeApp('p/package.json', JSON.stringify({ name: 'x', buildonce: { deploy: 'k8s' } }))).toThrow(
      /^p\/package.json: "buildonce".deploy must be "ec2" or "local", got "k8s"$/,
    );
    expect(() => detectNodeApp('p/package.json', JSON.stringify({ name: 'x', buildonce: { deploy: 'ec2', port: 1 } }))).toThrow(/unknown key "port"/);
  });
});

describe('detect images', () => {
  const pj = (executor: string, target = 'build', name: string | null = 'scorer-image') =>
    JSON.stringify({ ...(name ? { name } : {}), targets: { [target]: { executor, options: { platform: 'linux/arm64' } } } });
  it('finds project.json targets that run an oci-image executor, and nothing else', () => {
    expect(detectImageProject('apps/img/project.json', pj('@buildonce/nx:oci-image'))).toEqual({
      kind: 'oci-image',
      name: 'scorer-image',
      imageTargets: [{ target: 'build', executor: '@buildonce/nx:oci-image' }],
    });
    expect(detectImageProject('apps/img/project.json', pj('@nx/js:tsc'))).toBeNull();
    expect(detectImageProject('apps/img/project.json', pj('@buildonce/nx:oci-image', 'build', null))).not.toHaveProperty('name');
    expect(() => detectImageProject('apps/img/project.json', '{ "targets": { "build": { "executor": "@buildonce/nx:oci-image" } ')).toThrow(
      /^apps\/img\/project.json: invalid JSON/,
    );
  });

  it('infers the image build (inputs: the packed outputs of its dependencies) and the release targets around its own options', () => {
    const r = inferFromFile('apps/img/project.json', pj('@buildonce/nx:oci-image'), {}, installed, ws);
    const t = r.projects!['apps/img'].targets!;
    expect(Object.keys(t)).toEqual(['build', 'publish', 'promote', 'rollback', 'releases', 'resolve', 'retention']);
    // no options: the image's own options (base, platform, files) stay in its project.json and win the merge
    expect(t.build).toMatchObject({
      executor: '@buildonce/nx:oci-image',
      cache: true,
      options: {},
      dependsOn: ['^build'],
      outputs: ['{workspaceRoot}/dist/{projectRoot}'],
    });
    expect(t.build.inputs).toEqual(
      expect.arrayContaining([{ dependentTasksOutputFiles: '**/*', transitive: false }, { externalDependencies: ['@buildonce/nx', 'tar', 'yauzl'] }]),
    );
    expect(t.promote).toMatchObject({ dependsOn: ['publish'], options: { target: 'lambda', functionName: '{project}-{env}', alias: '{env}' } });
    // renamed build target: the project.json target must carry that name
    expect(inferFromFile('apps/img/project.json', pj('@buildonce/nx:oci-image'), { buildTargetName: 'image' }, installed, ws)).toEqual({});
    expect(
      Object.keys(
        inferFromFile('apps/img/project.json', pj('@buildonce/nx:oci-image', 'image'), { buildTargetName: 'image' }, installed, ws).projects!['apps/img']
          .targets!,
      ),
    ).toContain('image');
    // another package's oci-image executor is not ours
    expect(inferFromFile('apps/img/project.json', pj('@other/images:oci-image'), {}, installed, ws)).toEqual({});
    expect(inferFromFile('apps/img/project.json', pj('./tools/executors:oci-image'), {}, source, ws).projects!['apps/img'].targets!.build.dependsOn).toEqual([
      '^build',
      { projects: ['executors'], target: 'bundle' },
    ]);
  });
});

describe('options', () => {
  it('renames and turns targets off; refuses unknown options and bad names', () => {
    const n = normalizeOptions({ buildTargetName: 'artifact', retentionTargetName: false });
    expect(n).toMatchObject({ build: 'artifact', publish: 'publish', retention: null });
    expect(() => normalizeOptions({ buildTarget: 'x' } as never)).toThrow(/option "buildTarget" is unknown/);
    expect(() => normalizeOptions({ publishTargetName: 'a b' })).toThrow(/"publishTargetName" must be a target name or false/);
  });
});

describe('inferred targets', () => {
  it('gives a Lambda crate build/publish/promote/rollback/releases/resolve/retention with versioned inputs', () => {
    const r = inferFromFile('apps/scorer/Cargo.toml', CARGO_META, {}, installed, ws);
    const p = r.projects!['apps/scorer'];
    expect(p.name).toBe('scorer');
    expect(Object.keys(p.targets!)).toEqual(['build', 'publish', 'promote', 'rollback', 'releases', 'resolve', 'retention']);
    const build = p.targets!.build;
    expect(build.executor).toBe('@buildonce/nx:cargo-lambda-zip');
    expect(build.options).toEqual({ architecture: 'arm64', runtime: 'provided.al2023', binary: 'bootstrap' });
    expect(build.inputs).toEqual(
      expect.arrayContaining([
        '{workspaceRoot}/apps/scorer/**/*',
        '!{workspaceRoot}/apps/scorer/**/*.md',
        '!{workspaceRoot}/apps/scorer/target/**/*',
        '{workspaceRoot}/rust-toolchain.toml',
        '{workspaceRoot}/.cargo/config.toml',
        { externalDependencies: ['@buildonce/nx', 'yazl'] },
        { runtime: 'cd "apps/scorer" && rustc -vV && cargo -V' },
      ]),
    );
    // Rust reads no TypeScript configuration: no named inputs (their sharedGlobals), no {projectRoot} file set
    // (Nx adds the root tsconfig to tasks that have one)
    for (const input of build.inputs!) {
      expect(typeof input === 'string' && /^(\^|!)?(production|default|sharedGlobals)$|\{projectRoot\}|tsconfig/.test(input), String(input)).toBe(false);
    }
    expect(build.dependsOn).toBeUndefined();
    expect(p.targets!.promote).toMatchObject({
      executor: '@buildonce/nx:promote',
      dependsOn: ['publish'],
      options: { target: 'lambda', functionName: '{project}-fn-{env}', alias: '{env}' },
    });
    expect(p.targets!.publish.dependsOn).toEqual(['build']);
  });

  it('gives an opted-in Node app the package-tarball build; renamed/off targets follow the options', () => {
    const text = JSON.stringify({ name: '@acme/api', buildonce: { deploy: 'local', main: 'src/server.ts' } });
    const r = inferFromFile('apps/api/package.json', text, { buildTargetName: 'artifact', publishTargetName: false, retentionTargetName: false }, installed, {
      hasProductionInput: false,
    });
    const t = r.projects!['apps/api'].targets!;
    expect(Object.keys(t)).toEqual(['artifact', 'promote', 'rollback', 'releases', 'resolve']);
    expect(t.artifact).toMatchObject({ executor: '@buildonce/nx:package-tarball', options: { main: 'apps/api/src/server.ts' } });
    expect(t.artifact.inputs).toEqual(expect.arrayContaining(['default', '^default', { externalDependencies: ['@buildonce/nx', 'esbuild', 'tar'] }]));
    expect(t.promote).toMatchObject({ dependsOn: ['artifact'], options: { target: 'local' } });
    // libraries with their own build are built first; compiler output and build info never change the version
    expect(t.artifact.dependsOn).toEqual(['^build']);
    expect(t.artifact.inputs).toEqual(expect.arrayContaining(['!{projectRoot}/**/*.tsbuildinfo', '!{projectRoot}/out-tsc/**/*', '!{projectRoot}/dist/**/*']));
  });

  it('from source (this repository) references executors by path and depends on the plugin bundle once per target', () => {
    const t = inferFromFile('apps/api/package.json', JSON.stringify({ name: 'api', buildonce: { deploy: 'ec2' } }), {}, source, ws).projects!['apps/api']
      .targets!;
    expect(t.build.executor).toBe('./tools/executors:package-tarball');
    expect(t.build.dependsOn).toEqual(['^build', { projects: ['executors'], target: 'bundle' }]);
    expect(t.build.inputs).toEqual(
      expect.arrayContaining([
        { dependentTasksOutputFiles: '**/*.js', transitive: false },
        '{workspaceRoot}/tools/executors/package.json',
        { externalDependencies: ['esbuild', 'tar'] },
      ]),
    );
    expect(t.promote.dependsOn).toEqual(['publish', { projects: ['executors'], target: 'bundle' }]);
  });
});

describe('createNodesV2', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'buildonce-plugin-'));
    process.env.NX_WORKSPACE_DATA_DIRECTORY = join(dir, '.nx', 'workspace-data');
  });
  afterEach(() => {
    delete process.env.NX_WORKSPACE_DATA_DIRECTORY;
    rmSync(dir, { recursive: true, force: true });
  });
  const write = (rel: string, text: string) => {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text);
  };
  const ctx = () => ({ workspaceRoot: dir, nxJsonConfiguration: { namedInputs: { production: ['default'] } } });

  it('returns projects for declared deployables only, and the same from its cache', async () => {
    write('apps/scorer/Cargo.toml', CARGO_META);
    write('libs/util/Cargo.toml', '[package]\nname = "util"\nversion = "0.1.0"\n');
    write('apps/api/package.json', JSON.stringify({ name: '@acme/api', buildonce: { deploy: 'ec2' } }));
    write('libs/lib/package.json', JSON.stringify({ name: '@acme/lib' }));
    const files = ['apps/scorer/Cargo.toml', 'libs/util/Cargo.toml', 'apps/api/package.json', 'libs/lib/package.json'];
    const [, fn] = createNodesV2;
    const first = await fn(files, {}, ctx());
    expect(first.map(([f]) => f)).toEqual(['apps/scorer/Cargo.toml', 'apps/api/package.json']);
    expect(first[1][1].projects!['apps/api'].name).toBe('@acme/api');
    const second = await fn(files, {}, ctx());
    expect(second).toEqual(first);
  });

  it('reports every bad declaration (file and fix) and still returns the good ones', async () => {
    write('apps/a/package.json', JSON.stringify({ name: 'a', buildonce: { deploy: 'k8s' } }));
    write('apps/b/package.json', JSON.stringify({ name: 'b', buildonce: { deploy: 'ec2' } }));
    const [, fn] = createNodesV2;
    const err = await Promise.resolve(fn(['apps/a/package.json', 'apps/b/package.json'], {}, ctx())).then(
      () => undefined,
      (e: unknown) => e as { errors: Array<[string, Error]>; partialResults: unknown[] },
    );
    expect(err?.errors.map(([f, e]: [string, Error]) => [f, e.message])).toEqual([
      ['apps/a/package.json', 'apps/a/package.json: "buildonce".deploy must be "ec2" or "local", got "k8s"'],
    ]);
    expect(err?.partialResults).toHaveLength(1);
  });

  it('knows installed from source by where the package lives', () => {
    expect(pluginLocation('/w', '/w/node_modules/@buildonce/nx')).toEqual(installed);
    expect(pluginLocation('/w', '/elsewhere/nx')).toEqual(installed);
    expect(pluginLocation('/w', '/w/tools/executors')).toEqual({
      executorPrefix: './tools/executors',
      source: { project: '@buildonce/nx', root: 'tools/executors', bundleTarget: 'bundle' },
    });
  });

  it('hashes the Rust toolchain with the same command line libs/rust builds (the identity command mirror)', () => {
    const d = detectRustLambda('apps/my app/Cargo.toml', CARGO_META)!;
    for (const script of ['tools/scripts/rust-toolchain.mjs', 'node_modules/@buildonce/nx/dist/rust-toolchain.js']) {
      expect(rustToolchainInput('apps/my app', d, script)).toEqual(
        rustToolchainRuntimeInput({ cargoDir: 'apps/my app', architecture: d.architecture, runtime: d.runtime, script }),
      );
    }
  });
});
