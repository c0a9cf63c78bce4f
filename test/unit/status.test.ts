import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { derivedExpiry } from '../../src/status/gather.js';
import { imageHost, judgeSecret, judgeWorkload } from '../../src/status/judge.js';
import type { PodSource, SecretState } from '../../src/status/model.js';

const US = '123456789012.dkr.ecr.us-east-1.amazonaws.com';
const now = Date.parse('2026-06-01T12:00:00Z');

function secret(over: Partial<SecretState> = {}): SecretState {
  return { namespace: 'ns', name: 'ecr-registry', present: true, managed: true, hosts: [US], expiresAt: '2026-06-01T22:00:00Z', expirySource: 'recorded', referencedBy: ['default'], expectedOn: ['default'], credentials: {}, ...over };
}
function pod(over: Partial<PodSource> = {}): PodSource {
  return { namespace: 'ns', kind: 'Pod', name: 'p', images: [`${US}/app:1`], ownSecrets: [], serviceAccount: 'default', serviceAccountSecrets: ['ecr-registry'], ...over };
}
const index = (...s: SecretState[]) => new Map(s.map((x) => [`${x.namespace}/${x.name}`, x]));

describe('status judgement', () => {
  it('reads the registry host of an image as Kubernetes does', () => {
    assert.equal(imageHost(`${US}/a/b:1`), US);
    assert.equal(imageHost('nginx:1'), undefined);
    assert.equal(imageHost('library/nginx'), undefined);
    assert.equal(imageHost('localhost:5000/a'), 'localhost:5000');
  });

  it('grades expiry: fresh ok, under two hours a warning, past an error', () => {
    assert.equal(judgeSecret(secret(), now).severity, 'ok');
    assert.equal(judgeSecret(secret({ expiresAt: '2026-06-01T13:00:00Z' }), now).severity, 'warning');
    assert.equal(judgeSecret(secret({ expiresAt: '2026-06-01T11:00:00Z' }), now).severity, 'error');
  });

  it('uses the service account\'s secrets only when the pod has none of its own', () => {
    assert.equal(judgeWorkload(pod(), index(secret()), now).severity, 'ok');
    const hidden = judgeWorkload(pod({ ownSecrets: ['hub'] }), index(secret()), now);
    assert.equal(hidden.severity, 'error');
    assert.match(hidden.message, /hide serviceaccount\/default's/);
  });

  it('wants an entry for exactly the image\'s host', () => {
    const eu = secret({ hosts: ['123456789012.dkr.ecr.eu-west-1.amazonaws.com'] });
    assert.match(judgeWorkload(pod(), index(eu), now).message, /another region's host/);
  });

  it('explains a pull back-off from what the kubelet reported when the secret looks right', () => {
    const near = secret({ expiresAt: '2026-06-01T13:00:00Z' });
    const f = judgeWorkload(pod({ waiting: { reason: 'ImagePullBackOff', message: 'failed to authorize: 401 Unauthorized' } }), index(near), now);
    assert.equal(f.severity, 'error');
    assert.match(f.message, /^ImagePullBackOff: the registry refused the credentials/);
  });

  it('derives expiry from an ECR password when nothing was recorded', () => {
    const pw = Buffer.from(JSON.stringify({ payload: 'x', expiration: 1780000000 })).toString('base64');
    assert.equal(derivedExpiry([pw, 'not-json']), new Date(1780000000 * 1000).toISOString());
    assert.equal(derivedExpiry(['plain']), undefined);
  });
});
