export * from './config';
export * from './measure-config';
export * from './regions';
