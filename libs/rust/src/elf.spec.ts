import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkGlibcCeiling, compareVersions, ElfFormatError, glibcNeeds, GlibcTooNewError, readElfFile, readElfVersionNeeds } from './elf';

const fixture = join(__dirname, 'fixtures', 'glibc-too-new.aarch64.elf');

describe('ELF symbol version needs', () => {
  it('reads .gnu.version_r and the symbols bound to each version (arm64 fixture)', async () => {
    const info = await readElfFile(fixture);
    expect(info.machine).toBe('aarch64');
    expect(info.class).toBe(64);
    const needs = glibcNeeds(info);
    expect(needs.map((n) => n.version)).toEqual(['2.36', '2.34', '2.17']);
    expect(needs[0].symbols).toEqual(['arc4random']);
    expect(needs[1].symbols).toContain('__libc_start_main');
    expect(info.needs.every((n) => n.file === 'libc.so.6')).toBe(true);
  });

  it('refuses a binary needing a newer glibc than the runtime, naming the symbol', async () => {
    const info = await readElfFile(fixture);
    expect(() => checkGlibcCeiling(info, '2.34', '[x] bootstrap', 'provided.al2023')).toThrow(GlibcTooNewError);
    expect(() => checkGlibcCeiling(info, '2.34', '[x] bootstrap', 'provided.al2023')).toThrow(
      /^\[x\] bootstrap needs GLIBC_2\.36 \(symbol arc4random@GLIBC_2\.36\) but provided\.al2023 has glibc 2\.34/,
    );
    expect(checkGlibcCeiling(info, '2.36', 'b', 'r')).toBe('2.36');
  });

  it('reads a real x86_64 executable (node itself)', () => {
    const info = readElfVersionNeeds(readFileSync(process.execPath), process.execPath);
    expect(info.machine).toBe('x86_64');
    expect(glibcNeeds(info)[0]?.version).toMatch(/^2\.\d+$/);
  });

  it('rejects what is not ELF in one line', () => {
    expect(() => readElfVersionNeeds(Buffer.from('#!/bin/sh\necho hi\n'.repeat(4)), 'script.sh')).toThrow(ElfFormatError);
    const truncated = readFileSync(fixture).subarray(0, 200);
    expect(() => readElfVersionNeeds(truncated, 'cut.elf')).toThrow(/cut\.elf is not a readable ELF executable \(section headers outside the file\)/);
  });

  it('compares dotted versions numerically', () => {
    expect(compareVersions('2.9', '2.34')).toBeLessThan(0);
    expect(compareVersions('2.34', '2.34')).toBe(0);
    expect(compareVersions('2.35', '2.34')).toBeGreaterThan(0);
  });
});
