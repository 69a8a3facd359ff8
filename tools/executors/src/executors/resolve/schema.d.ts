export interface ResolveExecutorSchema {
  env?: string;
  store?: string;
  outputFile?: string;
  verbose?: boolean;
}
