export * from './errors';
export * from './statement';
export * from './dsse';
export * from './keys';
export * from './attest';
export * from './verify';
