import { createHash, type Hash } from 'node:crypto';
import { posix } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { createGunzip, type Gunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { BodyIncompleteError, BodyRejectedError, BodyTooLargeError } from './errors';

const GZIP_MAGIC = [0x1f, 0x8b] as const;

/** Tar entry types a cache entry may hold; devices, FIFOs and GNU/vendor extensions are refused. */
const ALLOWED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);
/** Symlink expansions allowed while resolving one path (Linux's MAXSYMLINKS is 40). */
const MAX_LINK_EXPANSIONS = 40;

/**
 * Why a tar entry is unsafe to extract, judged on its own (no knowledge of earlier entries), or undefined when
 * it is safe (zip-slip defense, CWE-22). Rejects: absolute paths (`/x`, `\x`, `C:x`), any `..` segment
 * (separators `/` and `\`), hard links whose target is absolute or has `..`, symbolic links whose target is
 * absolute or resolves outside the archive root as text (relative links inside the tree, e.g.
 * `bin/tool -> ../lib/tool.js`, are fine), and entry types other than files, directories and links (device
 * files, FIFOs). `./` prefixes are fine. Links that escape through EARLIER links are caught by ArchivePaths.
 * @param path entry path as stored in the archive (after pax/GNU long-name headers)
 * @param type tar entry type name (`File`, `Directory`, `SymbolicLink`, `Link`, …)
 * @param linkpath link target for `SymbolicLink` / `Link`
 */
export function unsafeEntryReason(path: string, type: string, linkpath?: string): string | undefined {
  const bad = pathProblem(path);
  if (bad) return `entry "${path}" has ${bad}`;
  if (!ALLOWED_TYPES.has(type)) return `entry "${path}" is a ${type}; only files, directories and links are allowed`;
  if (type === 'Link') {
    const l = pathProblem(linkpath ?? '');
    if (l) return `hard link "${path}" targets "${linkpath}", which has ${l}`;
  }
  if (type === 'SymbolicLink') {
    const target = linkpath ?? '';
    if (!target) return `symlink "${path}" has an empty target`;
    if (target.includes('\0')) return `symlink "${path}" has a NUL byte in its target`;
    if (isAbsolutePath(target)) return `symlink "${path}" targets absolute path "${target}"`;
    const resolved = posix.normalize(posix.join(posix.dirname(slashes(path)), slashes(target)));
    if (resolved === '..' || resolved.startsWith('../')) return `symlink "${path}" targets "${target}", outside the archive`;
  }
  return undefined;
}

function slashes(p: string): string {
  return p.replace(/\\/g, '/');
}

function segments(p: string): string[] {
  return slashes(p)
    .split('/')
    .filter((s) => s !== '' && s !== '.');
}

/**
 * Judges the entries of one archive in order, the way an extractor that follows symlinks would see them
 * (GNU tar, `cp -a`, a deploy step): every path is resolved through the symbolic links seen EARLIER in the
 * archive, component by component like the kernel does (`..` applies to the resolved directory), so a chain
 * such as `dist/a -> .` then `dist/b -> a/a/a/../..`, or `x/y -> ..` then `x/y/z -> ..`, is refused although
 * each link alone looks harmless. Checks, per entry: `unsafeEntryReason`; the entry's parent directory stays
 * inside the root; a symlink's target and a hard link's target stay inside the root; link loops and more than
 * 40 expansions are refused. {@link ArchivePaths.finish} then re-resolves every link against the final tree
 * (links that appear later in the archive change what an earlier link reaches once extracted).
 */
export class ArchivePaths {
  /** symlinks seen so far: normalized path (`a/b`) -> raw target */
  private readonly links = new Map<string, string>();
  /** hard links seen so far: [entry path, raw target] */
  private readonly hardLinks: [string, string][] = [];

  /**
   * After the last entry: every symlink (and hard link target) resolved again against the FINAL tree the
   * archive describes, links created later included. A link is followed when it is read, after extraction,
   * so `p -> a/a/b/../../../etc` is harmless while `a` is a directory and escapes once a later `a -> .` exists.
   * @returns the reason the archive is unsafe, or undefined
   */
  finish(): string | undefined {
    for (const [physical, target] of this.links) {
      const parent = physical.split('/').slice(0, -1);
      const r = this.resolve(parent, segmentsKeepDots(target));
      if (typeof r === 'string') return `symlink "${physical}" targets "${target}", which ${r} through a symlink in the extracted tree`;
    }
    for (const [path, target] of this.hardLinks) {
      const r = this.resolve([], segmentsKeepDots(target));
      if (typeof r === 'string') return `hard link "${path}" targets "${target}", which ${r} through a symlink in the extracted tree`;
    }
    return undefined;
  }

  /** The reason the next entry is unsafe, or undefined (and the entry is remembered). */
  check(path: string, type: string, linkpath?: string): string | undefined {
    const own = unsafeEntryReason(path, type, linkpath);
    if (own) return own;
    const parts = segments(path);
    if (parts.length === 0) return type === 'Directory' ? undefined : `entry "${path}" names the archive root`;
    const parent = this.resolve([], parts.slice(0, -1));
    if (typeof parent === 'string') return `entry "${path}" ${parent} through an earlier symlink`;
    // links are keyed by their resolved (physical) path: that is what later entries traverse
    const physical = [...parent, parts[parts.length - 1]!];
    if (type === 'SymbolicLink') {
      const target = this.resolve(parent, segmentsKeepDots(linkpath ?? ''));
      if (typeof target === 'string') return `symlink "${path}" targets "${linkpath}", which ${target} through an earlier symlink`;
      const key = physical.join('/');
      const before = this.links.get(key);
      // GNU tar delays links with `..` targets and keeps the first, others keep the last: refuse the ambiguity
      if (before !== undefined && before !== (linkpath ?? ''))
        return `symlink "${path}" appears twice with different targets ("${before}", "${linkpath}"): extractors disagree on which one stays`;
      this.links.set(key, linkpath ?? '');
    } else if (type === 'Link') {
      const target = this.resolve([], segmentsKeepDots(linkpath ?? ''));
      if (typeof target === 'string') return `hard link "${path}" targets "${linkpath}", which ${target} through an earlier symlink`;
      this.hardLinks.push([path, linkpath ?? '']);
    }
    // A file or directory over an earlier link: extractors either replace the link or write through it; the
    // link stays known, so later paths are judged by the stricter of the two readings.
    return undefined;
  }

  /**
   * Resolves `rest` (relative components) from directory `base` through the known links.
   * @returns the resolved components, or a phrase saying why not (`leaves the archive`, `loops`)
   */
  private resolve(base: string[], rest: string[]): string[] | string {
    const cur = [...base];
    const queue = [...rest];
    let expansions = 0;
    while (queue.length) {
      const c = queue.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (cur.length === 0) return 'leaves the archive';
        cur.pop();
        continue;
      }
      const candidate = [...cur, c].join('/');
      const target = this.links.get(candidate);
      if (target === undefined) {
        cur.push(c);
        continue;
      }
      if (++expansions > MAX_LINK_EXPANSIONS) return 'loops';
      if (isAbsolutePath(target)) return 'leaves the archive';
      queue.unshift(...segmentsKeepDots(target));
    }
    return cur;
  }
}

function segmentsKeepDots(p: string): string[] {
  return slashes(p).split('/');
}

function isAbsolutePath(p: string): boolean {
  return p.startsWith('/') || p.startsWith('\\') || /^[a-zA-Z]:/.test(p);
}

function pathProblem(p: string): string | undefined {
  if (!p) return 'an empty path';
  if (p.includes('\0')) return 'a NUL byte';
  if (isAbsolutePath(p)) return 'an absolute path';
  if (p.split(/[\\/]+/).includes('..')) return 'a ".." segment';
  return undefined;
}

export interface BodyGuardOptions {
  /** largest accepted body, bytes (BUILDONCE_CACHE_MAX_BYTES) */
  maxBytes: number;
  /** the request's Content-Length, bytes; fewer bytes is BodyIncompleteError, more is BodyTooLargeError */
  expectedBytes: number;
  /**
   * Decompressed/compressed byte ratio above which the body is refused (bad-archive), checked as it inflates (the
   * same rule as tar's Parser option). Default: no limit.
   * Deflate cannot exceed ~1032:1, so tar's own default (1000) only refuses near-all-zero outputs, which are
   * legitimate build outputs (sparse files); the guard never extracts, so a "bomb" costs CPU, not memory, and
   * only read-write tokens can send one.
   */
  maxDecompressionRatio?: number;
}

/** What the guard measured once the body ended cleanly. */
export interface GuardedBody {
  /** bytes */
  size: number;
  /** hex sha256 of the exact bytes passed through */
  sha256: string;
  /** tar entries seen (files, directories, links) */
  entries: number;
}

/** Output chunk of the gunzip stream, bytes: one thread-pool round trip per socket chunk (64 KiB) of stored blocks. */
const INFLATE_CHUNK = 128 * 1024;

/**
 * Pass-through transform that validates a PUT body while it streams to storage (no buffering): counts bytes
 * against the limit and Content-Length, hashes them (sha256), checks the gzip magic, inflates them with node's
 * zlib stream (RFC 1952; the inflate runs on the libuv thread pool, off the event loop, with backpressure) and
 * feeds the tar to node-tar's `Parser` (strict mode, uncompressed input) that checks every entry with
 * `ArchivePaths`. It fails the stream with BodyRejectedError / BodyTooLargeError / BodyIncompleteError as soon as
 * a problem is seen, and holds back its end until the archive has been fully inflated and parsed, so storage
 * never commits a body that did not validate. A gzip whose content is gzip again is refused (Nx inflates once;
 * the Parser is told the tar is uncompressed: zstd and brotli sniffing are off). node-tar's own gzip path would
 * inflate synchronously on the event loop and copy every output chunk (minizlib): ~1 ms per MiB of main-thread
 * time, the largest PUT cost after sha256. After `finish`, `result()` gives size and sha256.
 */
export class BodyGuard extends Transform {
  private bytes = 0;
  private inflated = 0;
  private entries = 0;
  private readonly hash: Hash = createHash('sha256');
  private readonly gunzip: Gunzip;
  private readonly parser: Parser;
  private readonly parserDone: Promise<void>;
  private readonly badArchive: (e: Error) => void;
  private head = Buffer.alloc(0);
  /** first decompressed bytes, until the tar's first 2 bytes are known (tar's Parser would inflate gzip again) */
  private tarHead: Buffer | undefined = Buffer.alloc(0);
  private readonly paths = new ArchivePaths();
  private readonly maxRatio: number;
  private sha256?: string;
  /** the first problem found; set even when a consumer wraps or swallows the stream error */
  failure?: Error;

  constructor(private readonly opts: BodyGuardOptions) {
    super();
    this.maxRatio = opts.maxDecompressionRatio ?? Number.POSITIVE_INFINITY;
    this.parser = new Parser({
      strict: true,
      zstd: false,
      onReadEntry: (entry: ReadEntry) => {
        this.entries++;
        const reason = this.paths.check(entry.path, entry.type, entry.linkpath);
        if (reason) this.abortWith(new BodyRejectedError('unsafe-entry', `unsafe tar entry: ${reason}`));
        entry.resume();
      },
    });
    let bad: (e: Error) => void = () => undefined;
    this.parserDone = new Promise<void>((resolve, reject) => {
      bad = (e: Error) => {
        this.abortWith(new BodyRejectedError('bad-archive', `body is not a valid gzip-compressed tar: ${e.message}`));
        reject(this.failure);
      };
      this.parser.on('error', bad);
      this.parser.on('end', () => resolve());
    });
    this.badArchive = bad;
    this.parserDone.catch(() => undefined);
    this.gunzip = this.inflate(INFLATE_CHUNK);
  }

  /** A gunzip stream (RFC 1952, thread pool) whose output feeds the tar parser. @param chunkSize output chunk, bytes */
  private inflate(chunkSize: number): Gunzip {
    const gunzip = createGunzip({ chunkSize });
    gunzip.on('data', (c: Buffer) => this.consume(c));
    gunzip.on('end', () => this.parser.end());
    gunzip.on('error', this.badArchive);
    return gunzip;
  }

  /** Decompressed bytes: checked against the ratio and for a second compression layer, then parsed. */
  private consume(chunk: Buffer): void {
    if (this.failure) return;
    this.inflated += chunk.length;
    if (this.inflated > this.maxRatio * this.bytes) {
      return this.abortWith(new BodyRejectedError('bad-archive', `body is not a valid gzip-compressed tar: decompression ratio above ${this.maxRatio}`));
    }
    if (this.tarHead) {
      const t = (this.tarHead = Buffer.concat([this.tarHead, chunk.subarray(0, GZIP_MAGIC.length - this.tarHead.length)]));
      if (t.length >= GZIP_MAGIC.length) {
        if (t[0] === GZIP_MAGIC[0] && t[1] === GZIP_MAGIC[1]) {
          return this.abortWith(new BodyRejectedError('bad-archive', 'body is not a valid gzip-compressed tar: its content is gzip-compressed again'));
        }
        this.tarHead = undefined;
      }
    }
    this.parser.write(chunk);
  }

  private fail(e: Error): void {
    this.failure ??= e;
  }

  /** Records the failure and fails the stream on the next tick (callers may be inside the parser's own callbacks). */
  private abortWith(e: Error): void {
    this.fail(e);
    process.nextTick(() => {
      if (!this.destroyed) this.destroy(this.failure);
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.failure) return cb(this.failure);
    this.bytes += chunk.length;
    const limit = Math.min(this.opts.maxBytes, this.opts.expectedBytes);
    if (this.bytes > limit) {
      this.fail(new BodyTooLargeError(limit, this.bytes));
      return cb(this.failure);
    }
    if (this.head.length < GZIP_MAGIC.length) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, GZIP_MAGIC.length - this.head.length)]);
      if (this.head.length >= GZIP_MAGIC.length && (this.head[0] !== GZIP_MAGIC[0] || this.head[1] !== GZIP_MAGIC[1])) {
        this.fail(new BodyRejectedError('not-gzip', 'body is not gzip-compressed (expected a gzip-compressed tar)'));
        return cb(this.failure);
      }
    }
    this.hash.update(chunk);
    if (this.gunzip.write(chunk)) return cb(null, chunk);
    // the inflate lags (thread pool busy): hold this chunk until it drains, so memory stays bounded
    this.inflateDrained().then(() => (this.failure ? cb(this.failure) : cb(null, chunk)));
  }

  private inflateDrained(): Promise<void> {
    const gunzip = this.gunzip;
    return new Promise((resolve) => {
      const go = () => {
        gunzip.off('drain', go);
        gunzip.off('close', go);
        resolve();
      };
      gunzip.on('drain', go);
      gunzip.on('close', go);
    });
  }

  override _flush(cb: TransformCallback): void {
    if (this.failure) return cb(this.failure);
    if (this.bytes < this.opts.expectedBytes) {
      this.fail(new BodyIncompleteError(this.opts.expectedBytes, this.bytes));
      return cb(this.failure);
    }
    if (this.head.length < GZIP_MAGIC.length) {
      this.fail(new BodyRejectedError('not-gzip', 'body is not gzip-compressed (expected a gzip-compressed tar)'));
      return cb(this.failure);
    }
    this.gunzip.end();
    this.parserDone.then(
      () => {
        if (this.failure) return cb(this.failure);
        const late = this.paths.finish();
        if (late) {
          this.fail(new BodyRejectedError('unsafe-entry', `unsafe tar entry: ${late}`));
          return cb(this.failure);
        }
        this.sha256 = this.hash.digest('hex');
        cb();
      },
      (e: Error) => cb(this.failure ?? e),
    );
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (err) this.fail(err);
    if (!this.sha256) {
      this.gunzip.destroy();
      // a fresh error: tar's abort() decorates the error object it is given
      this.parser.abort(new Error(err ? err.message : 'body stream destroyed'));
    }
    cb(err);
  }

  /** Size and sha256 of the body; only after the stream finished without error. */
  result(): GuardedBody {
    if (!this.sha256) throw new Error('BodyGuard.result() called before the body was fully validated');
    return { size: this.bytes, sha256: this.sha256, entries: this.entries };
  }
}
