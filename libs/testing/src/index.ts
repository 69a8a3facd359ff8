export * from './moto';
export * from './workspace';
export * from './registry';
export * from './temp';
export * from './lambda-invoke';
export * from './rust-scorer';
