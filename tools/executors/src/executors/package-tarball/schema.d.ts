export interface PackageTarballExecutorSchema {
  main?: string;
  outputPath?: string;
  tarballName?: string;
  entry?: string;
  target?: string;
  runtime?: string;
  architecture?: 'x86_64' | 'arm64';
  minify?: boolean;
  sourcemap?: boolean;
  verbose?: boolean;
}
