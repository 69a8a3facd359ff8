/** Options as Nx hands them to the executor (schema.json validated them and applied its defaults). */
export interface RetentionExecutorSchema {
  olderThan: number;
  keep: number;
  pr?: number;
  store?: string;
  dryRun: boolean;
}
