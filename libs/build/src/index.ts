export * from './run';
export * from './cargo';
