export * from './moto';
export * from './workspace';
export * from './registry';
export * from './temp';
