import type { DeployExecutorOptions } from '../../lib/options';

/** Options as Nx hands them to the executor (schema.json validated them and applied its defaults). */
export interface PromoteExecutorSchema extends DeployExecutorOptions {
  outputPath?: string;
}
