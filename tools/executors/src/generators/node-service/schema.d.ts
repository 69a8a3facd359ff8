/** Options of `@buildonce/nx:node-service` (the contract is schema.json). */
export interface NodeServiceGeneratorSchema {
  name: string;
  directory?: string;
  packageName?: string;
  deploy?: 'ec2' | 'local';
  skipInstall?: boolean;
}
