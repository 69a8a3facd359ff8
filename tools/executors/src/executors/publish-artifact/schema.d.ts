/** Options as Nx hands them to the executor (schema.json validated them and applied its defaults). */
export interface PublishArtifactExecutorSchema {
  outputPath?: string;
  store?: string;
  registry?: string;
  preview: boolean;
  forcePathStyle: boolean;
  dryRun: boolean;
}
