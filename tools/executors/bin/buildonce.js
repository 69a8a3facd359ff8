#!/usr/bin/env node
// Workspace-wide buildonce commands (outside a single Nx project): `buildonce base|releases|resolve|retention`.
// Runs the esbuild bundle (dist/cli.js): what the packed @buildonce/nx ships, no TypeScript at run time.
// In the buildonce repository itself, `nx run executors:bundle` builds it.
let cli;
try {
  cli = require('../dist/cli.js');
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes('dist/cli.js')) {
    process.stderr.write('buildonce: dist/cli.js is missing: run `npx nx run executors:bundle` (in the buildonce repository) or reinstall @buildonce/nx\n');
    process.exit(1);
  }
  throw e;
}
cli.main(process.argv.slice(2)).then((code) => process.exit(code));
