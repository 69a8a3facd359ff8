import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Parser } from 'tar';

/**
 * What a deploy accepts inside a tarball (one policy; apps/express-api/deploy/user-data.sh implements
 * the same rules in its embedded checker, and the shared hostile-archive corpus in libs/testing proves
 * both refuse the same archives):
 * - entry types: regular files, directories and symbolic links only (no hard links, devices, fifos);
 * - names: relative, no `..` segment, no segment over 255 bytes, at most 4095 bytes, not under the
 *   reserved `.buildonce/` (where deploys put the manifest), each name at most once (dirs excepted);
 * - no entry is placed through a symlink of the archive (`evil -> /tmp` then `evil/x`);
 * - symlink targets are relative and, resolved physically against the symlinks seen earlier in the
 *   archive (chains like `dist/a -> .` then `dist/b -> a/a/a/../..`), stay inside the archive;
 * - a name already used as a directory (explicitly or as a parent, or traversed by an earlier link
 *   target) cannot become a symlink later (that would retarget earlier links).
 */
export type TarEntryKind = 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo' | 'other';

/** The facts of one entry the policy looks at. */
export interface TarEntryFacts {
  path: string;
  kind: TarEntryKind;
  /** link target (symlinks, hard links) */
  linkpath?: string;
}

/** Longest name segment (bytes) and whole name (bytes) accepted (Linux NAME_MAX / PATH_MAX - 1). */
export const TAR_MAX_SEGMENT_BYTES = 255;
export const TAR_MAX_PATH_BYTES = 4095;
/** Symlink expansions allowed while resolving one target (Linux MAXSYMLINKS). */
const MAX_LINK_DEPTH = 40;

const KIND_NAMES: Record<TarEntryKind, string> = {
  file: 'file',
  dir: 'directory',
  symlink: 'symlink',
  link: 'hard link',
  char: 'character device',
  block: 'block device',
  fifo: 'fifo',
  other: 'special entry',
};

/**
 * Checks the entries of one archive in order (stateful: symlinks seen so far matter). Feed every
 * entry to {@link TarPolicy.check}; the first non-undefined result is the reason to refuse.
 */
export class TarPolicy {
  private readonly symlinks = new Map<string, string>();
  private readonly seen = new Map<string, TarEntryKind>();
  private readonly traversed = new Set<string>();

  /** @returns why the entry is refused (one line, names the entry), or undefined when it is acceptable */
  check(e: TarEntryFacts): string | undefined {
    const shown = JSON.stringify(e.path.length > 120 ? `${e.path.slice(0, 117)}...` : e.path);
    if (e.kind !== 'file' && e.kind !== 'dir' && e.kind !== 'symlink') {
      return `${shown} is a ${KIND_NAMES[e.kind]}${e.linkpath ? ` (-> ${JSON.stringify(e.linkpath)})` : ''}: only files, directories and symlinks are allowed`;
    }
    if (e.path.includes('\0')) return `${shown} contains a NUL byte`;
    if (e.path.startsWith('/')) return `${shown} is an absolute path`;
    if (Buffer.byteLength(e.path) > TAR_MAX_PATH_BYTES) return `${shown} is longer than ${TAR_MAX_PATH_BYTES} bytes`;
    const raw = e.path.split('/');
    if (raw.includes('..')) return `${shown} contains a ".." segment`;
    const segs = raw.filter((s) => s !== '' && s !== '.');
    if (!segs.length) return e.kind === 'dir' ? undefined : `${shown} has no name`;
    const long = segs.find((s) => Buffer.byteLength(s) > TAR_MAX_SEGMENT_BYTES);
    if (long !== undefined) return `${shown} has a name segment longer than ${TAR_MAX_SEGMENT_BYTES} bytes`;
    if (segs[0] === '.buildonce') return `${shown} is under .buildonce/, which deploys reserve for the manifest`;
    for (let i = 1; i < segs.length; i++) {
      const parent = segs.slice(0, i).join('/');
      if (this.symlinks.has(parent)) return `${shown} is placed through the symlink ${JSON.stringify(parent)}`;
      if (this.seen.has(parent) && this.seen.get(parent) !== 'dir')
        return `${shown} needs ${JSON.stringify(parent)} to be a directory, but it is a ${KIND_NAMES[this.seen.get(parent)!]}`;
    }
    const path = segs.join('/');
    const before = this.seen.get(path);
    if (before !== undefined && !(before === 'dir' && e.kind === 'dir'))
      return `${shown} appears twice (a ${KIND_NAMES[before]}, then a ${KIND_NAMES[e.kind]})`;
    if (e.kind === 'symlink') {
      const target = e.linkpath ?? '';
      if (!target) return `symlink ${shown} has an empty target`;
      if (target.startsWith('/')) return `symlink ${shown} -> ${JSON.stringify(target)} is absolute: it points outside the release`;
      if (this.traversed.has(path)) return `symlink ${shown} replaces a directory that earlier entries use`;
      const resolved = this.resolve(segs.slice(0, -1), target, 0);
      if (!resolved) return `symlink ${shown} -> ${JSON.stringify(target)} points outside the release (resolved through the archive's earlier symlinks)`;
      this.symlinks.set(path, target);
    }
    for (let i = 1; i < segs.length; i++) this.traversed.add(segs.slice(0, i).join('/'));
    this.seen.set(path, e.kind);
    return undefined;
  }

  /** Physical resolution of `target` from directory `base` (segments); undefined when it leaves the root or loops. */
  private resolve(base: string[], target: string, depth: number): string[] | undefined {
    let stack = [...base];
    for (const seg of target.split('/')) {
      if (seg === '' || seg === '.') continue;
      if (seg === '..') {
        if (!stack.length) return undefined;
        stack.pop();
        continue;
      }
      stack.push(seg);
      const key = stack.join('/');
      const link = this.symlinks.get(key);
      if (link !== undefined) {
        if (depth >= MAX_LINK_DEPTH) return undefined;
        const r = this.resolve(stack.slice(0, -1), link, depth + 1);
        if (!r) return undefined;
        stack = r;
      } else {
        this.traversed.add(key);
      }
    }
    return stack;
  }
}

/** node-tar entry type → policy kind. */
export function tarKindOf(type: string): TarEntryKind {
  switch (type) {
    case 'File':
    case 'OldFile':
      return 'file';
    case 'Directory':
      return 'dir';
    case 'SymbolicLink':
      return 'symlink';
    case 'Link':
      return 'link';
    case 'CharacterDevice':
      return 'char';
    case 'BlockDevice':
      return 'block';
    case 'FIFO':
      return 'fifo';
    default:
      return 'other';
  }
}

/**
 * Reads a `.tar.gz` (streamed, constant memory; contents skipped) and applies {@link TarPolicy}.
 * Stops at the first refused entry.
 * @returns undefined when every entry is acceptable, else the one-line reason
 * @throws Error for unreadable or corrupt archives (the caller reports them as refused)
 */
export async function tarGzPolicyViolation(path: string): Promise<string | undefined> {
  const policy = new TarPolicy();
  let violation: string | undefined;
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry) => {
      if (violation === undefined) violation = policy.check({ path: entry.path, kind: tarKindOf(entry.type), linkpath: entry.linkpath });
      entry.resume();
    },
  });
  const source = createReadStream(path);
  try {
    await pipeline(source, createGunzip(), parser as unknown as NodeJS.WritableStream);
  } catch (e) {
    if (violation !== undefined) return violation;
    throw e;
  }
  return violation;
}
