export * from './moto';
export * from './workspace';
