/**
 * What a promotion gate answers (each gate is a pure function of facts read before it runs): the
 * promotion may go on, or it is refused with one line naming what is missing and the fix.
 */
export type GateDecision = { ok: true } | { ok: false; reason: string };

/** The decision that lets the promotion go on. */
export const PASS: GateDecision = { ok: true };
