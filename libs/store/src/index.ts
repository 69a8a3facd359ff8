export * from './errors';
export * from './url';
export * from './blob';
export * from './fs-blob';
export * from './s3-blob';
export * from './open';
export * from './artifacts';
