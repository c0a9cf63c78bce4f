// login with real account shapes: several regions and partitions, --account, ownership of an
// existing secret, dry runs, and refusals that cost no round trip.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { core, createNamespace, dockerConfig, ecrToken, lines, readSecret, runCli, uniqueName } from '../helpers/testbed.js';

const US = '123456789012.dkr.ecr.us-east-1.amazonaws.com';
const EU = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const CN = '123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn';

function expectOneErrorLine(res: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(res.code, 1, res.stderr);
  const errors = lines(res.stderr).filter((l) => l.startsWith('error:'));
  assert.equal(errors.length, 1, res.stderr);
  assert.match(errors[0], pattern);
  assert.doesNotMatch(res.stderr, /\n\s+at /);
}

describe('login: registries and regions', () => {
  it('puts two regions and a China host in one secret, each with its own region\'s token', async () => {
    const ns = await createNamespace(uniqueName('reg-multi'));
    const res = await runCli(['login', '-n', ns, '--registry', US, '--registry', EU, '--registry', CN]);
    assert.equal(res.code, 0, res.stderr);

    const auths = dockerConfig(await readSecret(ns)).auths;
    assert.deepEqual(Object.keys(auths).sort(), [US, CN, EU].sort());
    const expected = {
      [US]: await ecrToken('us-east-1'),
      [EU]: await ecrToken('eu-west-1'),
      [CN]: await ecrToken('cn-north-1'),
    };
    for (const [host, token] of Object.entries(expected)) {
      assert.equal(auths[host].password, token.password, `${host} holds its own region's token`);
      assert.equal(auths[host].auth, Buffer.from(`AWS:${token.password}`).toString('base64'));
    }
    assert.equal(new Set(Object.values(auths).map((a) => a.password)).size, 3, 'three regions, three different tokens');
    const recorded = (await readSecret(ns))?.metadata?.annotations?.['kubectl-ecr.io/registries'];
    assert.equal(recorded, [US, CN, EU].sort().join(','));
  });

  it('takes --account with --region as a shorthand for the registry host', async () => {
    const ns = await createNamespace(uniqueName('reg-account'));
    const res = await runCli(['login', '-n', ns, '--account', '123456789012', '--region', 'eu-west-1']);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(Object.keys(dockerConfig(await readSecret(ns)).auths), [EU]);
  });

  it('refuses a malformed host, an unknown partition and a bad role ARN with one line, before any call', async () => {
    expectOneErrorLine(await runCli(['login', '--registry', 'registry.example.com/team']), /is not an ECR registry host; expected ACCOUNT\.dkr\.ecr\.REGION\.amazonaws\.com/);
    expectOneErrorLine(await runCli(['login', '--registry', '123456789012.dkr.ecr.us-east-1.amazonaws.example']), /\.amazonaws\.example is not the domain of any AWS partition/);
    expectOneErrorLine(await runCli(['login', '--registry', '123456789012.dkr.ecr.cn-north-1.amazonaws.com']), /region cn-north-1 belongs to partition aws-cn, whose hosts end in \.amazonaws\.com\.cn/);
    expectOneErrorLine(await runCli(['login', '--role-arn', 'arn:aws:iam::123:user/bob']), /"arn:aws:iam::123:user\/bob" is not an IAM role ARN; expected arn:aws:iam::ACCOUNT:role\/NAME/);
  });
});

describe('login: a secret kubectl-ecr does not manage', () => {
  it('is left untouched without --force, and taken over with it, keeping its other registries', async () => {
    const ns = await createNamespace(uniqueName('own-foreign'));
    const theirs = { auths: { 'ghcr.io': { auth: Buffer.from('me:token').toString('base64') } } };
    const created = await core.createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name: 'ecr-registry', labels: { owner: 'someone-else' } },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': Buffer.from(JSON.stringify(theirs)).toString('base64') },
      },
    });

    const refused = await runCli(['login', '-n', ns]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`namespace/${ns}: failed: secret/ecr-registry exists and is not managed by kubectl-ecr; pass --force`));
    const untouched = await readSecret(ns);
    assert.equal(untouched?.metadata?.resourceVersion, created.metadata?.resourceVersion, 'not written at all');

    const forced = await runCli(['login', '-n', ns, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    const taken = await readSecret(ns);
    assert.equal(taken?.metadata?.uid, created.metadata?.uid, 'same object');
    assert.equal(taken?.metadata?.labels?.['app.kubernetes.io/managed-by'], 'kubectl-ecr');
    assert.equal(taken?.metadata?.labels?.owner, 'someone-else');
    assert.deepEqual(Object.keys(dockerConfig(taken).auths).sort(), [US, 'ghcr.io'].sort());
  });

  it('says plainly that --force deletes and recreates an Opaque secret of that name', async () => {
    const ns = await createNamespace(uniqueName('own-opaque'));
    const created = await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'ecr-registry' }, type: 'Opaque', stringData: { note: 'x' } } });

    const refused = await runCli(['login', '-n', ns]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /it is of type Opaque; pass --force to replace it \(a Secret's type cannot change in place, so it is deleted and recreated\)/);
    assert.equal((await readSecret(ns))?.type, 'Opaque');

    const forced = await runCli(['login', '-n', ns, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stderr, /the Opaque secret of that name was deleted and recreated with the new type/);
    const replaced = await readSecret(ns);
    assert.equal(replaced?.type, 'kubernetes.io/dockerconfigjson');
    assert.notEqual(replaced?.metadata?.uid, created.metadata?.uid);
  });
});

describe('login: dry runs', () => {
  it('--dry-run=client -o yaml prints the secret with the token redacted and writes nothing', async () => {
    const ns = await createNamespace(uniqueName('dry-client'));
    const res = await runCli(['login', '-n', ns, '--dry-run=client', '-o', 'yaml']);
    assert.equal(res.code, 0, res.stderr);
    const { parse } = await import('yaml');
    const secret = parse(res.stdout);
    assert.equal(secret.kind, 'Secret');
    assert.equal(secret.metadata.namespace, ns);
    const cfg = JSON.parse(Buffer.from(secret.data['.dockerconfigjson'], 'base64').toString());
    assert.deepEqual(cfg.auths[US], { username: 'AWS', password: '[redacted]', auth: '[redacted]' });
    assert.equal(await readSecret(ns), undefined, 'nothing written');
    const sa = await core.readNamespacedServiceAccount({ name: 'default', namespace: ns });
    assert.equal(sa.imagePullSecrets, undefined, 'service account untouched');
    assert.match(res.stderr, /dry run: client, nothing saved/);
  });

  it('redacts every registry\'s credentials in printed secrets, not only the refreshed one', async () => {
    const ns = await createNamespace(uniqueName('dry-kept'));
    const kept = { auths: { 'other.example.com': { username: 'u', password: 'hunter2pw', auth: Buffer.from('u:hunter2pw').toString('base64') } } };
    await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'ecr-registry' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': Buffer.from(JSON.stringify(kept)).toString('base64') } },
    });
    (await import('../helpers/testbed.js')).rememberSecret('hunter2pw');
    for (const dryRun of ['client', 'server', 'none']) {
      const res = await runCli(['login', '-n', ns, '--force', `--dry-run=${dryRun}`, '-o', 'json']);
      assert.equal(res.code, 0, res.stderr); // the leak guard in runCli fails the test on any password
      const cfg = JSON.parse(Buffer.from(JSON.parse(res.stdout).data['.dockerconfigjson'], 'base64').toString());
      assert.deepEqual(cfg.auths['other.example.com'], { username: 'u', password: '[redacted]', auth: '[redacted]' });
    }
    assert.equal(dockerConfig(await readSecret(ns)).auths['other.example.com'].password, 'hunter2pw', 'kept in the cluster');
  });

  it('--dry-run=server has the API server check the writes without saving them', async () => {
    const ns = await createNamespace(uniqueName('dry-server'));
    const res = await runCli(['login', '-n', ns, '--dry-run=server', '-o', 'json']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(JSON.parse(res.stdout).kind, 'Secret');
    assert.equal(await readSecret(ns), undefined);
    const sa = await core.readNamespacedServiceAccount({ name: 'default', namespace: ns });
    assert.equal(sa.imagePullSecrets, undefined);

    const missing = await runCli(['login', '-n', uniqueName('dry-missing'), '--dry-run=server']);
    assert.equal(missing.code, 1, 'the server still says the namespace does not exist');
    assert.match(missing.stderr, /does not exist/);
  });
});
