import type { Readable } from 'node:stream';
import { BuildonceError } from '@buildonce/errors';
import type { BlobStore, CasResult, ObjectInfo, StoreLocation } from '@buildonce/store';

/** A write was attempted through the dashboard's store handle (a bug: the dashboard only reads). */
export class ReadOnlyStoreError extends BuildonceError {
  override name = 'ReadOnlyStoreError';
}

/**
 * The store handle the dashboard gets: every read of the {@link BlobStore} interface passes through,
 * every write (putFileIfAbsent, putBytesIfAbsent, putBytesIfMatch, delete) throws
 * {@link ReadOnlyStoreError} before touching the backend. Read-only by construction: the dashboard
 * never holds the writable handle.
 */
export function readOnlyStore(inner: BlobStore): BlobStore {
  const refuse = (op: string, key: string): never => {
    throw new ReadOnlyStoreError(`the dashboard's store handle is read-only: ${op} ${inner.uriOf(key)} refused`);
  };
  const ro: BlobStore = {
    get location(): StoreLocation {
      return inner.location;
    },
    uriOf: (key: string) => inner.uriOf(key),
    s3Object: (key: string) => inner.s3Object(key),
    head: (key: string): Promise<ObjectInfo | undefined> => inner.head(key),
    getBytes: (key: string) => inner.getBytes(key),
    getStream: (key: string): Promise<Readable | undefined> => inner.getStream(key),
    list: (prefix: string) => inner.list(prefix),
    ...(inner.listFolders ? { listFolders: (prefix: string) => inner.listFolders!(prefix) } : {}),
    putFileIfAbsent: async (key: string): Promise<'created' | 'exists'> => refuse('putFileIfAbsent', key),
    putBytesIfAbsent: async (key: string): Promise<'created' | 'exists'> => refuse('putBytesIfAbsent', key),
    putBytesIfMatch: async (key: string): Promise<CasResult> => refuse('putBytesIfMatch', key),
    delete: async (key: string): Promise<void> => refuse('delete', key),
  };
  return Object.freeze(ro);
}
