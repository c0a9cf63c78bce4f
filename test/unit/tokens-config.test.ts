import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRegistry } from '../../src/aws/registry.js';
import { ecrClientConfig } from '../../src/aws/tokens.js';

const session = { credentials: async () => ({ accessKeyId: 'a', secretAccessKey: 'b' }) };

describe('ecrClientConfig', () => {
  it('asks the SDK for the FIPS or dual-stack endpoint that matches the host', () => {
    const fips = ecrClientConfig(parseRegistry('123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com'), session, {});
    assert.equal(fips.region, 'us-gov-west-1');
    assert.equal(fips.useFipsEndpoint, true);
    assert.equal(fips.useDualstackEndpoint, false);
    const ds = ecrClientConfig(parseRegistry('123456789012.dkr-ecr.eu-west-1.on.aws'), session, {});
    assert.equal(ds.useDualstackEndpoint, true);
  });

  it('leaves the variant to a custom endpoint, which the SDK cannot combine with FIPS', () => {
    const host = parseRegistry('123456789012.dkr.ecr-fips.us-east-1.amazonaws.com');
    for (const env of [{ AWS_ENDPOINT_URL: 'http://127.0.0.1:5000' }, { AWS_ENDPOINT_URL_ECR: 'http://127.0.0.1:5000' }]) {
      const cfg = ecrClientConfig(host, session, env);
      assert.equal(cfg.useFipsEndpoint, undefined);
      assert.equal(cfg.useDualstackEndpoint, undefined);
    }
  });

  it('gives a FIPS client a FIPS endpoint when resolved by the SDK', async () => {
    const { ECRClient } = await import('@aws-sdk/client-ecr');
    const client = new ECRClient(ecrClientConfig(parseRegistry('123456789012.dkr.ecr-fips.us-east-1.amazonaws.com'), session, {}));
    const UseFIPS = await client.config.useFipsEndpoint();
    const UseDualStack = await client.config.useDualstackEndpoint();
    const ep = await client.config.endpointProvider({ Region: await client.config.region(), UseFIPS, UseDualStack });
    assert.equal(ep.url.hostname, 'api.ecr-fips.us-east-1.amazonaws.com');
    client.destroy();
  });
});
