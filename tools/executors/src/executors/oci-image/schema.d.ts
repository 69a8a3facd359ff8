/** Options as Nx hands them to the executor (schema.json validated them and applied its defaults). */
export interface OciImageExecutorSchema {
  baseImage: string;
  platform: 'linux/amd64' | 'linux/arm64';
  files: { source: string; zipEntry?: string; destination: string; mode: string }[];
  entrypoint?: string[];
  cmd?: string[];
  env?: Record<string, string>;
  workingDir?: string;
  labels?: Record<string, string>;
  runtime: string;
  handler?: string;
  outputPath?: string;
  cacheDir?: string;
}
