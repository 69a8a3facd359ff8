import { z } from 'zod';
import type { ProjectName, Version } from '@buildonce/values';

/**
 * in-toto Statement v1 with a SLSA Provenance v1 predicate.
 * Sources: https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md and
 * https://slsa.dev/spec/v1.0/provenance (field names and shapes as specified there).
 */

/** `_type` of an in-toto Statement v1. */
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
/** `predicateType` of SLSA Provenance v1. */
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
/**
 * buildonce's SLSA `buildType`: an Nx target of a project built once, its version being the Nx task
 * hash. `externalParameters` = { project, target, version, options, ref? }; `internalParameters` =
 * { kind, runtime, architecture, namespace, pr? }; `resolvedDependencies` = the source commit, lock
 * files' sha256 and the toolchain identity. Documented in docs/provenance.md.
 */
export const BUILD_TYPE = 'https://buildonce.dev/build-types/nx-target/v1';

const digestSet = z.record(z.string(), z.string());

/** SLSA ResourceDescriptor (https://github.com/in-toto/attestation/blob/main/spec/v1/resource_descriptor.md). */
export const resourceDescriptorSchema = z
  .object({
    name: z.string().optional(),
    uri: z.string().optional(),
    digest: digestSet.optional(),
    annotations: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();
export type ResourceDescriptor = z.infer<typeof resourceDescriptorSchema>;

/** The parts of a Statement v1 + SLSA Provenance v1 that buildonce reads; unknown fields are kept. */
export const statementSchema = z
  .object({
    _type: z.literal(STATEMENT_TYPE),
    subject: z.array(z.object({ name: z.string().min(1), digest: digestSet }).loose()).min(1),
    predicateType: z.literal(SLSA_PROVENANCE_V1),
    predicate: z
      .object({
        buildDefinition: z
          .object({
            buildType: z.string().min(1),
            externalParameters: z
              .object({
                project: z.string(),
                target: z.string(),
                version: z.string(),
                options: z.record(z.string(), z.unknown()).optional(),
                ref: z.string().optional(),
              })
              .loose(),
            internalParameters: z.record(z.string(), z.unknown()).optional(),
            resolvedDependencies: z.array(resourceDescriptorSchema).optional(),
          })
          .loose(),
        runDetails: z
          .object({
            builder: z.object({ id: z.string().min(1) }).loose(),
            metadata: z.object({ invocationId: z.string().optional(), startedOn: z.string().optional(), finishedOn: z.string().optional() }).loose().optional(),
          })
          .loose(),
      })
      .loose(),
  })
  .loose();
export type Statement = z.infer<typeof statementSchema>;

/** Name of the subject that stands for an OCI image's manifest digest (`image@sha256:…` in the manifest). */
export const IMAGE_SUBJECT_NAME = 'oci-image';

/** What a statement is built from (every value comes from the publish step; nothing is read here). */
export interface StatementInput {
  project: ProjectName;
  /** the Nx target that built the version (e.g. `build`) */
  target: string;
  /** the version (Nx task hash) */
  version: Version;
  /** the stored files: name, sha256 hex */
  files: { name: string; sha256: string }[];
  /** image manifest digest `sha256:<hex>` when the artifact is an OCI image */
  imageDigest?: string;
  /** the build target's options (as the executor saw them); default {} */
  options?: Record<string, unknown>;
  /** source ref that was built, e.g. `refs/heads/main` */
  ref?: string;
  internalParameters?: Record<string, unknown>;
  resolvedDependencies: ResourceDescriptor[];
  /** builder id: the GitHub workflow ref in CI, `local:<host>` otherwise */
  builderId: string;
  invocationId: string;
  startedOn: Date;
  finishedOn: Date;
}

/**
 * Builds the Statement (pure). Subjects: every stored file as `{ name, digest: { sha256 } }`, plus
 * `{ name: "oci-image", digest: { sha256 } }` for an image digest.
 * @throws RangeError for a malformed image digest
 */
export function buildStatement(i: StatementInput): Statement {
  const subject = i.files.map((f) => ({ name: f.name, digest: { sha256: f.sha256 } }));
  if (i.imageDigest) {
    const m = /^sha256:([0-9a-f]{64})$/.exec(i.imageDigest);
    if (!m) throw new RangeError(`image digest "${i.imageDigest}" is not sha256:<64 hex>`);
    subject.push({ name: IMAGE_SUBJECT_NAME, digest: { sha256: m[1]! } });
  }
  return {
    _type: STATEMENT_TYPE,
    subject,
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: { project: i.project, target: i.target, version: i.version, options: i.options ?? {}, ...(i.ref ? { ref: i.ref } : {}) },
        internalParameters: i.internalParameters ?? {},
        resolvedDependencies: i.resolvedDependencies,
      },
      runDetails: {
        builder: { id: i.builderId },
        metadata: { invocationId: i.invocationId, startedOn: i.startedOn.toISOString(), finishedOn: i.finishedOn.toISOString() },
      },
    },
  };
}

/** The facts of a statement a human (and a history entry) cares about. */
export interface StatementFacts {
  project: string;
  version: string;
  target: string;
  builder: string;
  ref?: string;
  commit?: string;
  /** the built work tree differed from `commit` (uncommitted changes) */
  dirty?: boolean;
  invocationId?: string;
  startedOn?: string;
  finishedOn?: string;
  subjects: { name: string; sha256?: string }[];
}

/** Extracts {@link StatementFacts} (the commit is the `gitCommit` digest of a resolved dependency). */
export function statementFacts(s: Statement): StatementFacts {
  const b = s.predicate.buildDefinition;
  const source = b.resolvedDependencies?.find((d) => typeof d.digest?.gitCommit === 'string');
  const commit = source?.digest?.gitCommit;
  const md = s.predicate.runDetails.metadata;
  return {
    project: b.externalParameters.project,
    version: b.externalParameters.version,
    target: b.externalParameters.target,
    builder: s.predicate.runDetails.builder.id,
    ...(b.externalParameters.ref ? { ref: b.externalParameters.ref } : {}),
    ...(commit ? { commit } : {}),
    ...(source?.annotations?.dirty === true ? { dirty: true } : {}),
    ...(md?.invocationId ? { invocationId: md.invocationId } : {}),
    ...(md?.startedOn ? { startedOn: md.startedOn } : {}),
    ...(md?.finishedOn ? { finishedOn: md.finishedOn } : {}),
    subjects: s.subject.map((x) => ({ name: x.name, ...(x.digest.sha256 ? { sha256: x.digest.sha256 } : {}) })),
  };
}
