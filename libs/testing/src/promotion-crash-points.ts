/**
 * The points at which the crash child (release/crash-child.ts) can be killed, in the order a promotion
 * reaches them: lock taken, deploy about to start, deploy done, history entry written, pointer moved.
 */
export const PROMOTION_CRASH_POINTS = ['after-lock', 'before-deploy', 'after-deploy', 'after-history', 'after-pointer'] as const;

/** One of {@link PROMOTION_CRASH_POINTS}. */
export type PromotionCrashPoint = (typeof PROMOTION_CRASH_POINTS)[number];

/** Whether a promotion killed at `point` has already deployed the new version (from `after-deploy` on). */
export function deployedAtCrashPoint(point: PromotionCrashPoint): boolean {
  return PROMOTION_CRASH_POINTS.indexOf(point) >= PROMOTION_CRASH_POINTS.indexOf('after-deploy');
}
