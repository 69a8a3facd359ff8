import type { ImageConfigChanges } from '@buildonce/image';

/** Options as Nx hands them to the executor (schema.json validated them and applied its defaults). */
export interface OciImageExecutorSchema extends ImageConfigChanges {
  baseImage: string;
  platform: 'linux/amd64' | 'linux/arm64';
  files: { source: string; zipEntry?: string; destination: string; mode: string }[];
  runtime: string;
  handler?: string;
  outputPath?: string;
  cacheDir?: string;
}
