#!/usr/bin/env node
// Prints the identity of the Rust toolchain that builds a Rust Lambda (libs/rust/src/rust-toolchain.mjs):
// cargo -vV, rustc -vV, target triple, linker version, resolved exactly as the build resolves them.
// Meant as an Nx `runtime` input of Rust Lambda build targets, so the version changes with the toolchain:
//   { "runtime": "node tools/scripts/rust-toolchain.mjs --cargo-dir apps/rust-scorer --architecture arm64 --runtime provided.al2023" }
// Options (same meaning as the cargo-lambda-zip executor's): --cargo-dir (relative to the cwd, default .),
// --architecture x86_64|arm64 (default x86_64), --runtime (default provided.al2023), --toolchain,
// --cargo-lambda auto|always|never (default auto), --json (the whole resolution as JSON).
// Always exits 0 with the identity (missing pieces appear as `problem:` lines; the build refuses them),
// except for invalid arguments (exit 2).
import { parseArgs } from 'node:util';
import { resolveRustToolchain } from '../../libs/rust/src/rust-toolchain.mjs';

let values;
try {
  ({ values } = parseArgs({
    options: {
      'cargo-dir': { type: 'string', default: '.' },
      architecture: { type: 'string', default: 'x86_64' },
      runtime: { type: 'string', default: 'provided.al2023' },
      toolchain: { type: 'string', default: '' },
      'cargo-lambda': { type: 'string', default: 'auto' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  }));
  if (!['auto', 'always', 'never'].includes(values['cargo-lambda'])) throw new Error('--cargo-lambda must be auto, always or never');
  const t = resolveRustToolchain({
    cargoDir: values['cargo-dir'],
    architecture: values.architecture,
    runtime: values.runtime,
    toolchain: values.toolchain,
    cargoLambda: values['cargo-lambda'],
  });
  process.stdout.write((values.json ? JSON.stringify(t, null, 2) : t.identity) + '\n');
} catch (e) {
  process.stderr.write(`rust-toolchain: ${e.message}\n`);
  process.exit(2);
}
