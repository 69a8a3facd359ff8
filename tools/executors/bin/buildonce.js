#!/usr/bin/env node
// Workspace-wide buildonce commands (outside a single Nx project): `buildonce base`, `releases`, `retention`.
// The plugin is TypeScript; @swc-node/register (already required by Nx for local plugins) transpiles it.
process.env.SWC_NODE_PROJECT = process.env.SWC_NODE_PROJECT || require('node:path').join(__dirname, '..', 'tsconfig.cli.json');
require('@swc-node/register');
require('../src/cli/main.ts')
  .main(process.argv.slice(2))
  .then((code) => process.exit(code));
