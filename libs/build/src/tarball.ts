import { mkdir, readFile, realpath, rm } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { join, relative, sep } from 'node:path';
import { createRequire } from 'node:module';
import type { Metafile } from 'esbuild';
import {
  ARTIFACT_INFO_FILE,
  MANIFEST_SCHEMA_VERSION,
  writeBuildManifest,
  writeDeterministicTarGz,
  type Manifest,
  type TarEntry,
} from '@buildonce/artifact';
import type { Architecture } from './cargo';
import { BuildonceError } from '@buildonce/errors';


/** esbuild, loaded when a tarball is built (not by every command that imports libs/build). */
const loadEsbuild = (): typeof import('esbuild') => createRequire(__filename)('esbuild') as typeof import('esbuild');

/** Options of a Node tarball build. Paths are absolute. */
export interface NodeTarballBuild {
  project: string;
  /** the build's Nx task hash: the artifact version */
  version: string;
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
export async function bundledPackages(inputs: readonly string[], workspaceRoot: string, isWorkspace: (absDir: string) => Promise<boolean>): Promise<BundledPackage[]> {
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
 * `type: commonjs` so a parent folder's `"type": "module"` cannot change how `main.js` loads, and
 * `engines.node` from the runtime.
 */
export function deploymentPackageJson(o: { project: string; entry: string; runtime: string; description?: string }): Record<string, unknown> {
  const node = /^node(.*)$/.exec(o.runtime)?.[1];
  return {
    name: o.project,
    private: true,
    ...(o.description ? { description: o.description } : {}),
    type: 'commonjs',
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
 *  - esbuild bundles the entry with every workspace library and production dependency into one
 *    CommonJS file (`<entry>`; `<entry>.map` with workspace-relative paths when `sourcemap`),
 *    symlinks preserved so workspace libraries keep workspace-relative paths on any machine;
 *  - `package.json` without dependencies, and `artifact-info.json` (project, version, entry, runtime,
 *    the bundled packages with exact versions);
 *  - everything written with {@link writeDeterministicTarGz} (sorted, fixed mtime, uid/gid 0, no
 *    owner names, gzip header without timestamp).
 * Same sources → same sha256 on any machine and path (for a given esbuild and zlib version).
 * @returns the manifest written
 * @throws NodeTarballError when the bundle would need files it does not contain (native addons,
 *   unbundled imports); esbuild's error for compile errors
 */
export async function buildNodeTarball(b: NodeTarballBuild): Promise<Manifest> {
  const tag = `[${b.project}]`;
  if (!/^[A-Za-z0-9._-]+\.js$/.test(b.entry)) throw new NodeTarballError(`${tag} entry must be a plain file name ending in .js, got "${b.entry}"`);
  const t0 = Date.now();
  b.log(`${tag} esbuild ${relative(b.workspaceRoot, b.main)} → ${b.entry} (target ${b.target}${b.minify ? ', minified' : ''})`);
  const { build: esbuild, version: esbuildVersion } = loadEsbuild();
  const result = await esbuild({
    entryPoints: { [b.entry.replace(/\.js$/, '')]: b.main },
    absWorkingDir: b.workspaceRoot,
    outdir: b.outputDir,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: b.target,
    minify: b.minify,
    sourcemap: b.sourcemap ? 'linked' : false,
    sourcesContent: false,
    preserveSymlinks: true,
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
  for (const w of result.warnings) b.log(`${tag} esbuild warning: ${w.text}${w.location ? ` (${w.location.file}:${w.location.line})` : ''}`);

  const packages = await bundledPackages(Object.keys(result.metafile.inputs), b.workspaceRoot, realDirOutsideNodeModules);
  const pkgJson = deploymentPackageJson({ project: b.project, entry: b.entry, runtime: b.runtime, description: b.description });
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
    workspaceLibraries: packages.filter((p) => p.workspace).map(({ name, version }) => ({ name, version })),
  };
  const entries: TarEntry[] = [
    { name: 'package.json', bytes: Buffer.from(JSON.stringify(pkgJson, null, 2) + '\n') },
    { name: ARTIFACT_INFO_FILE, bytes: Buffer.from(JSON.stringify(info, null, 2) + '\n') },
  ];
  for (const f of result.outputFiles ?? []) {
    const name = relative(b.outputDir, f.path).split(sep).join('/');
    entries.push({ name, bytes: f.contents });
  }
  if (!entries.some((e) => e.name === b.entry)) throw new NodeTarballError(`${tag} esbuild produced no ${b.entry}`);

  await rm(b.outputDir, { recursive: true, force: true });
  await mkdir(b.outputDir, { recursive: true });
  const tarPath = join(b.outputDir, b.tarballName);
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
    `${tag} wrote ${relative(b.workspaceRoot, tarPath) || tarPath} (${digest.size} bytes, sha256 ${digest.hex}, ${entries.length} files, ` +
      `${info.bundled.length} packages + ${info.workspaceLibraries.length} workspace libraries bundled) version ${b.version} in ${Date.now() - t0} ms`,
  );
  return manifest;
}
