export * from './moto';
export * from './workspace';
export * from './fault-proxy';
