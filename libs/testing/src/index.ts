export * from './moto';
export * from './workspace';
export * from './temp';
