export interface CargoLambdaZipExecutorSchema {
  cargoDir?: string;
  outputPath?: string;
  architecture?: 'x86_64' | 'arm64';
  binary?: string;
  runtime?: 'provided.al2023' | 'provided.al2';
  cargoLambda?: 'auto' | 'always' | 'never';
  toolchain?: string;
  offlineRegistry?: string;
  verbose?: boolean;
}
