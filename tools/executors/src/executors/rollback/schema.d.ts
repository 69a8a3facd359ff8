/** Options as Nx hands them to the executor (schema.json validated them and applied its defaults). */
export interface RollbackExecutorSchema {
  env: string;
  /** Nx's CLI parser may turn a digits-only value into a number */
  to?: string | number;
  target: 'lambda' | 'ec2' | 'local';
  functionName: string;
  alias: string;
  parameterName: string;
  localRoot: string;
  store?: string;
  /** Nx's CLI parser may turn a digits-only value into a number */
  reason?: string | number;
  dryRun: boolean;
}
