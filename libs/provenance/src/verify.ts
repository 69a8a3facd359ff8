import { z } from 'zod';
import { envelopePayload, IN_TOTO_PAYLOAD_TYPE, pae, parseEnvelope, type Envelope } from './dsse';
import { ProvenanceError, ProvenanceRefusedError, type ProvenanceRule } from './errors';
import { IMAGE_SUBJECT_NAME, statementFacts, statementSchema, type Statement, type StatementFacts } from './statement';
import { verifySignature, type VerificationKey } from './keys';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

/**
 * An environment's provenance policy (buildonce.json `environments[].provenance`).
 * `builders` / `refs` entries match exactly or with `*` wildcards; empty = any.
 */
export const provenancePolicySchema = z
  .object({
    /** refuse versions published without provenance */
    required: z.boolean().default(true),
    /** public keys allowed to have signed: PEM text, `file:<path>`, `kms:<key-id|arn|alias>` */
    keys: z.array(z.string().min(1)).min(1, 'list at least one public key (PEM, file:<path> or kms:<key-id|arn|alias>)'),
    /** allowed builder ids (GitHub workflow refs such as `acme/repo/.github/workflows/release.yml@refs/heads/main`, or `local:<host>`) */
    builders: z.array(z.string().min(1)).default([]),
    /** allowed source refs (e.g. `refs/heads/main`, `refs/tags/v*`) */
    refs: z.array(z.string().min(1)).default([]),
  })
  .strict();
export type ProvenancePolicy = z.infer<typeof provenancePolicySchema>;

/** What a promotion recorded about a version's provenance (additive field of a history entry). */
export const provenanceRecordSchema = z
  .object({
    /** a provenance envelope was stored with the version */
    signed: z.boolean(),
    /** the environment's policy checked it and every rule passed */
    verified: z.boolean(),
    /** rules that passed, in order */
    rules: z.array(z.string()),
    /** verification key that matched (config entry or fingerprint) */
    key: z.string().optional(),
    builder: z.string().optional(),
    ref: z.string().optional(),
    commit: z.string().optional(),
  })
  .strict();
export type ProvenanceRecord = z.infer<typeof provenanceRecordSchema>;

/** True when `value` matches `pattern` (`*` matches any run of characters, everything else literally). */
export function matchesPattern(pattern: string, value: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return re.test(value);
}

export interface VerifyProvenanceInput {
  project: ProjectName;
  version: Version;
  environment: EnvironmentName;
  /** stored envelope bytes; undefined when the version has none */
  envelope: Uint8Array | undefined;
  /** URI of the envelope, for messages */
  source: string;
  /** the version's stored files (already verified against the stored bytes): name, sha256 hex */
  files: readonly { name: string; sha256: string }[];
  /** image manifest digest (`sha256:<hex>`) when the artifact is an image */
  imageDigest?: string;
  policy: ProvenancePolicy;
  keys: readonly VerificationKey[];
}

export interface ProvenanceVerdict {
  record: ProvenanceRecord;
  facts?: StatementFacts;
  statement?: Statement;
}

/**
 * Verifies a version's provenance against an environment's policy, rule by rule, stopping at the
 * first failure (rules in {@link PROVENANCE_RULES} order):
 * present (an envelope exists, when `required`) → envelope (JSON DSSE, payloadType in-toto) →
 * signature (some signature over the DSSE PAE verifies with some allowed key) → statement (in-toto
 * Statement v1 + SLSA Provenance v1 naming this project and version) → subject (subjects are exactly
 * the stored files with equal sha256, plus the image digest) → builder → ref.
 * A missing envelope where provenance is not required is `{ signed: false, verified: false }`.
 * @throws ProvenanceRefusedError naming the failed rule (one line)
 */
export function verifyProvenance(i: VerifyProvenanceInput): ProvenanceVerdict {
  const what = `${i.project}@${i.version}`;
  const refuse = (rule: ProvenanceRule, why: string, fix: string) =>
    new ProvenanceRefusedError(rule, `provenance rule "${rule}" failed for ${what} in ${i.environment}: ${why}; ${fix}`);
  const passed: ProvenanceRule[] = [];

  if (!i.envelope) {
    if (i.policy.required) throw refuse('present', `${i.source} is missing (published unsigned)`, 'publish a new version with BUILDONCE_SIGNING_KEY set');
    return { record: { signed: false, verified: false, rules: [] } };
  }
  passed.push('present');

  let env: Envelope;
  try {
    env = parseEnvelope(i.envelope, i.source);
  } catch (e) {
    throw refuse('envelope', (e as Error).message, 'the stored envelope is unusable: publish a new version');
  }
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE)
    throw refuse('envelope', `payloadType is "${env.payloadType}", not ${IN_TOTO_PAYLOAD_TYPE}`, 'publish a new version with buildonce');
  passed.push('envelope');

  const payload = envelopePayload(env);
  const signed = pae(env.payloadType, payload);
  let key: VerificationKey | undefined;
  for (const s of env.signatures) {
    const sig = Buffer.from(s.sig, 'base64');
    key = i.keys.find((k) => verifySignature(k.key, signed, sig));
    if (key) break;
  }
  if (!key) {
    const ids = env.signatures.map((s) => s.keyid ?? '?').join(', ') || 'no signatures';
    throw refuse(
      'signature',
      `no signature (${ids}) verifies with a key allowed in ${i.environment} (${i.keys.map((k) => k.id).join(', ')})`,
      'the payload was changed after signing or another key signed it: publish from a builder holding an allowed key',
    );
  }
  passed.push('signature');

  let statement: Statement;
  try {
    const r = statementSchema.safeParse(JSON.parse(payload.toString('utf8')));
    if (!r.success) {
      const is = r.error.issues[0];
      throw new ProvenanceError(`${is?.path.join('.') || '(root)'}: ${is?.message ?? 'invalid'}`);
    }
    statement = r.data;
  } catch (e) {
    throw refuse(
      'statement',
      `the signed payload is not an in-toto Statement v1 with SLSA Provenance v1 (${(e as Error).message.split('\n')[0]})`,
      'publish a new version with buildonce',
    );
  }
  const facts = statementFacts(statement);
  if (facts.project !== i.project || facts.version !== i.version) {
    throw refuse('statement', `the statement is for ${facts.project}@${facts.version}`, 'the envelope belongs to another version: publish a new version');
  }
  passed.push('statement');

  const expected = new Map(i.files.map((f) => [f.name, f.sha256]));
  if (i.imageDigest) expected.set(IMAGE_SUBJECT_NAME, i.imageDigest.replace(/^sha256:/, ''));
  for (const s of statement.subject) {
    const want = expected.get(s.name);
    if (want === undefined)
      throw refuse('subject', `subject ${s.name} is not a stored file of the version`, 'the statement does not describe these bytes: publish a new version');
    if (s.digest.sha256 !== want)
      throw refuse(
        'subject',
        `subject ${s.name} has sha256 ${s.digest.sha256 ?? '(none)'} but the stored file has ${want}`,
        'the statement does not describe these bytes: publish a new version',
      );
  }
  for (const name of expected.keys()) {
    if (!statement.subject.some((s) => s.name === name))
      throw refuse('subject', `stored file ${name} is not a subject of the statement`, 'publish a new version');
  }
  passed.push('subject');

  if (i.policy.builders.length && !i.policy.builders.some((p) => matchesPattern(p, facts.builder))) {
    throw refuse(
      'builder',
      `builder "${facts.builder}" is not allowed (allowed: ${i.policy.builders.join(', ')})`,
      'publish from an allowed workflow or add the builder to provenance.builders',
    );
  }
  passed.push('builder');

  if (i.policy.refs.length && !(facts.ref && i.policy.refs.some((p) => matchesPattern(p, facts.ref!)))) {
    throw refuse('ref', `ref "${facts.ref ?? '(none)'}" is not allowed (allowed: ${i.policy.refs.join(', ')})`, 'publish from an allowed branch or tag');
  }
  passed.push('ref');

  return {
    record: {
      signed: true,
      verified: true,
      rules: passed,
      key: key.id,
      builder: facts.builder,
      ...(facts.ref ? { ref: facts.ref } : {}),
      ...(facts.commit ? { commit: facts.commit } : {}),
    },
    facts,
    statement,
  };
}

/**
 * Reads a statement's facts from envelope bytes without checking any signature (for `buildonce
 * verify` without an environment).
 * @throws ProvenanceError for a malformed envelope or statement
 */
export function inspectEnvelope(bytes: Uint8Array, source: string): { envelope: Envelope; statement: Statement; facts: StatementFacts } {
  const envelope = parseEnvelope(bytes, source);
  let value: unknown;
  try {
    value = JSON.parse(envelopePayload(envelope).toString('utf8'));
  } catch (e) {
    throw new ProvenanceError(`${source}: the payload is not JSON (${(e as Error).message})`);
  }
  const r = statementSchema.safeParse(value);
  if (!r.success)
    throw new ProvenanceError(
      `${source}: not an in-toto Statement v1 with SLSA Provenance v1: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`,
    );
  return { envelope, statement: r.data, facts: statementFacts(r.data) };
}
