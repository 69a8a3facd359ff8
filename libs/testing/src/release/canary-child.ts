/**
 * Test child (verify-metrics.int.spec.ts): runs one promote command in its own process, so the test
 * can send it a real SIGTERM during a canary step. Logs go to stdout, the one-line error to stderr.
 * Usage: canary-child.ts <workspaceRoot> <outputDir> <env>   (AWS settings and BUILDONCE_STORE from the environment)
 */
import { runPromoteCommand } from '@buildonce/commands';
import type { EnvironmentName, ProjectName } from '@buildonce/values';

const [workspaceRoot, outputDir, env] = process.argv.slice(2) as [string, string, string];
runPromoteCommand({
  project: 'svc' as ProjectName,
  workspaceRoot,
  env: env as EnvironmentName,
  outputDir,
  deploy: { target: 'lambda' },
  meta: { commit: '3333333333333333333333333333333333333333', runId: 'child', actor: 'canary-child' },
  log: (l) => process.stdout.write(`${l}\n`),
}).then(
  (r) => process.stdout.write(`result: ${r.status}\n`),
  (e: Error) => {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  },
);
