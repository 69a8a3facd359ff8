/** Options as Nx hands them to the executor (schema.json validated them and applied its defaults). */
export interface PromoteExecutorSchema {
  env: string;
  outputPath?: string;
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
