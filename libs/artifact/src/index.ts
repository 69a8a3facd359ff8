export * from './hash';
export * from './manifest';
export * from './zip';
export * from './tar';
export * from './archive-policy';
