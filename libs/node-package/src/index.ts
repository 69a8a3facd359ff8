export * from './node-bundle';
export * from './start-check';
export * from './tarball';
