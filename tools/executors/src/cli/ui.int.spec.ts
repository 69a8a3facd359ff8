import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEntry } from '@buildonce/release';
import { openStore, parseStoreUrl } from '@buildonce/store';
import { draft } from '@buildonce/release/src/testkit';
import { removeTempDirs, tempDir } from '@buildonce/testing';

afterAll(removeTempDirs);

/** `buildonce ui` as users run it: the bundled bin in a workspace with a file store ledger. */
const bin = resolve(__dirname, '../../bin/buildonce.js');
let ws: string;
const env = { ...process.env, BUILDONCE_STORE: undefined, BUILDONCE_UI_TOKEN: undefined };

beforeAll(async () => {
  ws = tempDir('buildonce-cli-ui-');
  writeFileSync(join(ws, 'nx.json'), '{}\n');
  const store = openStore(parseStoreUrl(`file://${join(ws, '.buildonce/store')}`));
  await appendEntry(store, draft('5150', { project: 'rust-scorer', environment: 'dev' }));
  await appendEntry(store, draft('5150', { project: 'rust-scorer', environment: 'staging' }));
});

describe('buildonce ui', () => {
  it('--static writes the pipeline and every history page', () => {
    const out = join(ws, 'site');
    const r = spawnSync(process.execPath, [bin, 'ui', `--static=${out}`], { cwd: ws, encoding: 'utf8', env });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/wrote \d+ pages to /);
    const index = readFileSync(join(out, 'index.html'), 'utf8');
    expect(index).toContain('rust-scorer');
    expect(index).toContain('5150');
    expect(existsSync(join(out, 'history/rust-scorer/staging.html'))).toBe(true);
    expect(existsSync(join(out, 'assets/ui.js'))).toBe(true);
  });

  it('serves on loopback until SIGTERM, then exits 0', async () => {
    const child = spawn(process.execPath, [bin, 'ui', '--port=0'], { cwd: ws, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const url = await new Promise<string>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`no URL within 60 s: ${stderr}`)), 60_000);
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr);
        if (m) {
          clearTimeout(t);
          res(m[1]!);
        }
      });
      child.once('exit', (code) => rej(new Error(`exited ${code}: ${stderr}`)));
    });
    const page = await (await fetch(url)).text();
    expect(page).toContain('rust-scorer');
    const exit = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
  });

  it('refuses a non-loopback --host without BUILDONCE_UI_TOKEN in one line', () => {
    const r = spawnSync(process.execPath, [bin, 'ui', '--host=0.0.0.0', '--port=0'], { cwd: ws, encoding: 'utf8', env });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^buildonce ui: --host=0\.0\.0\.0 .*BUILDONCE_UI_TOKEN/);
  });
});
