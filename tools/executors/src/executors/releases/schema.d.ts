/** Options as Nx hands them to the executor (schema.json validated them and applied its defaults). */
export interface ReleasesExecutorSchema {
  env?: string;
  json: boolean;
  markdown: boolean;
  field?: 'commit' | 'version' | 'uri' | 'seq' | 'when' | 'who';
  limit: number;
  store?: string;
  outputFile?: string;
}
