/** Options as Nx hands them to the executor (schema.json validated them and applied its defaults). */
export interface ResolveExecutorSchema {
  env: string;
  store?: string;
  region?: string;
  outputFile?: string;
}
