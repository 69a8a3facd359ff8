export * from './hash';
export * from './manifest';
export * from './zip';
export * from './tar';
export * from './tar-policy';
