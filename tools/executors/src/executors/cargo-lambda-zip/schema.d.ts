/** Options as Nx hands them to the executor (schema.json validated them and applied its defaults). */
export interface CargoLambdaZipExecutorSchema {
  cargoDir?: string;
  outputPath?: string;
  architecture: 'x86_64' | 'arm64';
  binary: string;
  runtime: 'provided.al2023' | 'provided.al2';
  cargoLambda: 'auto' | 'always' | 'never';
  toolchain?: string;
  offlineRegistry?: string;
}
