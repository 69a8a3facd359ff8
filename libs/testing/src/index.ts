export * from './moto';
export * from './workspace';
export * from './fault-proxy';
export * from './hostile-archives';
export * from './crash';
