import type { CreateNodesContext, CreateNodesResult, CreateNodesResultArray, CreateNodesV2 } from '@nx/devkit';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import { detectImageProject, detectNodeApp, detectRustLambda, type Deployable } from './detect';
import { TECHNOLOGIES, inferTargets, normalizeOptions, type BuildoncePluginOptions, type PluginLocation, type WorkspaceFacts } from './targets';

export type { BuildoncePluginOptions } from './targets';
export { DeployableConfigError } from './detect';

/** Name of this package (what `nx add` installs and nx.json's plugin entry names). */
export const PLUGIN_PACKAGE = '@buildonce/nx';
const CACHE_VERSION = 3;

/** Root directory of this package (holds its package.json), found from the running file. */
function packageRoot(): { root: string; version: string } {
  let dir = __dirname;
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      const pkg = JSON.parse(readFileSync(pj, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === PLUGIN_PACKAGE) return { root: dir, version: pkg.version ?? '0.0.0' };
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`${PLUGIN_PACKAGE}: cannot find its own package.json above ${__dirname}`);
    dir = up;
  }
}

/**
 * Where the executors come from. The plugin is "source" when its package lives inside the workspace outside
 * node_modules (this repository dogfooding itself): targets then reference the executors by workspace path
 * (`./tools/executors:<executor>`, so every workspace copy runs its own code) and depend on the plugin
 * project's `bundle` target, once, here. Installed, they reference `@buildonce/nx:<executor>`.
 */
export function pluginLocation(workspaceRoot: string, pkgRoot: string): PluginLocation {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  const rel = relative(real(workspaceRoot), real(pkgRoot));
  if (!rel || rel.startsWith('..') || rel.split(sep).includes('node_modules')) return { executorPrefix: PLUGIN_PACKAGE };
  const root = rel.split(sep).join('/');
  let project: string = PLUGIN_PACKAGE;
  const pj = join(pkgRoot, 'project.json');
  if (existsSync(pj)) project = (JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name ?? project;
  return { executorPrefix: `./${root}`, source: { project, root, bundleTarget: 'bundle' } };
}

/** What the cache keeps per config file (by content hash): the parsed declaration, null for none. */
type CachedDeclaration = { d: Deployable | null };
type CachedResult = { projects?: CreateNodesResult['projects'] };

function readCache(path: string): Record<string, CachedDeclaration> {
  try {
    const c = JSON.parse(readFileSync(path, 'utf8')) as { v: number; entries: Record<string, CachedDeclaration> };
    return c.v === CACHE_VERSION ? c.entries : {};
  } catch {
    return {};
  }
}

function writeCache(path: string, entries: Record<string, CachedDeclaration>): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ v: CACHE_VERSION, entries }));
    renameSync(tmp, path);
  } catch {
    // a cache that cannot be written only costs the next run a re-parse
  }
}

function cacheDir(workspaceRoot: string): string {
  return process.env.NX_WORKSPACE_DATA_DIRECTORY || process.env.NX_PROJECT_GRAPH_CACHE_DIRECTORY || join(workspaceRoot, '.nx', 'workspace-data');
}

const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');

/**
 * Infers buildonce targets for one config file (a Cargo.toml declaring a Lambda, a package.json with a
 * `buildonce` field, or a project.json whose build target runs this plugin's `oci-image` executor).
 * @param file workspace-relative path of the config file
 * @returns the project (root → targets), or {} when the file declares no deployable
 * @throws DeployableConfigError when the file declares a deployable wrongly
 */
export function inferFromFile(file: string, text: string, options: BuildoncePluginOptions | undefined, loc: PluginLocation, ws: WorkspaceFacts): CachedResult {
  return projectFor(file, declarationOf(file, text), options, loc, ws);
}

/** Parses one config file. @throws DeployableConfigError when it declares a deployable wrongly */
function declarationOf(file: string, text: string): Deployable | null {
  const base = basename(file);
  if (base === 'Cargo.toml') return detectRustLambda(file, text);
  if (base === 'project.json') return detectImageProject(file, text);
  return detectNodeApp(file, text);
}

function projectFor(file: string, d: Deployable | null, options: BuildoncePluginOptions | undefined, loc: PluginLocation, ws: WorkspaceFacts): CachedResult {
  if (!d) return {};
  const root = dirname(file) === '' ? '.' : dirname(file);
  if (loc.source && root === loc.source.root) return {};
  const names = normalizeOptions(options);
  // an image project gets targets only when its build target (by the configured name) runs this plugin's executor
  if (d.kind === 'oci-image' && !d.imageTargets.some((t) => t.target === names.build && t.executor === `${loc.executorPrefix}:oci-image`)) return {};
  const targets = inferTargets(d, root, names, loc, ws);
  return {
    projects: {
      [root]: {
        ...(d.name ? { name: d.name } : {}),
        projectType: 'application',
        targets,
        metadata: { technologies: TECHNOLOGIES[d.kind] },
      },
    },
  };
}

/**
 * The Nx plugin (createNodes v2 API, https://nx.dev/extending-nx/recipes/project-graph-plugins): every
 * Cargo.toml that declares a Lambda and every package.json with a `buildonce` field gets the inferred
 * targets build, publish, promote, rollback, releases, resolve, retention (names from the options); a
 * project.json whose build target runs `oci-image` gets the same around its own build options (image → Lambda).
 * Parsed declarations are cached by file content hash in Nx's workspace data directory (per plugin version).
 * @throws AggregateCreateNodesError (Nx's `createNodesFromFiles`) listing each file whose declaration is invalid, with the
 *   results of the others
 */
export const createNodesV2: CreateNodesV2<BuildoncePluginOptions> = [
  '**/{Cargo.toml,package.json,project.json}',
  async (configFiles: readonly string[], options: BuildoncePluginOptions | undefined, context: CreateNodesContext): Promise<CreateNodesResultArray> => {
    normalizeOptions(options); // fail once, early, on bad options
    const pkg = packageRoot();
    const loc = pluginLocation(context.workspaceRoot, pkg.root);
    // the Rust toolchain identity command: the repository's script when the plugin is source, else the bundled copy,
    // named by its install path (not its real path) so every clone and install hashes the same command line
    const installed = `node_modules/${PLUGIN_PACKAGE}/dist/rust-toolchain.js`;
    const script = loc.source
      ? 'tools/scripts/rust-toolchain.mjs'
      : existsSync(join(context.workspaceRoot, installed))
        ? installed
        : relative(context.workspaceRoot, join(pkg.root, 'dist', 'rust-toolchain.js'));
    const ws: WorkspaceFacts = {
      hasProductionInput: !!context.nxJsonConfiguration?.namedInputs?.production,
      ...(existsSync(join(context.workspaceRoot, script)) ? { rustToolchainScript: script } : {}),
    };
    const cachePath = join(cacheDir(context.workspaceRoot), `buildonce-nx-${sha1(pkg.version).slice(0, 12)}.hash`);
    const cache = readCache(cachePath);
    const next: Record<string, CachedDeclaration> = {};
    const { createNodesFromFiles } = await import('@nx/devkit');
    try {
      const results = await createNodesFromFiles(
        (file: string): CachedResult => {
          if (file.split('/').includes('node_modules')) return {};
          let text: string;
          try {
            text = readFileSync(join(context.workspaceRoot, file), 'utf8');
          } catch {
            return {};
          }
          const entryKey = `${file}:${sha1(text)}`;
          const entry = (next[entryKey] = cache[entryKey] ?? { d: declarationOf(file, text) });
          return projectFor(file, entry.d, options, loc, ws);
        },
        configFiles,
        options,
        context,
      );
      return results.filter(([, r]) => r.projects);
    } finally {
      // written once per run, and only when the set of parsed files changed (a bad declaration is not kept)
      const before = Object.keys(cache);
      if (before.length !== Object.keys(next).length || before.some((k) => !(k in next))) writeCache(cachePath, next);
    }
  },
];

/** Same as createNodesV2 (Nx 21+ reads `createNodes` with the v2 signature first). */
export const createNodes = createNodesV2;
