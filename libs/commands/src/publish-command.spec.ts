import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runPublishCommand } from './commands';
import type { ProjectName } from '@buildonce/values';
import { writeTestBuildOutput } from '@buildonce/testing';

const temps: string[] = [];
const temp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
};
afterEach(() => {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});

function buildOutput(): string {
  return writeTestBuildOutput(temp('out-'), { version: '42', bytes: Buffer.from('zip bytes'), toolchain: 't' });
}

describe('runPublishCommand namespaces', () => {
  it('publishes pull-request builds into the preview namespace, untrusted, never where trusted promotions read', async () => {
    const store = temp('st-');
    const lines: string[] = [];
    const gho = join(store, 'gh-output');
    const r = await runPublishCommand({
      project: 'svc' as ProjectName,
      workspaceRoot: temp('ws-'),
      outputDir: buildOutput(),
      store: `file://${store}`,
      processEnv: { GITHUB_ACTIONS: 'true', GITHUB_REF: 'refs/pull/51/merge', GITHUB_SHA: 'abc', GITHUB_RUN_ID: '7', GITHUB_OUTPUT: gho },
      log: (l) => lines.push(l),
    });
    expect(r.namespace).toBe('preview');
    expect(existsSync(join(store, 'artifacts'))).toBe(false);
    const stored = JSON.parse(readFileSync(join(store, 'preview/artifacts/svc/42/manifest.json'), 'utf8'));
    expect(stored.publish).toMatchObject({ trusted: false, pr: '51', commit: 'abc', runId: '7' });
    expect(readFileSync(gho, 'utf8')).toContain(`artifact_uri=file://${store}/preview/artifacts/svc/42/\nversion=42\n`);
    expect(lines.join('\n')).toContain('(preview namespace)');
  });

  it('publishes trusted builds under artifacts/ and --preview forces the preview namespace', async () => {
    const store = temp('st-');
    const out = buildOutput();
    const trusted = await runPublishCommand({
      project: 'svc' as ProjectName,
      workspaceRoot: temp('ws-'),
      outputDir: out,
      store: `file://${store}`,
      processEnv: { GITHUB_REF: 'refs/heads/main' },
      log: () => undefined,
    });
    expect(trusted.namespace).toBe('trusted');
    expect(JSON.parse(readFileSync(join(store, 'artifacts/svc/42/manifest.json'), 'utf8')).publish.trusted).toBe(true);
    const forced = await runPublishCommand({
      project: 'svc' as ProjectName,
      workspaceRoot: temp('ws-'),
      outputDir: out,
      store: `file://${store}`,
      preview: true,
      processEnv: {},
      log: () => undefined,
    });
    expect(forced.namespace).toBe('preview');
    expect(existsSync(join(store, 'preview/artifacts/svc/42/bootstrap.zip'))).toBe(true);
  });
});
