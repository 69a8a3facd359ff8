export * from './run';
export * from './cargo';
export * from './tarball';
export * from './elf';
export * from './rust-toolchain.mjs';
export * from './output-lock';
export * from './node-bundle';
export * from './start-check';
