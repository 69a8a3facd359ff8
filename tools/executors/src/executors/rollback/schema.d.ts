export interface RollbackExecutorSchema {
  env?: string;
  to?: string | number;
  target?: 'lambda' | 'ec2' | 'local';
  functionName?: string;
  alias?: string;
  parameterName?: string;
  localRoot?: string;
  store?: string;
  dryRun?: boolean;
  verbose?: boolean;
}
