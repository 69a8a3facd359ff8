export interface RetentionExecutorSchema {
  olderThan?: number;
  keep?: number;
  pr?: number;
  store?: string;
  dryRun?: boolean;
  verbose?: boolean;
}
