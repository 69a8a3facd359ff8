export * from './moto';
export * from './workspace';
export * from './temp';
export * from './lambda-invoke';
export * from './rust-scorer';
