export * from './config';
export * from './measure-config';
