import {
  addDependenciesToPackageJson,
  generateFiles,
  installPackagesTask,
  joinPathFragments,
  offsetFromRoot,
  readJson,
  updateJson,
  writeJson,
  type GeneratorCallback,
  type Tree,
} from '@nx/devkit';
import { join } from 'node:path';
import { isSeq, parseDocument } from 'yaml';
import { checkProjectDirectory, GeneratorInputError } from '../../lib/generator-input';
import type { NodeServiceGeneratorSchema } from './schema';

/** npm versions the generated service is written against. */
export const NODE_SERVICE_VERSIONS = { express: '^5.1.0', '@types/express': '^5.0.0', '@types/node': '^20.19.0' } as const;

/**
 * The package name (= Nx project name) of a service: `packageName` when given, otherwise `name` scoped like
 * the root package.json (`@acme/source` → `@acme/<name>`), unscoped when the root package is.
 */
export function servicePackageName(tree: Tree, name: string, packageName?: string): string {
  if (packageName) return packageName;
  const root = tree.exists('package.json') ? (readJson<{ name?: unknown }>(tree, 'package.json').name ?? '') : '';
  const scope = typeof root === 'string' ? /^(@[^/]+)\//.exec(root)?.[1] : undefined;
  return scope ? `${scope}/${name}` : name;
}

/** Whether an npm `workspaces` pattern (`packages/*`, `apps/**`, `tools/cli`) covers a directory. */
export function workspaceGlobCovers(pattern: string, dir: string): boolean {
  const p = pattern.replace(/^\.\//, '').replace(/\/+$/, '');
  if (p === dir) return true;
  if (p.endsWith('/**')) return dir.startsWith(p.slice(0, -2));
  if (p.endsWith('/*')) return dir.slice(0, dir.lastIndexOf('/')) === p.slice(0, -2) && !dir.slice(p.length - 1).includes('/');
  return false;
}

/**
 * Makes the service a workspace package (so the install links it and its workspace libraries and installs its
 * dependencies): adds `<parent>/*` to pnpm-workspace.yaml `packages` (pnpm), else to the root package.json
 * `workspaces` (npm, yarn), when no pattern covers it. Without either, the service's dependencies go to the
 * root package.json instead.
 * @returns true when the workspace has workspace packages
 */
function registerWorkspace(tree: Tree, dir: string): boolean {
  const parent = dir.includes('/') ? `${dir.slice(0, dir.lastIndexOf('/'))}/*` : dir;
  if (tree.exists('pnpm-workspace.yaml')) {
    // pnpm-workspace.yaml format: https://pnpm.io/pnpm-workspace_yaml (edited as a document: comments stay)
    const doc = parseDocument(tree.read('pnpm-workspace.yaml', 'utf8') ?? '');
    const packages = doc.get('packages');
    const list = isSeq(packages) ? packages.items.map((i) => String((i as { value?: unknown }).value ?? i)) : [];
    if (!list.some((p) => workspaceGlobCovers(p, dir))) {
      if (isSeq(packages)) packages.add(doc.createNode(parent));
      else doc.set('packages', doc.createNode([parent]));
      tree.write('pnpm-workspace.yaml', doc.toString());
    }
    return true;
  }
  if (!tree.exists('package.json')) return false;
  const root = readJson<{ workspaces?: string[] | { packages?: string[] } }>(tree, 'package.json');
  const ws = Array.isArray(root.workspaces) ? root.workspaces : root.workspaces?.packages;
  if (!ws) return false;
  if (!ws.some((p) => workspaceGlobCovers(p, dir))) {
    updateJson(tree, 'package.json', (pkg) => {
      if (Array.isArray(pkg.workspaces)) pkg.workspaces = [...pkg.workspaces, parent];
      else pkg.workspaces.packages = [...pkg.workspaces.packages, parent];
      return pkg;
    });
  }
  return true;
}

/**
 * `nx g @buildonce/nx:node-service <name>`: writes an Express service at `<directory>` (default
 * `apps/<name>`): package.json (name, express, the `buildonce: { deploy }` opt-in field), tsconfig.json,
 * src/main.ts, src/app.ts (`GET /health`, `GET /release`), src/release.ts, README.md. Registers it as an npm
 * workspace package, adds @types/node and @types/express to the root devDependencies when missing, adds a
 * TypeScript project reference when the root tsconfig.json has `references` (Nx's TS solution setup), and
 * (unless `skipInstall`) runs the package manager's install. The plugin infers every buildonce target.
 * @throws GeneratorInputError when the name is invalid or the directory is taken
 */
export async function nodeServiceGenerator(tree: Tree, options: NodeServiceGeneratorSchema): Promise<GeneratorCallback> {
  const name = options.name;
  if (!/^[a-z][a-z0-9-]{0,63}$/.test(name ?? '')) {
    throw new GeneratorInputError(`node-service name "${name}": use lowercase letters, digits and '-', starting with a letter, e.g. api`);
  }
  const dir = checkProjectDirectory(tree, 'directory', options.directory || joinPathFragments('apps', name));
  const packageName = servicePackageName(tree, name, options.packageName);
  const deploy = options.deploy ?? 'ec2';

  const inWorkspaces = registerWorkspace(tree, dir);
  generateFiles(tree, join(__dirname, 'files'), dir, { packageName, deploy, tmpl: '' });
  writeJson(tree, joinPathFragments(dir, 'package.json'), {
    name: packageName,
    version: '0.0.1',
    private: true,
    description: `${name}: an Express service built once and promoted by buildonce`,
    main: './src/main.ts',
    dependencies: inWorkspaces ? { express: NODE_SERVICE_VERSIONS.express } : {},
    buildonce: { deploy },
  });
  writeJson(tree, joinPathFragments(dir, 'tsconfig.json'), {
    extends: `${offsetFromRoot(dir)}tsconfig.base.json`,
    // build info beside the compiler output (ignored, and excluded from the build's inputs): typecheck never changes a version
    compilerOptions: { outDir: 'out-tsc', rootDir: 'src', tsBuildInfoFile: 'out-tsc/tsconfig.tsbuildinfo', types: ['node'] },
    include: ['src/**/*.ts'],
  });
  if (tree.exists('tsconfig.json')) {
    updateJson(tree, 'tsconfig.json', (ts) => {
      if (Array.isArray(ts.references) && !ts.references.some((r: { path?: string }) => r.path === `./${dir}`)) ts.references.push({ path: `./${dir}` });
      return ts;
    });
  }
  const rootDeps: Record<string, string> = inWorkspaces ? {} : { express: NODE_SERVICE_VERSIONS.express };
  const rootPkg = tree.exists('package.json') ? readJson<{ dependencies?: object; devDependencies?: Record<string, string> }>(tree, 'package.json') : {};
  const have = { ...rootPkg.dependencies, ...rootPkg.devDependencies } as Record<string, string>;
  const devDeps = Object.fromEntries(
    Object.entries({ '@types/node': NODE_SERVICE_VERSIONS['@types/node'], '@types/express': NODE_SERVICE_VERSIONS['@types/express'] }).filter(
      ([n]) => !have[n],
    ),
  );
  if (tree.exists('package.json')) addDependenciesToPackageJson(tree, rootDeps, devDeps, undefined, true);
  return () => {
    if (!options.skipInstall) installPackagesTask(tree, true);
  };
}

export default nodeServiceGenerator;
