#!/usr/bin/env node
// The floor for bench/cache-server.sh: the least any cache server pays on this machine. A bare node:http server
// speaking the Nx remote-cache routes with no validation at all: PUT streams the body to a temp file and links it
// into place (create-only, 409 when present), GET streams the file back with its Content-Length.
// usage: PORT=… STORE=/dir TOKEN=… node floor-server.mjs   (listens on 127.0.0.1 only)
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, open, unlink } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

const dir = process.env.STORE;
const auth = `Bearer ${process.env.TOKEN}`;
await mkdir(dir, { recursive: true });

createServer(async (req, res) => {
  const m = /^\/v1\/cache\/([0-9a-zA-Z_-]{1,128})$/.exec(req.url ?? '');
  if (req.url === '/health') return res.writeHead(200).end('ok');
  if (!m) return res.writeHead(404).end();
  if (req.headers.authorization !== auth) return res.writeHead(401).end();
  const final = join(dir, m[1]);
  if (req.method === 'PUT') {
    const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
    try {
      await pipeline(req, createWriteStream(tmp, { flags: 'wx' }));
      await link(tmp, final);
      res.writeHead(200).end();
    } catch (e) {
      if (!res.headersSent) res.writeHead(e.code === 'EEXIST' ? 409 : 500).end();
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    return;
  }
  if (req.method === 'GET') {
    let fh;
    try {
      fh = await open(final, 'r');
    } catch {
      return res.writeHead(404).end();
    }
    const { size } = await fh.stat();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    await pipeline(createReadStream(null, { fd: fh.fd, autoClose: false }), res).catch(() => undefined);
    await fh.close().catch(() => undefined);
    return;
  }
  res.writeHead(405).end();
}).listen(Number(process.env.PORT), '127.0.0.1');
