#!/usr/bin/env node
// Runs `cargo <args>` and, when BUILDONCE_CARGO_OFFLINE_REGISTRY names a directory registry
// (e.g. Debian's /usr/share/cargo/registry), adds the flags that build from it offline.
// Without the variable cargo uses crates.io as usual. Argument arrays only, no shell.
import { spawnSync } from 'node:child_process';

const registry = process.env.BUILDONCE_CARGO_OFFLINE_REGISTRY;
const [sub, ...rest] = process.argv.slice(2);
const offline = registry
  ? ['--offline', '--config', 'source.crates-io.replace-with="buildonce-offline"', '--config', `source.buildonce-offline.directory=${JSON.stringify(registry)}`]
  : [];
const r = spawnSync('cargo', [sub, ...offline, ...rest], { stdio: 'inherit' });
process.exit(r.status ?? 1);
