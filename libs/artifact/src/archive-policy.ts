import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Parser } from 'tar';

/**
 * Which entries of a tar archive are accepted: ONE policy with two profiles.
 *
 * Every profile refuses (zip-slip defense, CWE-22): entry kinds outside its list; names with a NUL byte, an
 * absolute name, a `..` segment, an empty name; symlinks with an empty, NUL-carrying or absolute target;
 * symlink targets (and the directories entries are placed in) that, resolved physically component by
 * component through the symlinks seen EARLIER in the archive (chains like `dist/a -> .` then
 * `dist/b -> a/a/a/../..`), leave the root or need more than 40 expansions (Linux MAXSYMLINKS); a symlink
 * that appears twice with different targets (extractors disagree on which one stays).
 *
 * The profiles differ only in what {@link ArchiveProfile} declares:
 * - `deploy` (what a deploy unpacks; apps/express-api/deploy/user-data.sh embeds the same checker and the
 *   shared hostile-archive corpus in libs/testing proves both refuse the same archives): files,
 *   directories and symlinks only; names at most 255 bytes a segment and 4095 in all; `.buildonce/` is
 *   reserved (deploys put the manifest there); each name at most once (directories excepted); nothing is
 *   placed through a symlink (`evil -> /tmp` then `evil/x`); a name already used as a directory cannot
 *   become a symlink later (that would retarget earlier links).
 * - `cache` (what the Nx remote cache server stores; Nx extracts it with node-tar on any OS): hard links
 *   too (their target a relative name that stays inside); Windows spellings refused as well (`\` as a
 *   separator, `C:`); entries may be placed through symlinks when the resolved place stays inside; link
 *   targets must also stay inside read as text (extractors that apply `..` to the name); after the last
 *   entry every link is resolved again against the final tree ({@link ArchivePolicy.finish}).
 */
export type ArchiveEntryKind = 'file' | 'contiguous' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo' | 'other';

/** The facts of one entry the policy looks at. */
export interface ArchiveEntry {
  /** the name as stored (after pax / GNU long-name headers) */
  path: string;
  kind: ArchiveEntryKind;
  /** link target (symlinks, hard links) */
  linkpath?: string;
}

/** What one profile of the policy declares (the rest is common to every profile). */
export interface ArchiveProfile {
  /** entry kinds accepted (hard links only when `link` is listed; their target must then stay inside) */
  kinds: readonly ArchiveEntryKind[];
  /** how the root is called in reasons */
  root: 'the release' | 'the archive';
  /** `\` is a separator too and `\x`, `C:x` are absolute (archives extracted on Windows) */
  windowsNames: boolean;
  /** longest name segment and whole name, bytes (Linux NAME_MAX / PATH_MAX - 1), or no limit */
  nameLimits?: { segmentBytes: number; pathBytes: number };
  /** first segment no entry may be under, and why */
  reserved?: { segment: string; why: string };
  /** each name at most once (directories excepted), and a name used as a file or link is never a directory */
  uniqueNames: boolean;
  /** `refuse`: no entry is placed through a symlink; `resolve`: it may be, when the resolved place stays inside */
  throughSymlinks: 'refuse' | 'resolve';
  /**
   * How links created later are kept from retargeting earlier ones. `refuse-retarget`: a name traversed as a
   * directory cannot become a symlink; `recheck`: {@link ArchivePolicy.finish} resolves every link again
   * against the final tree.
   */
  laterLinks: 'refuse-retarget' | 'recheck';
  /** link targets must also stay inside read as text (`..` applied to the name, not the resolved directory) */
  lexicalTargets: boolean;
}

/** Longest name segment (bytes) and whole name (bytes) a deploy accepts (Linux NAME_MAX / PATH_MAX - 1). */
export const TAR_MAX_SEGMENT_BYTES = 255;
export const TAR_MAX_PATH_BYTES = 4095;
/** Symlink expansions allowed while resolving one path (Linux MAXSYMLINKS). */
const MAX_LINK_EXPANSIONS = 40;

/** The profiles: a declarative difference each. */
export const ARCHIVE_PROFILES = {
  deploy: {
    kinds: ['file', 'dir', 'symlink'],
    root: 'the release',
    windowsNames: false,
    nameLimits: { segmentBytes: TAR_MAX_SEGMENT_BYTES, pathBytes: TAR_MAX_PATH_BYTES },
    reserved: { segment: '.buildonce', why: 'which deploys reserve for the manifest' },
    uniqueNames: true,
    throughSymlinks: 'refuse',
    laterLinks: 'refuse-retarget',
    lexicalTargets: false,
  },
  cache: {
    kinds: ['file', 'contiguous', 'dir', 'symlink', 'link'],
    root: 'the archive',
    windowsNames: true,
    uniqueNames: false,
    throughSymlinks: 'resolve',
    laterLinks: 'recheck',
    lexicalTargets: true,
  },
} as const satisfies Record<string, ArchiveProfile>;

export type ArchiveProfileName = keyof typeof ARCHIVE_PROFILES;

const KIND_NAMES: Record<ArchiveEntryKind, [one: string, many: string]> = {
  file: ['file', 'files'],
  contiguous: ['contiguous file', 'contiguous files'],
  dir: ['directory', 'directories'],
  symlink: ['symlink', 'symlinks'],
  link: ['hard link', 'hard links'],
  char: ['character device', 'character devices'],
  block: ['block device', 'block devices'],
  fifo: ['fifo', 'fifos'],
  other: ['special entry', 'special entries'],
};

/** Why a resolution failed. */
type Unresolved = 'leaves' | 'loops';

/**
 * Checks the entries of one archive in order under one profile (stateful: the links seen so far matter).
 * Feed every entry to {@link ArchivePolicy.check}, then call {@link ArchivePolicy.finish}; the first
 * non-undefined result is the reason to refuse (one line, names the entry).
 */
export class ArchivePolicy {
  private readonly profile: ArchiveProfile;
  /** symlinks seen so far: physical path (`a/b`) -> raw target */
  private readonly symlinks = new Map<string, string>();
  /** hard links seen so far: [entry path, raw target] */
  private readonly hardLinks: [string, string][] = [];
  /** kind of every name seen (profiles with unique names) */
  private readonly seen = new Map<string, ArchiveEntryKind>();
  /** names traversed as directories (by entries and by link resolution) */
  private readonly traversed = new Set<string>();

  /** @param profile `deploy` (what a deploy unpacks) or `cache` (what the remote cache stores) */
  constructor(profile: ArchiveProfileName) {
    this.profile = ARCHIVE_PROFILES[profile];
  }

  /** @returns why the entry is refused (one line, names the entry), or undefined when it is acceptable (and remembered) */
  check(e: ArchiveEntry): string | undefined {
    const p = this.profile;
    const shown = show(e.path);
    if (!p.kinds.includes(e.kind)) {
      const allowed = p.kinds.map((k) => KIND_NAMES[k][1]);
      return `${shown} is a ${KIND_NAMES[e.kind][0]}${e.linkpath ? ` (-> ${JSON.stringify(e.linkpath)})` : ''}: only ${allowed.slice(0, -1).join(', ')} and ${allowed.at(-1)} are allowed`;
    }
    const bad = this.nameProblem(e.path);
    if (bad) return `${shown} ${bad}`;
    const segs = this.segments(e.path);
    if (!segs.length) return e.kind === 'dir' && e.path !== '' ? undefined : `${shown} has no name`;
    const long = p.nameLimits && segs.find((s) => Buffer.byteLength(s) > p.nameLimits!.segmentBytes);
    if (long) return `${shown} has a name segment longer than ${p.nameLimits!.segmentBytes} bytes`;
    if (p.reserved && segs[0] === p.reserved.segment) return `${shown} is under ${p.reserved.segment}/, ${p.reserved.why}`;

    let parent = segs.slice(0, -1);
    if (p.throughSymlinks === 'refuse' || p.uniqueNames) {
      for (let i = 1; i < segs.length; i++) {
        const name = segs.slice(0, i).join('/');
        if (p.throughSymlinks === 'refuse' && this.symlinks.has(name)) return `${shown} is placed through the symlink ${JSON.stringify(name)}`;
        const kind = this.seen.get(name);
        if (p.uniqueNames && kind !== undefined && kind !== 'dir')
          return `${shown} needs ${JSON.stringify(name)} to be a directory, but it is a ${KIND_NAMES[kind][0]}`;
      }
    }
    if (p.throughSymlinks === 'resolve') {
      const r = this.resolve([], parent);
      if (typeof r === 'string') return `${shown} is placed through earlier symlinks and ${r === 'leaves' ? `lands outside ${p.root}` : phrase(r, p)}`;
      parent = r;
    }
    // links are keyed by their resolved (physical) path: that is what later entries traverse
    const path = [...parent, segs.at(-1)!].join('/');
    const before = this.seen.get(path);
    if (p.uniqueNames && before !== undefined && !(before === 'dir' && e.kind === 'dir'))
      return `${shown} appears twice (a ${KIND_NAMES[before][0]}, then a ${KIND_NAMES[e.kind][0]})`;

    if (e.kind === 'symlink') {
      const why = this.symlinkProblem(shown, path, parent, e.path, e.linkpath ?? '');
      if (why) return why;
      this.symlinks.set(path, e.linkpath!);
    } else if (e.kind === 'link') {
      const target = e.linkpath ?? '';
      const targetBad = this.nameProblem(target) ?? (target ? undefined : 'is empty');
      if (targetBad) return `hard link ${shown} -> ${JSON.stringify(target)}: the target ${targetBad}`;
      const r = this.resolve([], this.segments(target, true));
      if (typeof r === 'string') return `hard link ${shown} -> ${JSON.stringify(target)} ${phrase(r, p)} (resolved through the archive's earlier symlinks)`;
      this.hardLinks.push([e.path, target]);
    }
    for (let i = 1; i < segs.length; i++) this.traversed.add(segs.slice(0, i).join('/'));
    if (p.uniqueNames) this.seen.set(path, e.kind);
    return undefined;
  }

  /**
   * After the last entry (profiles that recheck later links): every symlink and hard-link target resolved
   * again against the FINAL tree the archive describes. A link is followed when it is read, after
   * extraction, so `p -> a/a/b/../../../etc` is harmless while `a` is a directory and escapes once a later
   * `a -> .` exists.
   * @returns why the archive is refused, or undefined
   */
  finish(): string | undefined {
    if (this.profile.laterLinks !== 'recheck') return undefined;
    for (const [physical, target] of this.symlinks) {
      const r = this.resolve(physical.split('/').slice(0, -1), this.segments(target, true));
      if (typeof r === 'string')
        return `symlink ${show(physical)} -> ${JSON.stringify(target)} ${phrase(r, this.profile)} once extracted (resolved through the final tree's symlinks)`;
    }
    for (const [path, target] of this.hardLinks) {
      const r = this.resolve([], this.segments(target, true));
      if (typeof r === 'string')
        return `hard link ${show(path)} -> ${JSON.stringify(target)} ${phrase(r, this.profile)} once extracted (resolved through the final tree's symlinks)`;
    }
    return undefined;
  }

  private symlinkProblem(shown: string, path: string, parent: string[], raw: string, target: string): string | undefined {
    const p = this.profile;
    if (!target) return `symlink ${shown} has an empty target`;
    if (target.includes('\0')) return `symlink ${shown} has a NUL byte in its target`;
    if (this.isAbsolute(target)) return `symlink ${shown} -> ${JSON.stringify(target)} is absolute: it points outside ${p.root}`;
    if (p.laterLinks === 'refuse-retarget' && this.traversed.has(path)) return `symlink ${shown} replaces a directory that earlier entries use`;
    const before = this.symlinks.get(path);
    // GNU tar delays links with `..` targets and keeps the first, others keep the last: refuse the ambiguity
    if (before !== undefined && before !== target)
      return `symlink ${shown} appears twice with different targets (${JSON.stringify(before)}, ${JSON.stringify(target)}): extractors disagree on which one stays`;
    if (p.lexicalTargets) {
      const asText = this.resolveText([...this.segments(raw).slice(0, -1), ...this.segments(target, true)]);
      if (!asText) return `symlink ${shown} -> ${JSON.stringify(target)} points outside ${p.root} read as text`;
    }
    const r = this.resolve(parent, this.segments(target, true));
    if (typeof r === 'string') return `symlink ${shown} -> ${JSON.stringify(target)} ${phrase(r, p)} (resolved through the archive's earlier symlinks)`;
    return undefined;
  }

  /** The problem of a name on its own (phrase after the name), or undefined. */
  private nameProblem(name: string): string | undefined {
    if (name.includes('\0')) return 'contains a NUL byte';
    if (this.isAbsolute(name)) return 'is an absolute path';
    const limits = this.profile.nameLimits;
    if (limits && Buffer.byteLength(name) > limits.pathBytes) return `is longer than ${limits.pathBytes} bytes`;
    if (this.segments(name, true).includes('..')) return 'contains a ".." segment';
    return undefined;
  }

  private isAbsolute(name: string): boolean {
    return name.startsWith('/') || (this.profile.windowsNames && (name.startsWith('\\') || /^[a-zA-Z]:/.test(name)));
  }

  /** A name's segments; without `keepDots`, empty and `.` segments are dropped. */
  private segments(name: string, keepDots = false): string[] {
    const all = name.split(this.profile.windowsNames ? /[\\/]/ : '/');
    return keepDots ? all : all.filter((s) => s !== '' && s !== '.');
  }

  /** `..` applied to the name: false when it climbs above the root. */
  private resolveText(segs: string[]): boolean {
    let depth = 0;
    for (const s of segs) {
      if (s === '' || s === '.') continue;
      depth += s === '..' ? -1 : 1;
      if (depth < 0) return false;
    }
    return true;
  }

  /**
   * Physical resolution of `rest` (segments) from directory `base` through the known symlinks, component by
   * component like the kernel (`..` applies to the resolved directory); names passed as directories are
   * remembered as traversed.
   * @returns the resolved segments, or why not
   */
  private resolve(base: string[], rest: string[]): string[] | Unresolved {
    const cur = [...base];
    const queue = [...rest];
    let expansions = 0;
    while (queue.length) {
      const c = queue.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (!cur.length) return 'leaves';
        cur.pop();
        continue;
      }
      const key = [...cur, c].join('/');
      const target = this.symlinks.get(key);
      if (target === undefined) {
        this.traversed.add(key);
        cur.push(c);
        continue;
      }
      if (++expansions > MAX_LINK_EXPANSIONS) return 'loops';
      if (this.isAbsolute(target)) return 'leaves';
      queue.unshift(...this.segments(target, true));
    }
    return cur;
  }
}

function show(path: string): string {
  return JSON.stringify(path.length > 120 ? `${path.slice(0, 117)}...` : path);
}

function phrase(r: Unresolved, p: ArchiveProfile): string {
  return r === 'loops' ? `loops (more than ${MAX_LINK_EXPANSIONS} symlinks to follow)` : `points outside ${p.root}`;
}

/** node-tar entry type → policy kind. */
export function archiveKindOf(type: string): ArchiveEntryKind {
  switch (type) {
    case 'File':
    case 'OldFile':
      return 'file';
    case 'ContiguousFile':
      return 'contiguous';
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
 * Reads a `.tar.gz` (streamed, constant memory; contents skipped) and applies the `deploy` profile of
 * {@link ArchivePolicy}. Stops at the first refused entry.
 * @returns undefined when every entry is acceptable, else the one-line reason
 * @throws Error for unreadable or corrupt archives (the caller reports them as refused)
 */
export async function tarGzPolicyViolation(path: string): Promise<string | undefined> {
  const policy = new ArchivePolicy('deploy');
  let violation: string | undefined;
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry) => {
      if (violation === undefined) violation = policy.check({ path: entry.path, kind: archiveKindOf(entry.type), linkpath: entry.linkpath });
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
  return violation ?? policy.finish();
}
