export * from './moto';
export * from './workspace';
export * from './registry';
export * from './temp';
export * from './fault-proxy';
export * from './hostile-archives';
export * from './crash';
