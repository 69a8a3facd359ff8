import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { ConfigError } from '@buildonce/errors';
import { projectKey } from '@buildonce/store';
import type { Verdict } from '@buildonce/ledger';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

/** Facts a measured check reads about the deploy it verifies. */
export interface MeasureContext {
  project: ProjectName;
  environment: EnvironmentName;
  version: Version;
  /** Lambda target only: the function, alias, the new version number and the version serving the rest of the canary's traffic */
  lambda?: { functionName: string; alias: string; executedVersion: string; baselineVersion?: string };
  /** CloudWatch client of the command's AWS clients (libs/aws) */
  cloudwatch: () => CloudWatchClient;
  /** ms since the epoch (injectable in tests) */
  now?: () => number;
}

/** One measurement before the step and time are attached. */
export interface Reading {
  verdict: Verdict;
  value?: number;
  baseline?: number;
  samples?: number;
  /** CloudWatch API calls made */
  calls: number;
  detail: string;
}

/** Template variables of measured checks (alarm names, metric dimension values). */
export type TemplateVars = { project: ProjectName; env: EnvironmentName; version: Version; functionName?: string; alias?: string; executedVersion?: string };

/**
 * Expands `{project}` (the project key, as in function names), `{env}`, `{version}` and, on the Lambda
 * target, `{functionName}`, `{alias}`, `{executedVersion}` (pure).
 * @throws ConfigError naming the placeholder and the ones that exist here
 */
export function expandCheckTemplate(template: string, vars: TemplateVars): string {
  return template.replace(/\{([^}]*)\}/g, (_, k: string) => {
    const v = k === 'project' ? projectKey(vars.project) : (vars as Record<string, string | undefined>)[k];
    if (v === undefined) {
      const known = Object.keys(vars).filter((x) => (vars as Record<string, string | undefined>)[x] !== undefined);
      throw new ConfigError(`unknown placeholder {${k}} in "${template}": use ${known.map((x) => `{${x}}`).join(', ')}`);
    }
    return v;
  });
}

/** The template variables of a context (executedVersion: the new version, or `baseline` for the comparison). */
export function templateVars(ctx: Pick<MeasureContext, 'project' | 'environment' | 'version' | 'lambda'>, executedVersion?: string): TemplateVars {
  return {
    project: ctx.project,
    env: ctx.environment,
    version: ctx.version,
    ...(ctx.lambda ? { functionName: ctx.lambda.functionName, alias: ctx.lambda.alias, executedVersion: executedVersion ?? ctx.lambda.executedVersion } : {}),
  };
}

/** `Name: message` of an AWS error, one line. */
export function awsErrorLine(e: unknown): string {
  const err = e as Error & { $metadata?: { httpStatusCode?: number } };
  const status = err.$metadata?.httpStatusCode;
  const msg = (err.message ?? String(e)).replace(/\s+/g, ' ').trim().slice(0, 160);
  return `${err.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}: ${msg}`;
}
