export interface PromoteExecutorSchema {
  env?: string;
  outputPath?: string;
  target?: 'lambda' | 'ec2' | 'local';
  functionName?: string;
  alias?: string;
  parameterName?: string;
  localRoot?: string;
  store?: string;
  dryRun?: boolean;
  verbose?: boolean;
}
