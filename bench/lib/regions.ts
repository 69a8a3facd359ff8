/**
 * Helper of bench/regions.sh (run from the bench workspace, whose buildonce.json defines the environments).
 *   publish <dir> <version>        writes <dir>/artifact.json for <dir>/bootstrap.zip (project rust-scorer) and
 *                                  publishes it to the workspace store (BUILDONCE_STORE); prints "published"
 *   promote <dir> <env>            runPromoteCommand of that version to <env> (Lambda target), as the promote
 *                                  executor does; prints one JSON line { ms, copies } (copies: region → home|present|copied)
 */
import { writeBuildManifest } from '@buildonce/artifact';
import { runPromoteCommand, runPublishCommand } from '@buildonce/commands';
import { parseEnvironmentName, parseProjectName, parseVersion } from '@buildonce/values';
import { join } from 'node:path';

async function main(): Promise<void> {
  const [cmd, dir, arg] = process.argv.slice(2);
  const project = parseProjectName('rust-scorer');
  const workspaceRoot = process.cwd();
  const meta = { commit: null, runId: 'bench', actor: 'bench' };
  if (cmd === 'publish') {
    await writeBuildManifest(join(dir!, 'bootstrap.zip'), {
      project,
      version: parseVersion(arg!),
      kind: 'lambda-zip',
      runtime: 'provided.al2023',
      architecture: 'arm64',
      handler: 'bootstrap',
      toolchain: 'bench',
    });
    await runPublishCommand({ project, workspaceRoot, outputDir: dir!, log: () => {} });
    console.log('published');
    return;
  }
  if (cmd === 'promote') {
    const t0 = Date.now();
    const r = await runPromoteCommand({
      project,
      workspaceRoot,
      env: parseEnvironmentName(arg!),
      outputDir: dir!,
      deploy: { target: 'lambda' },
      meta,
      log: (l) => process.env.BENCH_VERBOSE && console.error(l),
    });
    const ms = Date.now() - t0;
    if (r.status !== 'promoted') throw new Error(`promotion to ${arg} ended ${r.status}`);
    const copies = Object.fromEntries(Object.entries(r.entry.regions ?? {}).map(([k, v]) => [k, v.copy]));
    console.log(JSON.stringify({ ms, copies }));
    return;
  }
  throw new Error(`usage: regions.js publish <dir> <version> | promote <dir> <env>`);
}

main().catch((e: unknown) => {
  console.error((e as Error)?.stack ?? String(e));
  process.exit(1);
});
