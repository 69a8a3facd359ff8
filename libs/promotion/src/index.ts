export * from './artifact';
export * from './metadata';
export * from './policy';
export * from './promote';
export * from './provenance';
export * from './releases';
export * from './rollback';
export * from './gates';
