import { gzipSync } from 'node:zlib';

/**
 * A raw tar entry for hand-made (possibly hostile) archives. `type` maps to the ustar typeflag
 * (POSIX.1-2001 pax / ustar, https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html):
 * file `0`, hard link `1`, symlink `2`, char device `3`, block device `4`, directory `5`, fifo `6`.
 */
export interface RawTarEntry {
  path: string;
  type: 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';
  /** link target (hard and symbolic links) */
  linkpath?: string;
  /** file contents (files only) */
  body?: string | Buffer;
  /** permission bits (default 0644, dirs 0755) */
  mode?: number;
}

const TYPEFLAG: Record<RawTarEntry['type'], string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, o: { size: number; type: string; linkpath?: string; mode: number; devmajor?: number; devminor?: number }): Buffer {
  const h = Buffer.alloc(512, 0);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(o.mode, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(o.size, 12), 124, 'ascii');
  h.write(octal(315532800, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(o.type, 156, 'ascii');
  if (o.linkpath) h.write(o.linkpath, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write(octal(o.devmajor ?? 0, 8), 329, 'ascii');
  h.write(octal(o.devminor ?? 0, 8), 337, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'ascii');
  return h;
}

function pad(b: Buffer): Buffer {
  const rest = b.length % 512;
  return rest ? Buffer.concat([b, Buffer.alloc(512 - rest)]) : b;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return `${len}${body}`;
}

/**
 * Writes entries as a gzipped tar, byte for byte as given: no normalisation or safety checks (that is
 * the point). Paths or link targets longer than 100 bytes get a pax extended header (`x`).
 * @returns the `.tar.gz` bytes
 */
export function rawTarGz(entries: readonly RawTarEntry[]): Buffer {
  return gzipSync(rawTar(entries));
}

/** {@link rawTarGz} without the gzip: the uncompressed archive, two zero blocks at the end. */
export function rawTar(entries: readonly RawTarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.type === 'file' ? Buffer.from(e.body ?? '') : Buffer.alloc(0);
    const mode = e.mode ?? (e.type === 'dir' ? 0o755 : 0o644);
    const long = Buffer.byteLength(e.path) > 99 || Buffer.byteLength(e.linkpath ?? '') > 99;
    if (long) {
      const pax = Buffer.from(paxRecord('path', e.path) + (e.linkpath ? paxRecord('linkpath', e.linkpath) : ''));
      parts.push(header('PaxHeader/x', { size: pax.length, type: 'x', mode: 0o644 }), pad(pax));
    }
    const dev = e.type === 'char' ? { devmajor: 1, devminor: 3 } : e.type === 'block' ? { devmajor: 7, devminor: 0 } : {};
    parts.push(
      header(long ? e.path.slice(0, 99) : e.path, { size: body.length, type: TYPEFLAG[e.type], linkpath: long ? undefined : e.linkpath, mode, ...dev }),
      pad(body),
    );
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/**
 * Archives whose headers a second tar parser may read differently from GNU tar, the extractor: each
 * hides an escaping symlink from a parser that ignores pax `size=` records or reads old-GNU
 * (`ustar  `) headers' bytes 345+ as a ustar prefix. The benign `main.js` follows, so only the
 * hidden link makes them unacceptable. @returns `.tar.gz` bytes
 */
export function smuggledArchives(): { name: string; attack: string; bytes: Buffer }[] {
  const main = rawTar([MAIN]).subarray(0, -1024);
  const end = Buffer.alloc(1024);
  const gz = (...b: Buffer[]) => gzipSync(Buffer.concat([...b, end]));
  // pax size=0 overrides a ustar size of 1024: GNU tar reads the next two blocks as headers, a parser
  // ignoring the record skips them as data
  const pax = Buffer.from(paxRecord('size', '0'));
  const paxSmuggle = (link: RawTarEntry) => [
    header('PaxHeader/f', { size: pax.length, type: 'x', mode: 0o644 }),
    pad(pax),
    header('pad.txt', { size: 1024, type: '0', mode: 0o644 }),
    header(link.path, { size: 0, type: TYPEFLAG[link.type], linkpath: link.linkpath, mode: 0o777 }),
    header('pad2.txt', { size: 0, type: '0', mode: 0o644 }),
  ];
  // old-GNU magic: bytes 345+ are times, not a prefix; a ustar reading puts the link under `safe/`
  const oldGnu = (link: RawTarEntry) => {
    const h = header(link.path, { size: 0, type: TYPEFLAG[link.type], linkpath: link.linkpath, mode: 0o777 });
    h.write('ustar  \0', 257, 'ascii');
    h.write('safe/deeper', 345, 'ascii');
    h.write('        ', 148, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(octal(sum, 7) + ' ', 148, 'ascii');
    return h;
  };
  return [
    {
      name: 'pax-size-esc-etc',
      attack: 'esc -> /etc hidden behind a pax size=0 record',
      bytes: gz(...paxSmuggle({ path: 'esc', type: 'symlink', linkpath: '/etc' }), main),
    },
    {
      name: 'pax-size-main-hostname',
      attack: 'main.js -> /etc/hostname hidden behind a pax size=0 record',
      bytes: gz(main, ...paxSmuggle({ path: 'main.js', type: 'symlink', linkpath: '/etc/hostname' })),
    },
    {
      name: 'old-gnu-up',
      attack: 'up -> ../.. in an old-GNU header read as safe/deeper/up by a ustar parser',
      bytes: gz(oldGnu({ path: 'up', type: 'symlink', linkpath: '../..' }), main),
    },
  ];
}

/** One archive of the hostile corpus. */
export interface HostileArchive {
  /** short id, e.g. `symlink-chain-escape` */
  name: string;
  /** what it tries */
  attack: string;
  entries: RawTarEntry[];
}

/** A benign main file every corpus archive carries, so only the attack makes it unacceptable. */
const MAIN: RawTarEntry = { path: 'main.js', type: 'file', body: 'console.log("hello")\n' };

/**
 * The hostile-archive corpus shared by every component that unpacks tarballs (deployLocal, the EC2
 * user data script, the cache server's body guard): each archive must be refused, with nothing
 * written outside (or, for deploys, anywhere). Covers absolute and `..` names, symlinks that escape
 * directly or through chains of earlier symlinks, writes through symlinks, hard links, device files,
 * fifos, over-long names and the reserved `.buildonce/` directory.
 */
export function hostileArchives(): HostileArchive[] {
  const many: RawTarEntry[] = Array.from({ length: 300 }, (_, i) => ({
    path: `filler/f${String(i).padStart(3, '0')}.txt`,
    type: 'file' as const,
    body: `filler ${i}\n`,
  }));
  return [
    { name: 'absolute-path', attack: 'file with an absolute name', entries: [MAIN, { path: '/tmp/buildonce-pwned', type: 'file', body: 'x' }] },
    { name: 'dotdot-path', attack: 'file named ../x', entries: [MAIN, { path: '../buildonce-pwned', type: 'file', body: 'x' }] },
    { name: 'nested-dotdot-path', attack: 'file named a/../../x', entries: [MAIN, { path: 'a/../../buildonce-pwned', type: 'file', body: 'x' }] },
    { name: 'absolute-symlink-dir', attack: 'esc -> /etc, then 300 more files', entries: [MAIN, { path: 'esc', type: 'symlink', linkpath: '/etc' }, ...many] },
    { name: 'absolute-symlink-file', attack: 'main.js -> /etc/hostname', entries: [{ path: 'main.js', type: 'symlink', linkpath: '/etc/hostname' }] },
    { name: 'dotdot-symlink', attack: 'up -> ..', entries: [MAIN, { path: 'up', type: 'symlink', linkpath: '..' }] },
    { name: 'deep-dotdot-symlink', attack: 'a/b/c -> ../../../x', entries: [MAIN, { path: 'a/b/c', type: 'symlink', linkpath: '../../../buildonce-pwned' }] },
    {
      name: 'symlink-chain-escape',
      attack: 'dist/a -> . then dist/b -> a/a/a/../.. (escapes only when a is resolved)',
      entries: [MAIN, { path: 'dist/a', type: 'symlink', linkpath: '.' }, { path: 'dist/b', type: 'symlink', linkpath: 'a/a/a/../..' }],
    },
    {
      name: 'symlink-chain-nested',
      attack: 'x/y -> .. then x/y/z -> .. (a link placed through a link)',
      entries: [MAIN, { path: 'x/y', type: 'symlink', linkpath: '..' }, { path: 'x/y/z', type: 'symlink', linkpath: '..' }],
    },
    {
      name: 'write-through-symlink',
      attack: 'evil -> /tmp then evil/pwned',
      entries: [MAIN, { path: 'evil', type: 'symlink', linkpath: '/tmp' }, { path: 'evil/buildonce-pwned', type: 'file', body: 'x' }],
    },
    {
      name: 'replace-file-with-symlink',
      attack: 'main.js as a file, then main.js -> /etc/hostname',
      entries: [MAIN, { path: 'main.js', type: 'symlink', linkpath: '/etc/hostname' }],
    },
    { name: 'hardlink-outside', attack: 'hard link to /etc/passwd', entries: [MAIN, { path: 'passwd', type: 'link', linkpath: '/etc/passwd' }] },
    { name: 'hardlink-inside', attack: 'hard link to a file of the archive', entries: [MAIN, { path: 'again.js', type: 'link', linkpath: 'main.js' }] },
    { name: 'char-device', attack: 'character device 1,3', entries: [MAIN, { path: 'null', type: 'char' }] },
    { name: 'block-device', attack: 'block device 7,0', entries: [MAIN, { path: 'loop0', type: 'block' }] },
    { name: 'fifo', attack: 'named pipe', entries: [MAIN, { path: 'pipe', type: 'fifo' }] },
    { name: 'long-name', attack: 'a 300-byte path segment (pax header)', entries: [MAIN, { path: `${'n'.repeat(300)}.js`, type: 'file', body: 'x' }] },
    {
      name: 'reserved-buildonce-dir',
      attack: 'writes .buildonce/manifest.json',
      entries: [MAIN, { path: '.buildonce/manifest.json', type: 'file', body: '{}' }],
    },
    {
      name: 'dangling-buildonce-symlink',
      attack: '.buildonce -> missing (passes [ -e ])',
      entries: [MAIN, { path: '.buildonce', type: 'symlink', linkpath: 'missing' }],
    },
  ];
}

/**
 * Archives every unpacker must accept (controls: the checks are not "refuse everything"): plain files
 * and directories, a relative symlink that stays inside, a pax long name within limits.
 */
export function benignArchives(): HostileArchive[] {
  return [
    {
      name: 'inside-symlinks',
      attack: 'none: lib/current -> v1, docs -> lib/v1',
      entries: [
        MAIN,
        { path: 'lib/', type: 'dir' },
        { path: 'lib/v1/', type: 'dir' },
        { path: 'lib/v1/x.js', type: 'file', body: 'x' },
        { path: 'lib/current', type: 'symlink', linkpath: 'v1' },
        { path: 'docs', type: 'symlink', linkpath: 'lib/v1' },
      ],
    },
    {
      name: 'long-but-legal-name',
      attack: 'none: a 150-byte path (pax header)',
      entries: [MAIN, { path: `deep/${'d'.repeat(150)}.js`, type: 'file', body: 'x' }],
    },
  ];
}
