export * from './targets';
export * from './lambda';
export * from './ec2';
export * from './targets-factory';
export * from './local';
