/**
 * A small ELF reader: what glibc symbol versions a dynamically linked executable needs.
 *
 * Format source: System V ABI (ELF header, section headers, `.dynsym`) and the Linux Standard Base Core
 * spec, "Symbol Versioning" (`.gnu.version` = SHT_GNU_versym, `.gnu.version_r` = SHT_GNU_verneed with
 * Elf_Verneed / Elf_Vernaux records). Reads 32/64-bit, little/big endian. No external tools (objdump).
 */
import { readFile } from 'node:fs/promises';
import { BuildonceError } from '@buildonce/errors';

const SHT_DYNSYM = 11;
const SHT_GNU_VERNEED = 0x6ffffffe;
const SHT_GNU_VERSYM = 0x6fffffff;

/** The input is not an ELF file this reader understands. */
export class ElfFormatError extends BuildonceError {
  override name = 'ElfFormatError';
}

/** One version a binary needs from a shared library (an `Elf_Vernaux` record), e.g. `GLIBC_2.34` from `libc.so.6`. */
export interface VersionNeed {
  /** library soname, e.g. `libc.so.6` */
  file: string;
  /** version name, e.g. `GLIBC_2.34` */
  version: string;
  /** dynamic symbols bound to this version, e.g. `__libc_start_main` (sorted) */
  symbols: string[];
}

/** What an ELF file says about itself and its versioned needs. */
export interface ElfInfo {
  /** `e_machine` name: `x86_64`, `aarch64`, or `machine-<n>` */
  machine: string;
  class: 32 | 64;
  needs: VersionNeed[];
}

const MACHINES: Record<number, string> = { 3: 'x86', 40: 'arm', 62: 'x86_64', 183: 'aarch64' };

/**
 * The `e_machine` name of an ELF file from its header alone (`x86_64`, `aarch64`, …, `machine-<n>`), or
 * undefined when `head` does not start with an ELF header (System V ABI: EI_DATA at 5, e_machine at 18).
 * @param head at least the first 20 bytes of the file
 */
export function elfMachine(head: Buffer): string | undefined {
  if (head.length < 20 || head.readUInt32BE(0) !== 0x7f454c46 || (head[5] !== 1 && head[5] !== 2)) return undefined;
  const id = head[5] === 1 ? head.readUInt16LE(18) : head.readUInt16BE(18);
  return MACHINES[id] ?? `machine-${id}`;
}

interface Section {
  type: number;
  offset: number;
  size: number;
  link: number;
  entsize: number;
}

/**
 * Parses an ELF image's symbol version needs.
 * @param buf the whole file
 * @param source name for error messages (a path)
 * @throws ElfFormatError when `buf` is not a (well-formed) ELF file
 */
export function readElfVersionNeeds(buf: Buffer, source = 'file'): ElfInfo {
  const bad = (why: string) => new ElfFormatError(`${source} is not a readable ELF executable (${why})`);
  if (buf.length < 52 || buf.readUInt32BE(0) !== 0x7f454c46) throw bad('no ELF magic');
  const cls = buf[4] === 2 ? 64 : buf[4] === 1 ? 32 : 0;
  if (!cls) throw bad(`EI_CLASS ${buf[4]}`);
  const le = buf[5] === 1;
  if (!le && buf[5] !== 2) throw bad(`EI_DATA ${buf[5]}`);
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const addr = (o: number) => (cls === 64 ? Number(le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o)) : u32(o));
  const check = (o: number, n: number, what: string) => {
    if (o < 0 || n < 0 || o + n > buf.length) throw bad(`${what} outside the file`);
  };

  const machineId = u16(18);
  const shoff = addr(cls === 64 ? 0x28 : 0x20);
  const shentsize = u16(cls === 64 ? 0x3a : 0x2e);
  const shnum = u16(cls === 64 ? 0x3c : 0x30);
  const sections: Section[] = [];
  if (shoff && shnum) {
    check(shoff, shentsize * shnum, 'section headers');
    for (let i = 0; i < shnum; i++) {
      const b = shoff + i * shentsize;
      sections.push(
        cls === 64
          ? { type: u32(b + 4), offset: addr(b + 0x18), size: addr(b + 0x20), link: u32(b + 0x28), entsize: addr(b + 0x38) }
          : { type: u32(b + 4), offset: u32(b + 0x10), size: u32(b + 0x14), link: u32(b + 0x18), entsize: u32(b + 0x24) },
      );
    }
  }
  const str = (sec: Section | undefined, off: number): string => {
    if (!sec) throw bad('missing string table');
    const start = sec.offset + off;
    check(start, 1, 'string');
    const end = buf.indexOf(0, start);
    if (end < 0 || end > sec.offset + sec.size) throw bad('unterminated string');
    return buf.toString('latin1', start, end);
  };

  // .gnu.version_r: Elf_Verneed { vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32 }
  //                 Elf_Vernaux { vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32 }
  const byIndex = new Map<number, VersionNeed>();
  const needs: VersionNeed[] = [];
  for (const vr of sections.filter((s) => s.type === SHT_GNU_VERNEED)) {
    check(vr.offset, vr.size, '.gnu.version_r');
    const strtab = sections[vr.link];
    let off = vr.offset;
    for (let guard = 0; guard < 10_000; guard++) {
      check(off, 16, 'Verneed');
      const cnt = u16(off + 2);
      const file = str(strtab, u32(off + 4));
      let aux = off + u32(off + 8);
      for (let j = 0; j < cnt; j++) {
        check(aux, 16, 'Vernaux');
        const need: VersionNeed = { file, version: str(strtab, u32(aux + 8)), symbols: [] };
        byIndex.set(u16(aux + 6) & 0x7fff, need);
        needs.push(need);
        const next = u32(aux + 12);
        if (!next) break;
        aux += next;
      }
      const next = u32(off + 12);
      if (!next) break;
      off += next;
    }
  }

  // .gnu.version (u16 per .dynsym entry) → which symbols bind to which needed version.
  const versym = sections.find((s) => s.type === SHT_GNU_VERSYM);
  const dynsym = sections.find((s) => s.type === SHT_DYNSYM);
  if (versym && dynsym && byIndex.size) {
    const symsize = dynsym.entsize || (cls === 64 ? 24 : 16);
    const count = Math.floor(dynsym.size / symsize);
    check(versym.offset, count * 2, '.gnu.version');
    check(dynsym.offset, count * symsize, '.dynsym');
    const dynstr = sections[dynsym.link];
    for (let i = 1; i < count; i++) {
      const need = byIndex.get(u16(versym.offset + i * 2) & 0x7fff);
      if (!need) continue;
      need.symbols.push(str(dynstr, u32(dynsym.offset + i * symsize)));
    }
    for (const n of needs) n.symbols.sort();
  }
  return { machine: MACHINES[machineId] ?? `machine-${machineId}`, class: cls, needs };
}

/** Reads a file and parses it with {@link readElfVersionNeeds}. @throws ElfFormatError; fs errors */
export async function readElfFile(path: string): Promise<ElfInfo> {
  return readElfVersionNeeds(await readFile(path), path);
}

/** Compares dotted versions numerically (`2.9` < `2.34`). @returns negative, 0 or positive */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** The glibc versions (`GLIBC_x.y`, any library) an ELF needs, highest first, with the symbols that need them. */
export function glibcNeeds(info: ElfInfo): Array<{ version: string; symbols: string[] }> {
  const merged = new Map<string, Set<string>>();
  for (const n of info.needs) {
    const m = /^GLIBC_(\d+(?:\.\d+)*)$/.exec(n.version);
    if (!m) continue;
    const set = merged.get(m[1]) ?? new Set<string>();
    n.symbols.forEach((s) => set.add(s));
    merged.set(m[1], set);
  }
  return [...merged.entries()].map(([version, s]) => ({ version, symbols: [...s].sort() })).sort((a, b) => compareVersions(b.version, a.version));
}

/** A binary needs a newer glibc than the Lambda runtime ships. */
export class GlibcTooNewError extends BuildonceError {
  override name = 'GlibcTooNewError';
}

/**
 * Refuses a binary whose glibc needs exceed `ceiling`.
 * @param label how to name the binary (e.g. `[rust-scorer] bootstrap`)
 * @param ceiling highest glibc the runtime has, e.g. `2.34`
 * @param runtime the runtime's name for the message, e.g. `provided.al2023`
 * @returns the highest glibc version needed (`undefined` when it needs no versioned glibc symbol)
 * @throws GlibcTooNewError naming the version, a symbol that needs it and the fix
 */
export function checkGlibcCeiling(info: ElfInfo, ceiling: string, label: string, runtime: string): string | undefined {
  const needs = glibcNeeds(info);
  const top = needs[0];
  if (top && compareVersions(top.version, ceiling) > 0) {
    const sym = top.symbols[0];
    const more = top.symbols.length > 1 ? ` and ${top.symbols.length - 1} more` : '';
    throw new GlibcTooNewError(
      `${label} needs GLIBC_${top.version}${sym ? ` (symbol ${sym}@GLIBC_${top.version}${more})` : ''} but ${runtime} has glibc ${ceiling}: it would fail at cold start; build against glibc <= ${ceiling} (cargo-lambda with zig does: --target <triple>.${ceiling}) or on an older distribution`,
    );
  }
  return top?.version;
}
