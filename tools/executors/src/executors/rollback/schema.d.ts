import type { DeployExecutorOptions } from '../../lib/options';

/** Options as Nx hands them to the executor (schema.json validated them and applied its defaults). */
export interface RollbackExecutorSchema extends DeployExecutorOptions {
  /** Nx's CLI parser may turn a digits-only value into a number */
  to?: string | number;
}
