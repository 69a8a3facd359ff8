export interface ResolveExecutorSchema {
  env?: string;
  store?: string;
  verbose?: boolean;
}
