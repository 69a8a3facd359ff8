export * from './run';
export * from './cargo';
export * from './tarball';
