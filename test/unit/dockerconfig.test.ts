import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { parseRegistry } from '../../src/aws/registry.js';
import { SecretValue } from '../../src/aws/secret-value.js';
import type { RegistryToken } from '../../src/aws/tokens.js';
import { encodeDockerConfig, mergeDockerConfig, parseDockerConfig } from '../../src/refresh/dockerconfig.js';

const token = (host: string, password: string): RegistryToken => ({
  registry: parseRegistry(host),
  username: 'AWS',
  password: new SecretValue(password),
  expiresAt: new Date('2030-01-01T00:00:00Z'),
});
const HOST = '123456789012.dkr.ecr.us-east-1.amazonaws.com';

describe('docker config', () => {
  it('writes username, password and auth for each host as docker expects', () => {
    const cfg = mergeDockerConfig({ auths: {} }, [token(HOST, 'p@ss:word')]);
    assert.deepEqual(cfg.auths[HOST], {
      username: 'AWS',
      password: 'p@ss:word',
      auth: Buffer.from('AWS:p@ss:word').toString('base64'),
    });
  });

  it('keeps other registries and other top-level keys, replaces our host', () => {
    const existing = parseDockerConfig(
      encodeDockerConfig({ auths: { 'ghcr.io': { auth: 'eA==' }, [HOST]: { auth: 'old' } }, credHelpers: { x: 'y' } }),
    );
    const cfg = mergeDockerConfig(existing, [token(HOST, 'new')]);
    assert.deepEqual(Object.keys(cfg.auths).sort(), ['123456789012.dkr.ecr.us-east-1.amazonaws.com', 'ghcr.io']);
    assert.equal(cfg.auths['ghcr.io'].auth, 'eA==');
    assert.equal(cfg.auths[HOST].password, 'new');
    assert.deepEqual(cfg.credHelpers, { x: 'y' });
  });

  it('treats unreadable data as empty rather than failing the refresh', () => {
    assert.deepEqual(parseDockerConfig('not base64 json'), { auths: {} });
    assert.deepEqual(parseDockerConfig(undefined), { auths: {} });
  });

  it('redacts when asked, for dry runs', () => {
    const cfg = mergeDockerConfig({ auths: {} }, [token(HOST, 'hunter2')], true);
    assert.ok(!JSON.stringify(cfg).includes('hunter2'));
  });
});

describe('SecretValue', () => {
  it('never shows its value by accident', () => {
    const v = new SecretValue('hunter2');
    const shown = [String(v), `${v}`, JSON.stringify({ v }), inspect(v), inspect({ v })].join(' ');
    assert.ok(!shown.includes('hunter2'), shown);
    assert.equal(v.reveal(), 'hunter2');
  });
});
