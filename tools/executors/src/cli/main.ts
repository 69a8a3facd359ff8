import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { ConfigError, describeFailure } from '@buildonce/errors';
import { dirname, join } from 'node:path';
import {
  baseCommitForEnv,
  collectWorkspaceReleases,
  inspectVersionProvenance,
  renderMarkdown,
  renderProvenanceReport,
  renderTable,
} from '@buildonce/promotion';
import { openWorkspaceStore, runEcrLifecycleCommand, runResolveCommand, runRetentionCommand } from '@buildonce/commands';
import { parseEnvironmentName, parseProjectName, parseVersion } from '@buildonce/values';
import { runUiCommand } from '@buildonce/ui';

const USAGE = `usage: buildonce <command> [options]
  base --env=<env> [--store=<url>]
      the commit to use as \`nx affected --base\` for <env> (empty output: nothing promoted yet)
  releases [--env=<env>] [--project=<p>]... [--markdown | --json] [--store=<url>]
      current release of every environment (pipeline order), or one environment's history
  resolve --project=<p> --env=<env> [--region=<aws region>] [--json] [--store=<url>]
      the artifact URI current in <env> (--json: project, environment, version, uri, sha256)
  retention [--older-than=<days>] [--keep=<n>] [--pr=<n>] [--project=<p>]... [--store=<url>] [--dry-run]
  verify <project> <version> [--env=<env>] [--json] [--store=<url>]
      the version's signed provenance (builder, ref, commit, subjects) and the verdict of <env>'s policy
      (default: every environment with a provenance policy); exit 1 when refused
  ecr-lifecycle [--registry=<account>.dkr.ecr.<region>.amazonaws.com/<repo>] [--keep-last=30] [--untagged-days=1] [--dry-run]
      writes an ECR lifecycle policy that never expires protected (keep-<version>) images (default: BUILDONCE_REGISTRY)
  ui [--port=4380] [--host=127.0.0.1] [--static=<dir>] [--store=<url>]
      read-only release dashboard in a browser (pipeline, histories, versions, diffs); --static writes it
      as a static site; a --host other than loopback requires BUILDONCE_UI_TOKEN
  help, --help, -h
Machine output (--json, base, resolve) is the only thing on stdout; logs go to stderr.
`;

/** Nearest directory upwards from `start` holding nx.json (the workspace root). */
export function findWorkspaceRoot(start = process.cwd()): string {
  let dir = start;
  while (!existsSync(join(dir, 'nx.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new ConfigError(`no nx.json found above ${start}: run buildonce inside the workspace`);
    dir = up;
  }
  return dir;
}

/**
 * Parses a numeric option. Only plain decimal digits count (`Number('')` is 0, which once made
 * `--keep= --older-than=` delete everything unprotected).
 * @param kind `integer` (digits) or `decimal` (digits with an optional fraction)
 * @throws ConfigError naming the option and the value when it is empty or not such a number
 */
export function numberOption(name: string, v: string | undefined, dflt: number, kind: 'integer' | 'decimal' = 'integer'): number {
  if (v === undefined) return dflt;
  const ok = kind === 'integer' ? /^[0-9]+$/.test(v) : /^[0-9]+(\.[0-9]+)?$/.test(v);
  if (!ok) throw new ConfigError(`--${name} must be ${kind === 'integer' ? 'a whole number' : 'a number'} >= 0, got "${v}"`);
  return Number(v);
}

/**
 * Entry point of the `buildonce` bin (workspace-wide commands).
 * @param argv arguments after the binary name
 * @returns process exit code (0 success, 1 failure, 2 usage error)
 */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    (command === undefined ? process.stderr : process.stdout).write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    if (command === 'base') {
      const { values } = parseArgs({ args: rest, options: { env: { type: 'string' }, store: { type: 'string' } }, strict: true });
      if (!values.env) throw new ConfigError('--env=<environment> is required');
      const env = parseEnvironmentName(values.env, '--env');
      const workspaceRoot = findWorkspaceRoot();
      const { store } = await openWorkspaceStore({ workspaceRoot, store: values.store });
      const sha = await baseCommitForEnv({ store, env, workspaceRoot });
      process.stdout.write(sha ? `${sha}\n` : '');
      if (!sha) process.stderr.write(`buildonce base: nothing has been promoted to ${values.env} yet (promote every project)\n`);
      return 0;
    }
    if (command === 'releases') {
      const { values } = parseArgs({
        args: rest,
        options: {
          env: { type: 'string' },
          project: { type: 'string', multiple: true },
          markdown: { type: 'boolean' },
          json: { type: 'boolean' },
          store: { type: 'string' },
        },
        strict: true,
      });
      const env = values.env === undefined ? undefined : parseEnvironmentName(values.env, '--env');
      const projects = values.project?.map(parseProjectName);
      const workspaceRoot = findWorkspaceRoot();
      const { store, config } = await openWorkspaceStore({ workspaceRoot, store: values.store });
      const all = await collectWorkspaceReleases({ store, env, order: config.environments.map((e) => e.name) });
      const rows = [...all].filter(([p]) => !projects || projects.includes(p));
      if (values.json) process.stdout.write(JSON.stringify(Object.fromEntries(rows), null, 2) + '\n');
      else if (!rows.length) process.stdout.write(values.markdown ? '_no releases recorded yet_\n' : 'no releases recorded yet\n');
      else for (const [p, r] of rows) process.stdout.write((values.markdown ? renderMarkdown(r, p) : renderTable(r, p)) + '\n');
      return 0;
    }
    if (command === 'resolve') {
      const { values } = parseArgs({
        args: rest,
        options: { env: { type: 'string' }, project: { type: 'string' }, json: { type: 'boolean' }, store: { type: 'string' }, region: { type: 'string' } },
        strict: true,
      });
      if (!values.project) throw new ConfigError('--project=<project> is required');
      if (!values.env) throw new ConfigError('--env=<environment> is required');
      const r = await runResolveCommand({
        project: parseProjectName(values.project),
        env: parseEnvironmentName(values.env, '--env'),
        workspaceRoot: findWorkspaceRoot(),
        store: values.store,
        ...(values.region ? { region: values.region } : {}),
        log: (l) => process.stderr.write(`${l}\n`),
        print: values.json ? () => undefined : (t) => process.stdout.write(`${t}\n`),
      });
      if (values.json) {
        const out = {
          project: values.project,
          environment: r.entry.environment,
          version: r.entry.version,
          uri: r.artifactUri,
          sha256: r.entry.artifact.sha256,
        };
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
      }
      return 0;
    }
    if (command === 'verify') {
      const { values, positionals } = parseArgs({
        args: rest,
        options: { env: { type: 'string' }, json: { type: 'boolean' }, store: { type: 'string' } },
        allowPositionals: true,
        strict: true,
      });
      const [project, version, ...extra] = positionals;
      if (!project || !version || extra.length) throw new ConfigError('usage: buildonce verify <project> <version> [--env=<env>] [--json]');
      const parsed = {
        project: parseProjectName(project),
        version: parseVersion(version),
        env: values.env === undefined ? undefined : parseEnvironmentName(values.env, '--env'),
      };
      const { store, config, aws } = await openWorkspaceStore({ workspaceRoot: findWorkspaceRoot(), store: values.store });
      const report = await inspectVersionProvenance({ store, config, ...parsed, kms: aws.kms });
      process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : renderProvenanceReport(report).join('\n') + '\n');
      return report.ok ? 0 : 1;
    }
    if (command === 'retention') {
      const { values } = parseArgs({
        args: rest,
        options: {
          'older-than': { type: 'string' },
          keep: { type: 'string' },
          pr: { type: 'string' },
          project: { type: 'string', multiple: true },
          store: { type: 'string' },
          'dry-run': { type: 'boolean', default: false },
        },
        strict: true,
      });
      await runRetentionCommand({
        workspaceRoot: findWorkspaceRoot(),
        projects: values.project,
        olderThanDays: numberOption('older-than', values['older-than'], 30, 'decimal'),
        keep: numberOption('keep', values.keep, 10),
        pr: values.pr === undefined ? undefined : numberOption('pr', values.pr, 0),
        store: values.store,
        dryRun: values['dry-run'] ?? false,
        log: (l) => process.stdout.write(`${l}\n`),
      });
      return 0;
    }
    if (command === 'ecr-lifecycle') {
      const { values } = parseArgs({
        args: rest,
        options: {
          registry: { type: 'string' },
          'keep-last': { type: 'string' },
          'untagged-days': { type: 'string' },
          'dry-run': { type: 'boolean', default: false },
        },
        strict: true,
      });
      const written = await runEcrLifecycleCommand({
        workspaceRoot: findWorkspaceRoot(),
        ...(values.registry ? { registry: values.registry } : {}),
        keepLast: numberOption('keep-last', values['keep-last'], 30),
        untaggedDays: numberOption('untagged-days', values['untagged-days'], 1),
        dryRun: values['dry-run'],
      });
      if (values['dry-run']) console.log(written[0]!.policy);
      for (const w of written)
        console.log(
          values['dry-run']
            ? `dry run: would write it to ${w.repository} (${w.region})`
            : `wrote the lifecycle policy of ${w.repository} (${w.region}): keep-* images never expire, untagged after ${values['untagged-days'] ?? 1} day(s), newest ${values['keep-last'] ?? 30} kept`,
        );
      return 0;
    }
    if (command === 'ui') {
      const { values } = parseArgs({
        args: rest,
        options: { port: { type: 'string' }, host: { type: 'string' }, static: { type: 'string' }, store: { type: 'string' } },
        strict: true,
      });
      const log = (l: string) => process.stderr.write(`${l}\n`);
      const r = await runUiCommand({
        workspaceRoot: findWorkspaceRoot(),
        store: values.store,
        staticDir: values.static,
        host: values.host,
        port: values.port === undefined ? undefined : numberOption('port', values.port, 0),
        log,
      });
      if (!('server' in r)) return 0;
      const server = r.server;
      // serves until interrupted (Ctrl-C / SIGTERM), then closes its connections and exits 0
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await server.close();
      return 0;
    }
    process.stderr.write(`buildonce: unknown command "${command}" (buildonce --help lists the commands)\n`);
    return 2;
  } catch (e) {
    if ((e as NodeJS.ErrnoException)?.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`buildonce ${command}: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    for (const line of describeFailure(e, { prefix: `buildonce ${command}: `, verbose: process.argv.includes('--verbose') }).lines) console.error(line);
    return 1;
  }
}
