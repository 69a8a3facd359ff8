import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import pino, { type Logger } from 'pino';
import { Header } from 'tar';

/** One entry of a hand-built tar archive (raw header fields: nothing is sanitized, so hostile paths survive). */
export interface RawTarEntry {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link';
  linkpath?: string;
  data?: Buffer | string;
}

/**
 * Builds an uncompressed ustar archive from raw entries, terminated by two zero blocks. Paths are written as
 * given (tar's Header does no sanitizing), so tests can forge `../evil` or `/etc/passwd` entries like a hostile
 * client would.
 */
export function rawTar(entries: RawTarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
    const type = e.type ?? 'File';
    const size = type === 'File' ? data.length : 0;
    const h = new Header({ path: e.path, type, linkpath: e.linkpath, size, mode: type === 'Directory' ? 0o755 : 0o644, mtime: new Date(0), uid: 0, gid: 0 });
    const block = Buffer.alloc(512);
    h.encode(block, 0);
    blocks.push(block);
    if (size) {
      blocks.push(data);
      const pad = (512 - (size % 512)) % 512;
      if (pad) blocks.push(Buffer.alloc(pad));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** gzip(rawTar(entries)). */
export function tarGz(entries: RawTarEntry[]): Buffer {
  return gzipSync(rawTar(entries));
}

/** A body shaped like Nx's (outputs + `terminalOutput` + 4-byte big-endian `code`), `payloadBytes` of random output. */
export function nxLikeBody(payloadBytes = 1024, seed = randomBytes(4).toString('hex')): Buffer {
  const code = Buffer.alloc(4);
  return tarGz([
    { path: 'dist', type: 'Directory' },
    { path: 'dist/out.bin', data: randomBytes(payloadBytes) },
    { path: 'dist/seed.txt', data: seed },
    { path: 'terminalOutput', data: `built ${seed}\n` },
    { path: 'code', data: code },
  ]);
}

export function sha256Hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A pino logger writing JSON lines into `lines` (for asserting access logs). */
export function captureLogger(): { logger: Logger; lines: string[]; records: () => Record<string, unknown>[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, stream);
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** Response of a raw HTTP request. */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * Sends a request with node:http so tests control framing (chunked bodies without Content-Length, a lying
 * Content-Length, aborting mid-body).
 * @param opts.body bytes to send; with `chunked: true` no Content-Length is set
 * @param opts.contentLength overrides the Content-Length header (bytes)
 * @param opts.stopAfter send only this many body bytes and then wait for the response (for early answers)
 */
export function rawRequest(
  url: string,
  opts: { method: string; headers?: Record<string, string>; body?: Buffer; chunked?: boolean; contentLength?: number; stopAfter?: number },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...(opts.headers ?? {}) };
    if (opts.body && !opts.chunked) headers['content-length'] = opts.contentLength ?? opts.body.length;
    if (opts.chunked) headers['transfer-encoding'] = 'chunked';
    // split by hand: new URL() would normalize `%2e%2e` and `..` away
    const m = /^http:\/\/([^/:]+):(\d+)(\/.*)$/.exec(url);
    if (!m) throw new Error(`rawRequest needs http://host:port/path, got ${url}`);
    const req = request({ host: m[1], port: Number(m[2]), path: m[3], method: opts.method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body) {
      if (opts.stopAfter !== undefined) {
        req.write(opts.body.subarray(0, opts.stopAfter));
        return;
      }
      req.write(opts.body);
    }
    req.end();
  });
}
