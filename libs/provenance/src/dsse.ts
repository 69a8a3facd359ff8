import { z } from 'zod';
import { ProvenanceError } from './errors';

/**
 * DSSE (Dead Simple Signing Envelope) v1.
 * Source: https://github.com/secure-systems-lab/dsse/blob/master/protocol.md and envelope.md.
 */

/** payloadType of an in-toto statement inside a DSSE envelope. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

/** A DSSE envelope as stored (`provenance.intoto.json`). `payload` and `sig` are standard base64. */
export interface Envelope {
  payloadType: string;
  payload: string;
  signatures: { keyid?: string; sig: string }[];
}

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');

export const envelopeSchema = z
  .object({
    payloadType: z.string().min(1),
    payload: base64,
    signatures: z.array(z.object({ keyid: z.string().optional(), sig: base64.min(1) }).loose()),
  })
  .loose();

/**
 * The DSSE pre-authentication encoding, the exact bytes that are signed:
 * `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths as ASCII decimal byte counts.
 */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** Canonical stored bytes of an envelope (2-space JSON + newline). */
export function serializeEnvelope(e: Envelope): Buffer {
  return Buffer.from(JSON.stringify(e, null, 2) + '\n');
}

/**
 * Parses stored envelope bytes.
 * @param source where the bytes came from (URI), for messages
 * @throws ProvenanceError when the bytes are not JSON or not a DSSE envelope (names the field)
 */
export function parseEnvelope(bytes: Uint8Array | string, source: string): Envelope {
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new ProvenanceError(`${source} is not JSON (${(e as Error).message.split('\n')[0]})`);
  }
  const r = envelopeSchema.safeParse(value);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new ProvenanceError(`${source} is not a DSSE envelope: ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}`);
  }
  return r.data as Envelope;
}

/** The payload bytes of an envelope (base64-decoded). */
export function envelopePayload(e: Envelope): Buffer {
  return Buffer.from(e.payload, 'base64');
}
