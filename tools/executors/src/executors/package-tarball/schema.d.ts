/** Options as Nx hands them to the executor (schema.json validated them and applied its defaults). */
export interface PackageTarballExecutorSchema {
  main?: string;
  outputPath?: string;
  tarballName?: string;
  entry: string;
  target: string;
  runtime?: string;
  architecture: 'x86_64' | 'arm64';
  minify: boolean;
  sourcemap: boolean;
  format?: 'esm' | 'cjs';
  startCheck: boolean;
  startCheckTimeout: number;
}
