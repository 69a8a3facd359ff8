export * from './cargo';
export * from './elf';
export * from './rust-toolchain.mjs';
