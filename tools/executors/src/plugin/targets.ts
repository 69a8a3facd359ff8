import type { TargetConfiguration } from '@nx/devkit';
import type { Deployable } from './detect';

/** One entry of a target's `inputs` (Nx's InputDefinition | named input / file set string). */
export type InputDefinition = NonNullable<TargetConfiguration['inputs']>[number];

/**
 * Options of the plugin entry in nx.json (`{ "plugin": "@buildonce/nx", "options": { … } }`).
 * Each `<x>TargetName` renames the inferred target; `false` turns it off. Defaults: the target names
 * `build`, `publish`, `promote`, `rollback`, `releases`, `resolve`, `retention`.
 */
export interface BuildoncePluginOptions {
  buildTargetName?: string | false;
  publishTargetName?: string | false;
  promoteTargetName?: string | false;
  rollbackTargetName?: string | false;
  releasesTargetName?: string | false;
  resolveTargetName?: string | false;
  retentionTargetName?: string | false;
}

export type TargetKey = 'build' | 'publish' | 'promote' | 'rollback' | 'releases' | 'resolve' | 'retention';
export const TARGET_KEYS: readonly TargetKey[] = ['build', 'publish', 'promote', 'rollback', 'releases', 'resolve', 'retention'];
const TARGET_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9:._-]*$/;

/** Resolved target names (null = turned off). @throws Error naming the option when a name is invalid */
export function normalizeOptions(options: BuildoncePluginOptions | undefined): Record<TargetKey, string | null> {
  const o = (options ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!TARGET_KEYS.some((t) => `${t}TargetName` === k)) {
      throw new Error(`@buildonce/nx plugin option "${k}" is unknown in nx.json (known: ${TARGET_KEYS.map((t) => `${t}TargetName`).join(', ')})`);
    }
  }
  const out = {} as Record<TargetKey, string | null>;
  for (const t of TARGET_KEYS) {
    const v = o[`${t}TargetName`];
    if (v === false) out[t] = null;
    else if (v === undefined) out[t] = t;
    else if (typeof v === 'string' && TARGET_NAME_RE.test(v)) out[t] = v;
    else throw new Error(`@buildonce/nx plugin option "${t}TargetName" must be a target name or false in nx.json, got ${JSON.stringify(v)}`);
  }
  return out;
}

/** Where the executors come from: the installed package, or this workspace's plugin source (dogfooding). */
export interface PluginLocation {
  /** executor prefix: `@buildonce/nx` installed, `./tools/executors` when the plugin is source in this workspace */
  executorPrefix: string;
  /** set when the plugin is source in the workspace: its project name, root and bundle target */
  source?: { project: string; root: string; bundleTarget: string };
}

/** Facts of the workspace the targets depend on. */
export interface WorkspaceFacts {
  /** the workspace defines a `production` named input (else `default` is used, like Nx's own plugins) */
  hasProductionInput: boolean;
  /** workspace-relative script printing the identity of the Rust toolchain that builds (buildonce repo: tools/scripts/rust-toolchain.mjs) */
  rustToolchainScript?: string;
}

/**
 * Identity of the Rust toolchain that builds the crate (hashed into the build's version): the identity command
 * (libs/rust rust-toolchain.mjs, bundled as dist/rust-toolchain.js) resolves the toolchain exactly as the build
 * does. The command line mirrors libs/rust `rustToolchainRuntimeInput` (this plugin loads before any ESM
 * module could; plugin.spec.ts asserts both build the same input). Without the script (a broken install):
 * the toolchain rustup selects in the crate's directory.
 */
export function rustToolchainInput(projectRoot: string, d?: Extract<Deployable, { kind: 'rust-lambda' }>, script?: string): InputDefinition {
  const dir = projectRoot === '.' || projectRoot === '' ? '.' : projectRoot;
  const word = (w: string) => (/^[A-Za-z0-9_./+=:@-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);
  if (script && d) return { runtime: ['node', script, '--cargo-dir', dir, '--architecture', d.architecture, '--runtime', d.runtime].map(word).join(' ') };
  return { runtime: `cd ${JSON.stringify(dir)} && rustc -vV && cargo -V` };
}

/** Nx `metadata.technologies` of each kind of deployable (project and targets). */
export const TECHNOLOGIES: Record<Deployable['kind'], string[]> = {
  'rust-lambda': ['rust', 'aws-lambda'],
  'node-tarball': ['nodejs'],
  'oci-image': ['oci', 'aws-lambda'],
};

/** npm packages whose code makes the bytes of each kind of build (hashed as lockfile versions). */
const PACKAGING: Record<Deployable['kind'], string[]> = { 'rust-lambda': ['yazl'], 'node-tarball': ['esbuild', 'tar'], 'oci-image': ['tar', 'yauzl'] };

/**
 * What a cargo build reads: the crate's own files (Cargo.toml, Cargo.lock, src/, build.rs, anything
 * `include_str!` pulls in) without its tests, docs and target dir, plus the workspace-level cargo and
 * rustup configuration. Never the workspace's named inputs: their `sharedGlobals` (tsconfig.base.json,
 * CI files) cannot change a Rust binary. The root tsconfig's compilerOptions, which Nx 23 hashes into every
 * task (its "TsConfig" node), are left out by the version hasher (src/hasher/version-hasher.js).
 * The toolchain identity and the offline registry are added by {@link buildInputs}.
 */
export function rustInputs(projectRoot: string): InputDefinition[] {
  const root = projectRoot === '.' || projectRoot === '' ? '{workspaceRoot}' : `{workspaceRoot}/${projectRoot}`;
  return [
    `${root}/**/*`,
    `!${root}/**/*.md`,
    `!${root}/target/**/*`,
    `!${root}/tests/**/*`,
    '{workspaceRoot}/.cargo/config.toml',
    '{workspaceRoot}/.cargo/config',
    '{workspaceRoot}/rust-toolchain.toml',
    '{workspaceRoot}/rust-toolchain',
  ];
}

/**
 * Files of a Node app's own folder that never reach its bundle: tests, and what the TypeScript compiler
 * writes (build info, typecheck and library output), so a typecheck or a library build never changes the version.
 */
export const NODE_NOT_BUNDLED: readonly string[] = [
  '!{projectRoot}/**/*.spec.ts',
  '!{projectRoot}/**/*.test.ts',
  '!{projectRoot}/**/*.spec.js',
  '!{projectRoot}/**/*.test.js',
  '!{projectRoot}/**/*.tsbuildinfo',
  '!{projectRoot}/out-tsc/**/*',
  '!{projectRoot}/dist/**/*',
];

/**
 * The inputs of an inferred build: the project's production files and its dependencies' (never docs),
 * the packaging code (installed: @buildonce/nx's version and its packaging libraries, as lockfile
 * versions; source: the bundled plugin bytes and its package.json), and the toolchain identity. An image
 * also hashes the output files of the builds it depends on (the files it packs, e.g. a bootstrap.zip).
 */
export function buildInputs(d: Deployable, projectRoot: string, loc: PluginLocation, ws: WorkspaceFacts): InputDefinition[] {
  const prod = ws.hasProductionInput ? 'production' : 'default';
  const inputs: InputDefinition[] = d.kind === 'rust-lambda' ? rustInputs(projectRoot) : [prod, `^${prod}`, '!{projectRoot}/**/*.md'];
  const packaging = PACKAGING[d.kind];
  if (d.kind === 'node-tarball') {
    inputs.push(...NODE_NOT_BUNDLED);
  }
  if (d.kind === 'oci-image') {
    // the packed files (outputs of the builds it depends on) and, as source, the plugin bundle
    inputs.push({ dependentTasksOutputFiles: '**/*', transitive: false });
  } else if (loc.source) {
    // the executors run from the bundle of the plugin's source (workspace libs inlined): hash those bytes
    inputs.push({ dependentTasksOutputFiles: '**/*.js', transitive: false });
  }
  if (loc.source) {
    inputs.push(`{workspaceRoot}/${loc.source.root}/package.json`, { externalDependencies: packaging });
  } else {
    inputs.push({ externalDependencies: ['@buildonce/nx', ...packaging] });
  }
  if (d.kind === 'rust-lambda') {
    inputs.push({ env: 'BUILDONCE_CARGO_OFFLINE_REGISTRY' }, rustToolchainInput(projectRoot, d, ws.rustToolchainScript));
  } else {
    // gzip bytes depend on the zlib Node links
    inputs.push({ runtime: 'node -p process.versions.zlib' });
  }
  return inputs;
}

/**
 * The inferred targets of one deployable.
 * @param projectRoot workspace-relative root of the project
 * @param names resolved target names (null = off)
 */
export function inferTargets(
  d: Deployable,
  projectRoot: string,
  names: Record<TargetKey, string | null>,
  loc: PluginLocation,
  ws: WorkspaceFacts,
): Record<string, TargetConfiguration> {
  const exec = (name: string) => `${loc.executorPrefix}:${name}`;
  const bundle = loc.source ? [{ projects: [loc.source.project], target: loc.source.bundleTarget }] : [];
  const dep = (key: TargetKey) => (names[key] ? [names[key] as string] : []);
  const technologies = TECHNOLOGIES[d.kind];
  const meta = (description: string) => ({ description, technologies });
  const deployOptions =
    d.kind === 'rust-lambda'
      ? { target: 'lambda', functionName: d.functionName, alias: d.alias }
      : d.kind === 'oci-image'
        ? { target: 'lambda', functionName: '{project}-{env}', alias: '{env}' }
        : { target: d.deploy, ...(d.parameterName ? { parameterName: d.parameterName } : {}) };
  const build: Record<
    Deployable['kind'],
    { executor: string; options: Record<string, unknown>; dependsOn: TargetConfiguration['dependsOn']; description: string }
  > = {
    'rust-lambda': {
      executor: 'cargo-lambda-zip',
      options: d.kind === 'rust-lambda' ? { architecture: d.architecture, runtime: d.runtime, binary: d.binary } : {},
      dependsOn: [],
      description: 'Build the Lambda once: deterministic bootstrap.zip + artifact.json (version = task hash)',
    },
    'node-tarball': {
      executor: 'package-tarball',
      options: d.kind === 'node-tarball' && d.main ? { main: projectRoot === '.' ? d.main : `${projectRoot}/${d.main}` } : {},
      // a library with its own build (Nx's tsc-built default) may be bundled from its dist when its package
      // exports have no source condition: build the libraries first (a no-op for those without a build)
      dependsOn: ['^build'],
      description: 'Build once: deterministic self-contained tarball + artifact.json (version = task hash)',
    },
    // the image's own options stay in its project.json; it packs outputs of the builds of its dependencies
    'oci-image': {
      executor: 'oci-image',
      options: {},
      dependsOn: names.build ? [`^${names.build}`] : [],
      description: 'Build the image once: base by digest + deterministic layer, artifact.json (version = task hash)',
    },
  };
  const b = build[d.kind];
  const targets: Partial<Record<TargetKey, TargetConfiguration>> = {
    build: {
      executor: exec(b.executor),
      cache: true,
      inputs: buildInputs(d, projectRoot, loc, ws),
      outputs: ['{workspaceRoot}/dist/{projectRoot}'],
      options: b.options,
      dependsOn: [...(b.dependsOn ?? []), ...bundle],
      metadata: meta(b.description),
    },
    publish: {
      executor: exec('publish-artifact'),
      cache: false,
      dependsOn: [...dep('build'), ...bundle],
      metadata: meta('Publish the built artifact immutably to the store (a no-op when the version is there)'),
    },
    promote: {
      executor: exec('promote'),
      cache: false,
      // publish (a HEAD when the version exists) before promoting: a fresh clone promotes what it publishes
      dependsOn: [...(names.publish ? [names.publish] : dep('build')), ...bundle],
      options: deployOptions,
      metadata: meta('Promote the published version to --env (verify, policy, deploy, record)'),
    },
    rollback: {
      executor: exec('rollback'),
      cache: false,
      dependsOn: [...bundle],
      options: deployOptions,
      metadata: meta('Roll --env back to the previous (or --to) version'),
    },
    releases: { executor: exec('releases'), cache: false, dependsOn: [...bundle], metadata: meta('Print the release ledger') },
    resolve: { executor: exec('resolve'), cache: false, dependsOn: [...bundle], metadata: meta('Print the artifact URI current in --env') },
    retention: { executor: exec('retention'), cache: false, dependsOn: [...bundle], metadata: meta('Delete old artifact versions safely') },
  };
  const out: Record<string, TargetConfiguration> = {};
  for (const key of TARGET_KEYS) {
    const name = names[key];
    const t = targets[key];
    if (!name || !t) continue;
    if (t.dependsOn && t.dependsOn.length === 0) delete t.dependsOn;
    out[name] = t;
  }
  return out;
}
