import type { AwsClients } from '@buildonce/aws';

/**
 * AWS clients for unit tests that must never reach AWS: every client call throws, naming the service,
 * so a test that unexpectedly needs a client fails on the first use instead of trying the default chain.
 */
export function unusedAwsClients(): AwsClients {
  const refuse = (service: string) => (): never => {
    throw new Error(`this test reached AWS (${service}) but was given unusedAwsClients(): pass real clients (moto) or a stub`);
  };
  return { s3: refuse('s3'), lambda: refuse('lambda'), ssm: refuse('ssm'), ecr: refuse('ecr'), kms: refuse('kms'), cloudwatch: refuse('cloudwatch') };
}
