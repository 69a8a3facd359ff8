/** Options as Nx hands them to the executor (schema.json validated them and applied its defaults). */
export interface CargoLambdaZipExecutorSchema {
  cargoDir?: string;
  outputPath?: string;
  architecture: 'x86_64' | 'arm64';
  binary: string;
  runtime: string;
  cargoLambda: 'auto' | 'always' | 'never';
  offlineRegistry?: string;
}
