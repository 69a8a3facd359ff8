#!/usr/bin/env node
// Writes a gzip-compressed tar shaped like an Nx cache entry (one random, incompressible output file +
// terminalOutput + code) whose size is close to the requested number of bytes.
// usage: node make-body.mjs <bytes> <out-file>
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';

const [size, out] = [Number(process.argv[2]), process.argv[3]];
if (!size || !out) throw new Error('usage: make-body.mjs <bytes> <out-file>');

function entry(path, data) {
  const h = Buffer.alloc(512);
  new Header({ path, type: 'File', size: data.length, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }).encode(h, 0);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return [h, data, pad];
}

// random bytes do not compress: gzip stored blocks add ~0.01%, tar headers 2.5 KiB; trim the payload to land on `size`
const payload = randomBytes(Math.max(0, Math.floor(size / 1.0001) - 2600));
const tar = Buffer.concat([
  ...entry('dist/bench/output.bin', payload),
  ...entry('terminalOutput', Buffer.from('bench\n')),
  ...entry('code', Buffer.alloc(4)),
  Buffer.alloc(1024),
]);
const gz = gzipSync(tar, { level: 1 });
writeFileSync(out, gz);
console.log(JSON.stringify({ out, bytes: gz.length }));
