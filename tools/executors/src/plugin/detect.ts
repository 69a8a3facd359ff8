import { parse as parseToml } from 'smol-toml';

/** Deploy target of a Node app, from the `buildonce.deploy` field of its package.json. */
export type NodeDeploy = 'ec2' | 'local';

/** What the plugin infers targets from: one deployable found in a Cargo.toml or a package.json. */
export type Deployable =
  | {
      kind: 'rust-lambda';
      /** crate name (`[package].name`): the project name when no project.json names it */
      name: string;
      architecture: 'x86_64' | 'arm64';
      runtime: string;
      /** the `[[bin]]` packaged as the Lambda's `bootstrap` */
      binary: string;
      /** Lambda function name template ({project}, {env}) */
      functionName: string;
      /** Lambda alias template ({project}, {env}) */
      alias: string;
    }
  | {
      kind: 'node-tarball';
      /** package name (may be scoped: `@acme/api`) */
      name: string;
      deploy: NodeDeploy;
      /** entry source file, relative to the project root ('' = the executor's default src/main.ts) */
      main: string;
      /** SSM parameter template of the EC2 release pointer ('' = the executor's default) */
      parameterName: string;
    }
  | {
      kind: 'oci-image';
      /** the project.json `name` (undefined: Nx names the project) */
      name?: string;
      /** names of the project.json targets that run an `oci-image` executor, with that executor */
      imageTargets: { target: string; executor: string }[];
    };

/** A config file that declares a deployable but declares it wrong: one line naming the file and the fix. */
export class DeployableConfigError extends Error {
  override name = 'DeployableConfigError';
}

const LAMBDA_KEYS = new Set(['architecture', 'runtime', 'binary', 'function-name', 'alias']);
const NODE_KEYS = new Set(['deploy', 'main', 'parameterName']);

function str(file: string, key: string, v: unknown, dflt: string): string {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || !v) throw new DeployableConfigError(`${file}: ${key} must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Reads a Cargo.toml and says whether it declares an AWS Lambda: a `[package.metadata.lambda]` table
 * (keys: architecture "x86_64"|"arm64", runtime, binary, function-name, alias — all optional) or a
 * `[[bin]]` named `bootstrap` (the Lambda custom-runtime convention). Format: TOML 1.0 (Cargo manifest
 * reference, https://doc.rust-lang.org/cargo/reference/manifest.html#the-metadata-table).
 * @param file workspace-relative path (for messages)
 * @param text the file's contents
 * @returns the deployable, or null when the crate declares no Lambda (or is a virtual workspace manifest)
 * @throws DeployableConfigError on invalid TOML or invalid metadata values
 */
export function detectRustLambda(file: string, text: string): Extract<Deployable, { kind: 'rust-lambda' }> | null {
  // cheap pre-check: most crates in a workspace are not Lambdas and need no TOML parse
  if (!text.includes('metadata.lambda') && !/\bbootstrap\b/.test(text)) return null;
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    throw new DeployableConfigError(`${file}: invalid TOML (${(e as Error).message.split('\n')[0]}): fix the file or remove [package.metadata.lambda]`);
  }
  const pkg = doc.package as Record<string, unknown> | undefined;
  if (!pkg || typeof pkg.name !== 'string') return null;
  const meta = (pkg.metadata as Record<string, unknown> | undefined)?.lambda;
  const bins = Array.isArray(doc.bin) ? (doc.bin as Array<Record<string, unknown>>) : [];
  const hasBootstrapBin = bins.some((b) => b.name === 'bootstrap');
  if (meta === undefined && !hasBootstrapBin) return null;
  if (meta !== undefined && (typeof meta !== 'object' || meta === null || Array.isArray(meta))) {
    throw new DeployableConfigError(`${file}: [package.metadata.lambda] must be a table`);
  }
  const m = (meta ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(m)) {
    if (!LAMBDA_KEYS.has(k))
      throw new DeployableConfigError(`${file}: unknown key "${k}" in [package.metadata.lambda] (known: ${[...LAMBDA_KEYS].join(', ')})`);
  }
  const architecture = str(file, 'architecture', m.architecture, 'x86_64');
  if (architecture !== 'x86_64' && architecture !== 'arm64') {
    throw new DeployableConfigError(`${file}: [package.metadata.lambda] architecture must be "x86_64" or "arm64", got "${architecture}"`);
  }
  return {
    kind: 'rust-lambda',
    name: pkg.name,
    architecture,
    runtime: str(file, 'runtime', m.runtime, 'provided.al2023'),
    binary: str(file, 'binary', m.binary, 'bootstrap'),
    functionName: str(file, 'function-name', m['function-name'], '{project}-{env}'),
    alias: str(file, 'alias', m.alias, '{env}'),
  };
}

/**
 * Reads a package.json and says whether the app opted into buildonce with a `buildonce` field:
 * `{ "deploy": "ec2" | "local", "main"?: "<project-relative entry .ts/.js>", "parameterName"?: "<SSM template>" }`.
 * @param file workspace-relative path (for messages)
 * @param text the file's contents
 * @returns the deployable, or null when there is no `buildonce` field
 * @throws DeployableConfigError on invalid JSON, a missing name or invalid field values
 */
export function detectNodeApp(file: string, text: string): Extract<Deployable, { kind: 'node-tarball' }> | null {
  if (!text.includes('"buildonce"')) return null;
  let pkg: Record<string, unknown>;
  try {
    pkg = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new DeployableConfigError(`${file}: invalid JSON (${(e as Error).message})`);
  }
  const cfg = pkg.buildonce;
  if (cfg === undefined) return null;
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) {
    throw new DeployableConfigError(`${file}: "buildonce" must be an object like { "deploy": "ec2" }`);
  }
  const c = cfg as Record<string, unknown>;
  for (const k of Object.keys(c)) {
    if (!NODE_KEYS.has(k)) throw new DeployableConfigError(`${file}: unknown key "${k}" in "buildonce" (known: ${[...NODE_KEYS].join(', ')})`);
  }
  if (c.deploy !== 'ec2' && c.deploy !== 'local') {
    throw new DeployableConfigError(`${file}: "buildonce".deploy must be "ec2" or "local", got ${JSON.stringify(c.deploy)}`);
  }
  if (typeof pkg.name !== 'string' || !pkg.name) throw new DeployableConfigError(`${file}: a package with a "buildonce" field needs a "name"`);
  return {
    kind: 'node-tarball',
    name: pkg.name,
    deploy: c.deploy,
    main: str(file, 'buildonce.main', c.main, ''),
    parameterName: str(file, 'buildonce.parameterName', c.parameterName, ''),
  };
}

/**
 * Reads a project.json and says whether it declares an OCI image deployable: a target whose executor is an
 * `oci-image` executor (`@buildonce/nx:oci-image`; the plugin keeps only those of its own package). The image's
 * options (base image, platform, files) stay in that target, which is truly the project's; the plugin infers
 * the rest (build inputs/outputs/dependencies and the release targets).
 * @param file workspace-relative path (for messages)
 * @param text the file's contents
 * @returns the deployable, or null when no target runs an `oci-image` executor
 * @throws DeployableConfigError on invalid JSON
 */
export function detectImageProject(file: string, text: string): Extract<Deployable, { kind: 'oci-image' }> | null {
  if (!text.includes(':oci-image"')) return null;
  let pj: { name?: unknown; targets?: Record<string, { executor?: unknown } | null> };
  try {
    pj = JSON.parse(text) as typeof pj;
  } catch (e) {
    throw new DeployableConfigError(`${file}: invalid JSON (${(e as Error).message})`);
  }
  const imageTargets = Object.entries(pj.targets ?? {})
    .filter(([, t]) => typeof t?.executor === 'string' && t.executor.endsWith(':oci-image'))
    .map(([target, t]) => ({ target, executor: t!.executor as string }));
  if (imageTargets.length === 0) return null;
  return { kind: 'oci-image', ...(typeof pj.name === 'string' && pj.name ? { name: pj.name } : {}), imageTargets };
}
