export interface PublishArtifactExecutorSchema {
  outputPath?: string;
  store?: string;
  preview?: boolean;
  forcePathStyle?: boolean;
  dryRun?: boolean;
  verbose?: boolean;
}
