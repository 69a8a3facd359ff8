import { formatFiles, readNxJson, updateNxJson, type Tree } from '@nx/devkit';
import type { InitGeneratorSchema } from './schema';

/** The plugin entry `nx add @buildonce/nx` registers (options: see the plugin's BuildoncePluginOptions). */
export const PLUGIN_ENTRY = { plugin: '@buildonce/nx', options: {} } as const;

/** Default buildonce.json: the embedded file store, dev -> staging -> prod, previews on. */
export const DEFAULT_CONFIG = {
  environments: [
    { name: 'dev', description: 'every merge to the default branch' },
    { name: 'staging', requires: ['dev'] },
    { name: 'prod', requires: ['staging'] },
  ],
  preview: { enabled: true },
  deploy: 'auto',
};

/** Line added to .gitignore: the embedded store and local deployments live there. */
export const GITIGNORE_LINE = '.buildonce/';

/** Whether an nx.json plugin entry is this plugin (by package name, or its source path in this repository). */
function isBuildoncePlugin(entry: string | { plugin: string }): boolean {
  const name = typeof entry === 'string' ? entry : entry.plugin;
  return name === PLUGIN_ENTRY.plugin || /(^|\/)tools\/executors(\/src\/plugin(\/index(\.ts)?)?)?$/.test(name);
}

/**
 * `nx g @buildonce/nx:init` (what `nx add @buildonce/nx` runs). Idempotent: a second run changes nothing.
 * 1. nx.json: adds `{ "plugin": "@buildonce/nx", "options": {} }` to `plugins` unless the plugin is registered;
 * 2. buildonce.json: writes DEFAULT_CONFIG when the file is absent (an existing one is never touched);
 * 3. .gitignore: appends `.buildonce/` unless a line already ignores it.
 * @throws Error when the workspace has no nx.json
 */
export async function initGenerator(tree: Tree, options: InitGeneratorSchema = {}): Promise<void> {
  const nxJson = readNxJson(tree);
  if (!nxJson) throw new Error('no nx.json at the workspace root: run `nx g @buildonce/nx:init` inside an Nx workspace');
  const plugins = nxJson.plugins ?? [];
  if (!plugins.some((p) => isBuildoncePlugin(p as string | { plugin: string }))) {
    nxJson.plugins = [...plugins, { plugin: PLUGIN_ENTRY.plugin, options: {} }];
    updateNxJson(tree, nxJson);
  }
  if (!tree.exists('buildonce.json')) tree.write('buildonce.json', JSON.stringify(DEFAULT_CONFIG, null, 2) + '\n');
  const gi = tree.exists('.gitignore') ? (tree.read('.gitignore', 'utf8') ?? '') : '';
  const ignored = gi.split(/\r?\n/).some((l) => ['.buildonce', '.buildonce/', '/.buildonce', '/.buildonce/', '.buildonce/**'].includes(l.trim()));
  if (!ignored)
    tree.write('.gitignore', `${gi}${gi && !gi.endsWith('\n') ? '\n' : ''}\n# buildonce: embedded store and local deployments\n${GITIGNORE_LINE}\n`);
  if (!options.skipFormat) await formatFiles(tree);
}

export default initGenerator;
