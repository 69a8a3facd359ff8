/** Options of `@buildonce/nx:rust-lambda` (the contract is schema.json). */
export interface RustLambdaGeneratorSchema {
  name: string;
  directory?: string;
  architecture?: 'x86_64' | 'arm64';
}
