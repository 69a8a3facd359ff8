export interface ReleasesExecutorSchema {
  env?: string;
  json?: boolean;
  markdown?: boolean;
  field?: '' | 'commit' | 'version' | 'uri' | 'seq' | 'when' | 'who';
  limit?: number;
  store?: string;
  outputFile?: string;
  verbose?: boolean;
}
