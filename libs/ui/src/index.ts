export * from './html';
export * from './readonly-store';
export * from './model';
export * from './pages';
export * from './server';
export * from './static';
export * from './command';
