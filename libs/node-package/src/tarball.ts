import { existsSync } from 'node:fs';
import { mkdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { createRequire } from 'node:module';
import type { Metafile } from 'esbuild';
import { ARTIFACT_INFO_FILE, MANIFEST_SCHEMA_VERSION, writeBuildManifest, writeDeterministicTarGz, type Manifest, type TarEntry } from '@buildonce/artifact';
import type { Architecture } from '@buildonce/artifact';
import { BuildonceError } from '@buildonce/errors';
import { canonicalizeBundle, classifyWarnings, declaredModuleFormat, describeMessage, esmInteropOptions, type ModuleFormat } from './node-bundle';
import { startCheck, type StartCheckOptions } from './start-check';
import type { ProjectName, Version } from '@buildonce/values';

/** esbuild, loaded when a tarball is built (not by every command that imports libs/node-package). */
const loadEsbuild = (): typeof import('esbuild') => createRequire(__filename)('esbuild') as typeof import('esbuild');

/** Options of a Node tarball build. Paths are absolute. */
export interface NodeTarballBuild {
  project: ProjectName;
  /** the build's Nx task hash: the artifact version */
  version: Version;
  /** esbuild's working directory; every path recorded in the bundle and its source map is relative to it */
  workspaceRoot: string;
  /** entry source file (TypeScript or JavaScript) */
  main: string;
  /** where the tarball and artifact.json go; emptied first */
  outputDir: string;
  /** e.g. `express-api-deployment.tar.gz` */
  tarballName: string;
  /** name of the bundled entry inside the tarball (what `node <entry>` runs), e.g. `main.js` */
  entry: string;
  /** esbuild target, e.g. `node20` */
  target: string;
  /** manifest runtime, e.g. `node>=20` */
  runtime: string;
  /** recorded in the manifest; a bundle without native addons runs on both */
  architecture: Architecture;
  minify: boolean;
  /** ship `<entry>.map` (paths relative to the workspace, no sources content) for `node --enable-source-maps` */
  sourcemap: boolean;
  /** app description for the shipped package.json */
  description?: string;
  /** module format of the bundle; unset: the one the app declares ({@link declaredModuleFormat}) */
  format?: ModuleFormat;
  /** package.json `exports`/`imports` conditions to honour besides Node's (the workspace's `customConditions`) */
  conditions?: readonly string[];
  /** load the bundle in a child process before it gets a version ({@link startCheck}); unset: no check */
  startCheck?: Pick<StartCheckOptions, 'timeoutMs'>;
  log: (line: string) => void;
}

/** One package whose code is inside the bundle. */
export interface BundledPackage {
  name: string;
  /** exact version from the package's own package.json */
  version: string;
  license?: string;
  /** a workspace library (resolved through a symlink to a folder outside node_modules) */
  workspace: boolean;
}

/** The build cannot produce a self-contained tarball (native addon, unbundled import, bad option). */
export class NodeTarballError extends BuildonceError {
  override name = 'NodeTarballError';
}

/** `node20` → `node>=20`; other targets are returned unchanged. */
export function runtimeForTarget(target: string): string {
  const m = /^node(\d+)/.exec(target);
  return m ? `node>=${m[1]}` : target;
}

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** True for `fs`, `node:fs`, `fs/promises`, `node:test` … (imports Node provides at run time). */
export function isNodeBuiltin(specifier: string): boolean {
  return builtins.has(specifier) || specifier.startsWith('node:');
}

/**
 * Package folder of a bundled input path (relative to the working directory, `/`-separated):
 * the last `node_modules/<name>` or `node_modules/@scope/<name>` segment. Undefined for own sources.
 */
export function packageDirOf(input: string): { name: string; dir: string } | undefined {
  const m = /^(.*node_modules\/)((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (!m) return undefined;
  return { name: m[2]!, dir: m[1]! + m[2]! };
}

/**
 * Problems that stop a bundle from being self-contained, from esbuild's metafile: native addons
 * (`.node` inputs cannot be bundled) and imports left external that Node does not provide.
 * @returns one line per problem (empty when the bundle stands alone)
 */
export function selfContainedProblems(metafile: Metafile): string[] {
  const problems: string[] = [];
  for (const input of Object.keys(metafile.inputs)) {
    if (input.endsWith('.node')) problems.push(`native addon ${input} cannot be bundled (ship it as a pruned node_modules instead)`);
  }
  for (const [out, o] of Object.entries(metafile.outputs)) {
    for (const imp of o.imports) {
      if (imp.external && !isNodeBuiltin(imp.path)) problems.push(`${out} imports "${imp.path}" at run time but it is not bundled`);
    }
  }
  return problems;
}

/**
 * Lists the packages bundled into the output, with exact versions read from each package's own
 * package.json (the bytes that were bundled, whatever the lockfile said). Sorted by name, version.
 * @param inputs metafile input paths, relative to `workspaceRoot`
 * @param isWorkspace decides whether a package folder is a workspace library (default: its real
 *   path is outside any node_modules)
 */
export async function bundledPackages(
  inputs: readonly string[],
  workspaceRoot: string,
  isWorkspace: (absDir: string) => Promise<boolean>,
): Promise<BundledPackage[]> {
  const dirs = new Map<string, string>();
  for (const input of inputs) {
    const p = packageDirOf(input);
    if (p) dirs.set(p.dir, p.name);
  }
  const seen = new Map<string, BundledPackage>();
  for (const [dir, name] of dirs) {
    const abs = join(workspaceRoot, ...dir.split('/'));
    const pkg = JSON.parse(await readFile(join(abs, 'package.json'), 'utf8')) as { name?: string; version?: string; license?: unknown };
    const entry: BundledPackage = { name: pkg.name ?? name, version: pkg.version ?? '0.0.0', workspace: await isWorkspace(abs) };
    if (typeof pkg.license === 'string') entry.license = pkg.license;
    seen.set(`${entry.name}@${entry.version}`, entry);
  }
  return [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
}

/**
 * Workspace libraries bundled from their own folders (resolved through a workspace link, package `exports`
 * or tsconfig `paths`): for each input outside node_modules, the nearest package.json with a name below the
 * workspace root, except the app's own. Sorted by name.
 * @param inputs metafile input paths, relative to `workspaceRoot`
 * @param appDir absolute directory of the app's package.json (not a library)
 */
export async function workspaceLibraries(inputs: readonly string[], workspaceRoot: string, appDir: string): Promise<Array<{ name: string; version: string }>> {
  const root = resolve(workspaceRoot);
  const dirs = new Set<string>();
  for (const input of inputs) {
    if (input.startsWith('../') || input.split('/').includes('node_modules') || !/\.[cm]?[jt]sx?$|\.json$/.test(input)) continue;
    dirs.add(dirname(join(root, ...input.split('/'))));
  }
  const found = new Map<string, { name: string; version: string }>();
  const nearest = new Map<string, string | null>();
  const lookup = (dir: string): string | null => {
    if (nearest.has(dir)) return nearest.get(dir)!;
    let r: string | null;
    if (dir === root || !dir.startsWith(root + sep)) r = null;
    else if (existsSync(join(dir, 'package.json'))) r = dir;
    else r = lookup(dirname(dir));
    nearest.set(dir, r);
    return r;
  };
  for (const d of dirs) {
    const pkgDir = lookup(d);
    if (!pkgDir || pkgDir === resolve(appDir) || found.has(pkgDir)) continue;
    const pkg = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
    if (typeof pkg.name === 'string') found.set(pkgDir, { name: pkg.name, version: typeof pkg.version === 'string' ? pkg.version : '0.0.0' });
  }
  return [...found.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Dependency fields of package.json that npm would try to resolve. */
const DEP_FIELDS = ['dependencies', 'optionalDependencies', 'peerDependencies', 'devDependencies', 'bundleDependencies', 'bundledDependencies'] as const;

/**
 * Checks a package.json that will ship: no dependency may point at the workspace or the local disk
 * (`workspace:`, `file:`, `link:`, `portal:`), since the instance has neither. Returns the problems.
 */
export function workspaceReferences(pkg: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const field of DEP_FIELDS) {
    const deps = pkg[field];
    if (!deps || typeof deps !== 'object' || Array.isArray(deps)) continue;
    for (const [name, spec] of Object.entries(deps as Record<string, unknown>)) {
      if (typeof spec === 'string' && /^(workspace|file|link|portal):/.test(spec)) problems.push(`${field}.${name} = "${spec}"`);
    }
  }
  return problems;
}

/**
 * The package.json shipped in the tarball: no dependencies at all (everything is in the bundle),
 * `type` of the bundle's format (`commonjs` or `module`; explicit, so a parent folder's package.json cannot
 * change how `main.js` loads), and `engines.node` from the runtime.
 */
export function deploymentPackageJson(o: {
  project: ProjectName;
  entry: string;
  runtime: string;
  description?: string;
  format?: ModuleFormat;
}): Record<string, unknown> {
  const node = /^node(.*)$/.exec(o.runtime)?.[1];
  return {
    name: o.project,
    private: true,
    ...(o.description ? { description: o.description } : {}),
    type: o.format === 'esm' ? 'module' : 'commonjs',
    main: o.entry,
    scripts: { start: `node ${o.entry}` },
    ...(node ? { engines: { node } } : {}),
  };
}

async function realDirOutsideNodeModules(absDir: string): Promise<boolean> {
  const real = await realpath(absDir).catch(() => absDir);
  return !real.split(sep).includes('node_modules');
}

/**
 * Packages a Node app once into a self-contained deterministic tarball plus `artifact.json`
 * (`kind: "node-tarball"`, `version` = the Nx task hash) in `outputDir`:
 *  - esbuild bundles the entry with every workspace library and production dependency into one file
 *    (`<entry>`; `<entry>.map` with workspace-relative paths when `sourcemap`) in the module format the app
 *    declares (ESM: `import.meta.url`, top-level await, and a real `require` for bundled CommonJS packages);
 *    package `exports` honour `conditions` (the workspace's `customConditions`); modules resolve by their real
 *    paths like Node does (pnpm's symlinked node_modules included), then every path written into the bundle is
 *    spelled package-manager independently (`canonicalBundlePath`);
 *  - esbuild warnings that mean a run-time failure ({@link classifyWarnings}) fail the build;
 *  - `package.json` without dependencies and with the bundle's `type`, and `artifact-info.json` (project,
 *    version, entry, runtime, the bundled packages with exact versions);
 *  - with `startCheck`, the bundle is loaded in a child process first ({@link startCheck});
 *  - everything written with {@link writeDeterministicTarGz} (sorted, fixed mtime, uid/gid 0, no
 *    owner names, gzip header without timestamp).
 * Same sources → same sha256 on any machine and path, with npm, pnpm or yarn (for a given esbuild and zlib version).
 * @returns the manifest written
 * @throws NodeTarballError when the bundle would need files it does not contain (native addons,
 *   unbundled imports), when esbuild fails or warns of a run-time failure, or when the start check fails;
 *   nothing is left in `outputDir` then
 */
export async function buildNodeTarball(b: NodeTarballBuild): Promise<Manifest> {
  const tag = `[${b.project}]`;
  if (!/^[A-Za-z0-9._-]+\.js$/.test(b.entry)) throw new NodeTarballError(`${tag} entry must be a plain file name ending in .js, got "${b.entry}"`);
  const t0 = Date.now();
  // real paths throughout: esbuild's working directory and the outputs must agree with the resolved inputs
  const workspaceRoot = await realpath(b.workspaceRoot);
  const outputDir = join(workspaceRoot, relative(b.workspaceRoot, b.outputDir));
  const main = join(workspaceRoot, relative(b.workspaceRoot, b.main));
  const format = b.format ?? declaredModuleFormat(main, workspaceRoot);
  b.log(
    `${tag} esbuild ${relative(workspaceRoot, main)} → ${b.entry} (${format === 'esm' ? 'ESM' : 'CommonJS'}, target ${b.target}${b.minify ? ', minified' : ''})`,
  );
  const { build: esbuild, version: esbuildVersion } = loadEsbuild();
  const esm = format === 'esm' ? esmInteropOptions() : undefined;
  const result = await esbuild({
    entryPoints: { [b.entry.replace(/\.js$/, '')]: main },
    absWorkingDir: workspaceRoot,
    outdir: outputDir,
    bundle: true,
    platform: 'node',
    format,
    ...(esm ?? {}),
    // esbuild drops its default `module` condition once any is set: keep it
    ...(b.conditions?.length ? { conditions: [...b.conditions, 'module'] } : {}),
    target: b.target,
    minify: b.minify,
    sourcemap: b.sourcemap ? 'linked' : false,
    sourcesContent: false,
    legalComments: 'eof',
    metafile: true,
    write: false,
    logLevel: 'silent',
    charset: 'utf8',
  }).catch((e: Error) => {
    throw new NodeTarballError(`${tag} esbuild failed: ${e.message.split('\n').slice(0, 6).join(' | ')}`);
  });
  const problems = selfContainedProblems(result.metafile);
  if (problems.length) throw new NodeTarballError(`${tag} the bundle is not self-contained: ${problems.join('; ')}`);
  const { breaking, other } = classifyWarnings(result.warnings);
  if (breaking.length) {
    const hint = breaking.some((w) => w.id === 'empty-import-meta')
      ? ' (ESM code in a CommonJS app: set "type": "module" in its package.json, or use an .mts entry)'
      : '';
    throw new NodeTarballError(`${tag} esbuild warns the bundle would fail at run time: ${breaking.map(describeMessage).join('; ')}${hint}`);
  }
  for (const w of other) b.log(`${tag} esbuild warning: ${describeMessage(w)}`);

  const inputs = Object.keys(result.metafile.inputs);
  const packages = await bundledPackages(inputs, workspaceRoot, realDirOutsideNodeModules);
  const libraries = await workspaceLibraries(inputs, workspaceRoot, packageDirOfEntry(main, workspaceRoot));
  const pkgJson = deploymentPackageJson({ project: b.project, entry: b.entry, runtime: b.runtime, description: b.description, format });
  const refs = workspaceReferences(pkgJson);
  if (refs.length) throw new NodeTarballError(`${tag} shipped package.json has local references: ${refs.join(', ')}`);
  const info = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    project: b.project,
    version: b.version,
    kind: 'node-tarball',
    entry: b.entry,
    runtime: b.runtime,
    architecture: b.architecture,
    bundled: packages.filter((p) => !p.workspace).map(({ name, version, license }) => ({ name, version, ...(license ? { license } : {}) })),
    workspaceLibraries: [...packages.filter((p) => p.workspace).map(({ name, version }) => ({ name, version })), ...libraries],
  };
  const entries: Array<Extract<TarEntry, { bytes: Uint8Array }>> = [
    { name: 'package.json', bytes: Buffer.from(JSON.stringify(pkgJson, null, 2) + '\n') },
    { name: ARTIFACT_INFO_FILE, bytes: Buffer.from(JSON.stringify(info, null, 2) + '\n') },
  ];
  const outputs = result.outputFiles ?? [];
  const mapFile = outputs.find((f) => f.path.endsWith('.map'));
  for (const f of outputs) {
    const name = relative(outputDir, f.path).split(sep).join('/');
    if (f === mapFile) continue;
    const c = canonicalizeBundle(inputs, f.text, mapFile && mapFile.path === `${f.path}.map` ? mapFile.text : undefined, workspaceRoot, dirname(f.path));
    entries.push({ name, bytes: Buffer.from(c.code) });
    if (c.map !== undefined) entries.push({ name: `${name}.map`, bytes: Buffer.from(c.map) });
  }
  if (!entries.some((e) => e.name === b.entry)) throw new NodeTarballError(`${tag} esbuild produced no ${b.entry}`);

  await rm(outputDir, { recursive: true, force: true });
  await mkdir(outputDir, { recursive: true });
  if (b.startCheck) {
    // the files exactly as they unpack on an instance, beside the workspace so source-mapped stacks name sources
    for (const e of entries) {
      await mkdir(dirname(join(outputDir, e.name)), { recursive: true });
      await writeFile(join(outputDir, e.name), e.bytes);
    }
    try {
      const s = await startCheck({ dir: outputDir, entry: b.entry, workspaceRoot, timeoutMs: b.startCheck.timeoutMs });
      b.log(`${tag} start check: ${b.entry} loaded in ${s.ms} ms`);
    } catch (e) {
      await rm(outputDir, { recursive: true, force: true });
      throw e instanceof BuildonceError ? new NodeTarballError(`${tag} ${e.message}`) : e;
    }
    await rm(outputDir, { recursive: true, force: true });
    await mkdir(outputDir, { recursive: true });
  }
  const tarPath = join(outputDir, b.tarballName);
  await writeDeterministicTarGz(entries, tarPath);
  const { manifest, digest } = await writeBuildManifest(tarPath, {
    project: b.project,
    version: b.version,
    kind: 'node-tarball',
    runtime: b.runtime,
    architecture: b.architecture,
    entry: b.entry,
    toolchain: `node ${process.version}; esbuild ${esbuildVersion}`,
  });
  b.log(
    `${tag} wrote ${relative(workspaceRoot, tarPath) || tarPath} (${digest.size} bytes, sha256 ${digest.hex}, ${entries.length} files, ` +
      `${info.bundled.length} packages + ${info.workspaceLibraries.length} workspace libraries bundled) version ${b.version} in ${Date.now() - t0} ms`,
  );
  return manifest;
}

/** Directory of the package.json nearest above the entry (the app's own package), or the entry's directory. */
function packageDirOfEntry(main: string, workspaceRoot: string): string {
  for (let dir = dirname(main); dir.startsWith(workspaceRoot) && dir !== workspaceRoot; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  return dirname(main);
}
