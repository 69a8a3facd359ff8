export * from './image-retention';
export * from './retention';
