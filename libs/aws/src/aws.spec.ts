import { describe, expect, it } from 'vitest';
import { awsClientSettings, awsClients, customEndpoint, DEFAULT_MAX_ATTEMPTS } from './index';

describe('awsClientSettings', () => {
  it('leaves the region to the SDK chain unless a custom endpoint needs one', () => {
    expect(awsClientSettings('lambda', {})).toEqual({ maxAttempts: DEFAULT_MAX_ATTEMPTS, retryMode: 'standard' });
    expect(awsClientSettings('ssm', { AWS_ENDPOINT_URL: 'http://127.0.0.1:5000' }).region).toBe('us-east-1');
    expect(awsClientSettings('ssm', { AWS_ENDPOINT_URL: 'http://x', AWS_DEFAULT_REGION: 'eu-west-1' }).region).toBe('eu-west-1');
    expect(awsClientSettings('ssm', { AWS_REGION: 'eu-north-1', AWS_DEFAULT_REGION: 'eu-west-1' }).region).toBe('eu-north-1');
  });

  it('uses path-style S3 addressing with a custom endpoint, overridable', () => {
    expect(awsClientSettings('s3', {}).forcePathStyle).toBe(false);
    expect(awsClientSettings('s3', { AWS_ENDPOINT_URL_S3: 'http://m' }).forcePathStyle).toBe(true);
    expect(awsClientSettings('s3', { AWS_ENDPOINT_URL: 'http://m', BUILDONCE_S3_FORCE_PATH_STYLE: 'false' }).forcePathStyle).toBe(false);
    expect(awsClientSettings('lambda', { AWS_ENDPOINT_URL: 'http://m' }).forcePathStyle).toBeUndefined();
  });

  it('prefers the service-specific endpoint and honours AWS_MAX_ATTEMPTS', () => {
    expect(customEndpoint('lambda', { AWS_ENDPOINT_URL: 'a', AWS_ENDPOINT_URL_LAMBDA: 'b' })).toBe('b');
    expect(customEndpoint('s3', { AWS_ENDPOINT_URL_LAMBDA: 'b' })).toBeUndefined();
    expect(customEndpoint('cloudwatch', { AWS_ENDPOINT_URL: 'a', AWS_ENDPOINT_URL_CLOUDWATCH: 'c' })).toBe('c');
    expect(awsClientSettings('s3', { AWS_MAX_ATTEMPTS: '9' }).maxAttempts).toBe(9);
    expect(awsClientSettings('s3', { AWS_MAX_ATTEMPTS: 'x' }).maxAttempts).toBe(DEFAULT_MAX_ATTEMPTS);
  });

  it('takes the endpoint and static keys from the env it is given (not process.env)', () => {
    const s = awsClientSettings('kms', {
      AWS_ENDPOINT_URL: 'http://a',
      AWS_ENDPOINT_URL_KMS: 'http://k',
      AWS_ACCESS_KEY_ID: 'id',
      AWS_SECRET_ACCESS_KEY: 'sk',
      AWS_SESSION_TOKEN: 't',
    });
    expect(s).toMatchObject({ endpoint: 'http://k', credentials: { accessKeyId: 'id', secretAccessKey: 'sk', sessionToken: 't' } });
    expect(awsClientSettings('kms', { AWS_ACCESS_KEY_ID: 'id' })).not.toHaveProperty('credentials');
  });
});

describe('awsClients', () => {
  it('creates each client once, with the computed settings and overrides', async () => {
    const clients = awsClients({
      env: { AWS_ENDPOINT_URL: 'http://127.0.0.1:1', AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' },
      overrides: { lambda: { maxAttempts: 2 } },
    });
    const s3 = clients.s3();
    expect(clients.s3()).toBe(s3);
    expect(await s3.config.region()).toBe('us-east-1');
    expect(s3.config.forcePathStyle).toBe(true);
    expect(await clients.lambda().config.maxAttempts()).toBe(2);
    expect(await clients.ssm().config.maxAttempts()).toBe(DEFAULT_MAX_ATTEMPTS);
    expect(clients.cloudwatch()).toBe(clients.cloudwatch());
    expect(await clients.cloudwatch().config.maxAttempts()).toBe(DEFAULT_MAX_ATTEMPTS);
    // the endpoint and keys of the given env, whatever process.env says
    const ep = await s3.config.endpoint!();
    expect(`${ep.protocol}//${ep.hostname}:${ep.port}`).toBe('http://127.0.0.1:1');
    expect(await s3.config.credentials()).toMatchObject({ accessKeyId: 'a', secretAccessKey: 'b' });
  });
});
