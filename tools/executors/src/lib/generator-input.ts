import { joinPathFragments, type Tree } from '@nx/devkit';
import { BuildonceError } from '@buildonce/errors';

/** A generator was given an unusable name or directory: the message names the option and the fix. */
export class GeneratorInputError extends BuildonceError {
  override name = 'GeneratorInputError';
}

/**
 * Checks a project directory given to a generator and returns it normalized (workspace-relative,
 * `/`-separated, no trailing slash).
 * @param directory as typed by the user (`apps/api`, `./apps/api/`)
 * @throws GeneratorInputError when it is absolute, leaves the workspace, or already holds files
 */
export function checkProjectDirectory(tree: Tree, option: string, directory: string): string {
  const dir = joinPathFragments(directory.replace(/\\/g, '/')).replace(/\/+$/, '');
  if (!dir || dir === '.' || directory.startsWith('/') || dir.split('/').includes('..')) {
    throw new GeneratorInputError(`--${option}="${directory}": give a directory inside the workspace, e.g. apps/my-service`);
  }
  if (tree.exists(dir) && tree.children(dir).length > 0) {
    throw new GeneratorInputError(`--${option}="${dir}" already exists and is not empty: choose another --${option} or remove it`);
  }
  return dir;
}
