export * from './retry';
export * from './bounded';
