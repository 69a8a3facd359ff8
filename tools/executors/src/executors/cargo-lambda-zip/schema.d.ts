export interface CargoLambdaZipExecutorSchema {
  cargoDir?: string;
  outputPath?: string;
  architecture?: 'x86_64' | 'arm64';
  binary?: string;
  runtime?: string;
  cargoLambda?: 'auto' | 'always' | 'never';
  offlineRegistry?: string;
  verbose?: boolean;
}
