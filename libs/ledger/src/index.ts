export * from './analysis-record';
export * from './ledger';
export * from './lock';
