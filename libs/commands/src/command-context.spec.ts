import { describe, expect, it } from 'vitest';
import { tempDir, removeTempDirs } from '@buildonce/testing';
import { afterAll } from 'vitest';
import { openWorkspaceStore } from './commands';

afterAll(removeTempDirs);

describe('openWorkspaceStore builds the command context once', () => {
  it("builds the command's one set of AWS clients from the command's environment, lazily and cached", async () => {
    const root = tempDir('ctx-');
    const env = { AWS_REGION: 'ap-south-2', AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', BUILDONCE_STORE: `file://${root}/store` };
    const ws = await openWorkspaceStore({ workspaceRoot: root, env });
    expect(await ws.aws.kms().config.region()).toBe('ap-south-2');
    expect(await ws.aws.cloudwatch().config.region()).toBe('ap-south-2');
    expect(ws.aws.kms()).toBe(ws.aws.kms());
  });
});
