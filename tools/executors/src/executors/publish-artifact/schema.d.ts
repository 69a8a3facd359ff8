export interface PublishArtifactExecutorSchema {
  outputPath?: string;
  store?: string;
  registry?: string;
  preview?: boolean;
  forcePathStyle?: boolean;
  dryRun?: boolean;
  verbose?: boolean;
}
