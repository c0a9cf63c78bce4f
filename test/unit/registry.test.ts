import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { groupRegistries, parseRegistry, registryFor } from '../../src/aws/registry.js';
import { UserError } from '../../src/cli/errors.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof UserError, `expected a UserError, got ${err}`);
    return err.code;
  }
  assert.fail('expected an error');
}

describe('parseRegistry', () => {
  it('reads account and region from a commercial host', () => {
    const r = parseRegistry('123456789012.dkr.ecr.eu-west-1.amazonaws.com');
    assert.deepEqual(r, {
      host: '123456789012.dkr.ecr.eu-west-1.amazonaws.com',
      account: '123456789012',
      region: 'eu-west-1',
      partition: 'aws',
      fips: false,
      dualStack: false,
    });
  });

  it('knows China, GovCloud, FIPS and dual-stack forms', () => {
    assert.equal(parseRegistry('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn').partition, 'aws-cn');
    assert.equal(parseRegistry('123456789012.dkr.ecr.us-gov-west-1.amazonaws.com').partition, 'aws-us-gov');
    const fips = parseRegistry('123456789012.dkr.ecr-fips.us-east-1.amazonaws.com');
    assert.equal(fips.fips, true);
    assert.equal(fips.region, 'us-east-1');
    const ds = parseRegistry('123456789012.dkr-ecr.us-west-2.on.aws');
    assert.equal(ds.dualStack, true);
    assert.equal(ds.region, 'us-west-2');
  });

  it('accepts a scheme and trailing slash as people paste them, and lower-cases', () => {
    assert.equal(parseRegistry('https://123456789012.DKR.ECR.us-east-1.amazonaws.com/').host, '123456789012.dkr.ecr.us-east-1.amazonaws.com');
  });

  it('rejects hosts that are not ECR with the expected form in the message', () => {
    for (const bad of ['docker.io', '12345.dkr.ecr.us-east-1.amazonaws.com', '123456789012.dkr.ecr.amazonaws.com', '']) {
      assert.equal(code(() => parseRegistry(bad)), 'InvalidRegistry', bad);
    }
    assert.match(String((() => { try { parseRegistry('docker.io'); } catch (e) { return (e as UserError).line(); } })()), /ACCOUNT\.dkr\.ecr\.REGION\.amazonaws\.com/);
  });

  it('rejects a domain of no partition, and a region under the wrong partition domain', () => {
    assert.equal(code(() => parseRegistry('123456789012.dkr.ecr.us-east-1.amazonaws.example')), 'UnknownPartition');
    assert.equal(code(() => parseRegistry('123456789012.dkr.ecr.cn-north-1.amazonaws.com')), 'UnknownPartition');
  });
});

describe('registryFor', () => {
  it('builds the host of an account in a region, with the partition domain', () => {
    assert.equal(registryFor('123456789012', 'cn-northwest-1').host, '123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn');
    assert.equal(code(() => registryFor('42', 'us-east-1')), 'InvalidAccount');
  });
});

describe('groupRegistries', () => {
  it('puts hosts of one region together whatever the account, and splits regions and variants', () => {
    const hosts = [
      '111111111111.dkr.ecr.us-east-1.amazonaws.com',
      '222222222222.dkr.ecr.us-east-1.amazonaws.com',
      '111111111111.dkr.ecr.eu-west-1.amazonaws.com',
      '111111111111.dkr.ecr-fips.us-east-1.amazonaws.com',
    ].map(parseRegistry);
    const groups = groupRegistries(hosts).map((g) => g.map((r) => r.host));
    assert.equal(groups.length, 3);
    assert.deepEqual(groups[0], [hosts[0].host, hosts[1].host]);
  });
});

describe('validateSelector', async () => {
  const { validateSelector } = await import('../../src/kube/namespaces.js');
  it('accepts kubectl selector forms and refuses broken ones before any call', () => {
    for (const ok of ['team=web', 'team==web,env!=dev', 'tier in (web,api)', 'env notin (dev), !legacy', 'app.kubernetes.io/part-of=x']) {
      assert.doesNotThrow(() => validateSelector('--namespace-selector', ok), ok);
    }
    for (const bad of ['team in (web', '', 'a b', '=web']) {
      assert.throws(() => validateSelector('--namespace-selector', bad), /is not a label selector/, bad);
    }
  });
});
