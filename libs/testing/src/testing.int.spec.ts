import { existsSync, lstatSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, startMoto } from './moto';
import { makeTempWorkspace } from './workspace';

describe('startMoto', () => {
  it('starts a real S3 API on a free loopback port, creates buckets, and stops by PID', async () => {
    const moto = await startMoto();
    expect(moto.endpoint).toBe(`http://127.0.0.1:${moto.port}`);
    await moto.createBucket('helper-check');
    const list = await (await fetch(`${moto.endpoint}/`)).text();
    expect(list).toContain('<Name>helper-check</Name>');
    await moto.stop();
    await expect(fetch(`${moto.endpoint}/`)).rejects.toThrow();
  });

  it('freePort returns a usable port number', async () => {
    const p = await freePort();
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(65536);
  });
});

describe('makeTempWorkspace', () => {
  it('copies sources without build outputs, links node_modules and commits once', () => {
    const ws = makeTempWorkspace();
    try {
      expect(existsSync(join(ws.root, 'nx.json'))).toBe(true);
      expect(lstatSync(join(ws.root, 'node_modules', 'nx')).isSymbolicLink()).toBe(true);
      // workspace packages resolve to the copy's own sources, not the repository's
      expect(realpathSync(join(ws.root, 'node_modules', '@buildonce', 'artifact'))).toBe(realpathSync(join(ws.root, 'libs', 'artifact')));
      for (const skipped of ['dist', '.nx', '.buildonce', 'apps/rust-scorer/target']) expect(existsSync(join(ws.root, skipped))).toBe(false);
      expect(ws.run('git', ['rev-list', '--count', 'HEAD']).trim()).toBe('1');
      expect(ws.run('git', ['status', '--porcelain']).trim()).toBe('');
      expect(JSON.parse(readFileSync(join(ws.root, 'package.json'), 'utf8')).name).toBe('buildonce');
      expect(ws.runResult('git', ['no-such-command']).status).not.toBe(0);
    } finally {
      ws.dispose();
    }
    expect(existsSync(ws.root)).toBe(false);
  });
});
