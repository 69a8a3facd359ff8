export {};
export * from './retention';
