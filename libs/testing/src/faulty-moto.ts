import { startFaultProxy, type FaultProxy, type FaultProxyOptions } from './fault-proxy';
import { setProcessEnv, startMoto, type MotoServer } from './moto';

/** moto_server with one S3 bucket, reached through a fault proxy (see {@link startFaultyMotoBucket}). */
export interface FaultyMotoBucket {
  moto: MotoServer;
  /** the proxy in front of moto: AWS_ENDPOINT_URL in `process.env` points at it */
  proxy: FaultProxy;
  bucket: string;
  /** stops the proxy, then moto, and restores the `process.env` values it replaced */
  stop(): Promise<void>;
}

/**
 * Starts moto_server, creates `bucket` and a fault proxy in front of moto ({@link startFaultProxy}, no
 * faults unless `faults` or the returned proxy asks for them), and puts moto's credentials into
 * `process.env` with AWS_ENDPOINT_URL set to the proxy: every AWS SDK client the code under test builds
 * goes through the proxy.
 * @param faults the proxy's options other than its target
 * @throws when moto or the proxy does not start, or the bucket cannot be created (what started is stopped again)
 */
export async function startFaultyMotoBucket(bucket: string, faults: Omit<FaultProxyOptions, 'target'> = {}): Promise<FaultyMotoBucket> {
  const moto = await startMoto();
  let proxy: FaultProxy;
  try {
    await moto.createBucket(bucket);
    proxy = await startFaultProxy({ ...faults, target: moto.endpoint });
  } catch (e) {
    await moto.stop();
    throw e;
  }
  const restoreEnv = setProcessEnv({ ...moto.env, AWS_ENDPOINT_URL: proxy.endpoint });
  return {
    moto,
    proxy,
    bucket,
    stop: async () => {
      await proxy.stop();
      await moto.stop();
      restoreEnv();
    },
  };
}
