import type { StoredManifest } from '@buildonce/artifact';
import type { ResolvedEnvironment } from '@buildonce/config';
import type { ProjectName, Version } from '@buildonce/values';
import { PASS, type GateDecision } from './decision';

/** What the trust gate decides on: where the version is stored, read before its bytes are verified. */
export interface TrustFacts {
  environment: ResolvedEnvironment;
  project: ProjectName;
  version: Version;
  /** the version's stored manifest in the trusted namespace (undefined: not there) */
  trusted: Pick<StoredManifest, 'publish'> | undefined;
  /** URI of the version's preview folder when it is stored there (read only when it is not trusted) */
  previewUri: string | undefined;
}

/**
 * Gate `trust` (docs/architecture.md invariant 6): chain environments accept only the trusted
 * namespace, published by a trusted builder; preview environments take what there is.
 * @returns refused when a chain environment is offered a preview-only version or one an untrusted builder published
 */
export function trustGate(f: TrustFacts): GateDecision {
  if (f.environment.kind !== 'chain') return PASS;
  const name = f.environment.name;
  if (!f.trusted && f.previewUri)
    return {
      ok: false,
      reason: `version ${f.version} of ${f.project} is only in the preview namespace (${f.previewUri}): ${name} accepts only artifacts published by a trusted build (publish from main)`,
    };
  if (f.trusted && f.trusted.publish.trusted === false)
    return {
      ok: false,
      reason: `version ${f.version} of ${f.project} was published by an untrusted builder (${f.trusted.publish.builder}): ${name} accepts only trusted artifacts`,
    };
  return PASS;
}
