'use strict';
// Plain CommonJS on purpose: Nx loads an executor's `hasher` while planning tasks, before any bundle of
// this package may exist (fresh clone of the buildonce repository), so this file needs no build step.

/**
 * The node of every Nx task hash that hashes the whole nx.json, .gitignore and .nxignore (Nx's
 * "always-on workspace files", nx/src/native/tasks/hash_planner.rs). None of them can change an
 * artifact's bytes by itself: what they configure (named inputs, target defaults, plugin options, which
 * files belong to a project) is already in the task's ProjectConfiguration and file-set nodes.
 */
const ALWAYS_ON_NODE = 'workspace:[{workspaceRoot}/nx.json,{workspaceRoot}/.gitignore,{workspaceRoot}/.nxignore]';

/**
 * Executors whose bytes no TypeScript compiler setting can change: cargo builds a Rust Lambda, and an image
 * assembles files its dependencies built (their outputs are hashed). Nx 23 still adds a `<project>:TsConfig`
 * node (the root tsconfig's compilerOptions and the installed typescript version) to every task hash, so a
 * `strict` edit or a TypeScript upgrade would give every Rust Lambda a new version with identical bytes.
 * package-tarball keeps the node: esbuild reads the tsconfig.
 */
const NO_TYPESCRIPT = ['cargo-lambda-zip', 'oci-image'];

/** @returns {boolean} whether the task runs one of {@link NO_TYPESCRIPT} (any package prefix: `@buildonce/nx:`, a local path) */
function readsNoTypeScript(task, context) {
  const executor = context.projectGraph?.nodes?.[task.target.project]?.data?.targets?.[task.target.target]?.executor ?? '';
  return NO_TYPESCRIPT.some((name) => executor.endsWith(`:${name}`));
}

/**
 * Custom Nx task hasher of the build executors (cargo-lambda-zip, package-tarball): the version of an
 * artifact is the task hash, so it must change exactly when the bytes can. Nx's hash (CustomHasher API,
 * `hasher` in executors.json) is computed as usual, then recombined without ALWAYS_ON_NODE: a .gitignore
 * or unrelated nx.json edit keeps the version; every declared input (files, ^production, runtime, env,
 * external dependencies, dependent task outputs, the target's configuration) still counts. For the
 * executors in NO_TYPESCRIPT the `<project>:TsConfig` node is left out too.
 * @param {import('@nx/devkit').Task} task
 * @param {import('@nx/devkit').HasherContext} context
 * @returns {Promise<import('@nx/devkit').Hash>} Nx's Hash with `value` = the version (decimal xxhash string, like Nx's)
 */
module.exports = async function versionHasher(task, context) {
  const hash = await context.hasher.hashTask(task, context.taskGraph, process.env);
  const { hashArray } = require('@nx/devkit');
  const nodes = hash.details.nodes;
  const tsConfigNode = readsNoTypeScript(task, context) ? `${task.target.project}:TsConfig` : undefined;
  const kept = Object.keys(nodes)
    .filter((k) => k !== ALWAYS_ON_NODE && k !== tsConfigNode)
    .sort();
  const value = hashArray([hash.details.command, ...kept.map((k) => `${k}=${nodes[k]}`)]);
  return { ...hash, value };
};
module.exports.ALWAYS_ON_NODE = ALWAYS_ON_NODE;
module.exports.NO_TYPESCRIPT = NO_TYPESCRIPT;
