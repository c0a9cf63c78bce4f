import assert from 'node:assert/strict';
import { describe, it, before } from 'node:test';
import {
  core,
  createNamespace,
  dockerConfig,
  ecrToken,
  lines,
  pullSecrets,
  readSecret,
  runCli,
  tb,
  uniqueName,
} from '../helpers/testbed.js';

const ACCOUNT = '123456789012';
const HOST = `${ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com`;

describe('kubectl ecr login', () => {
  let a: string;
  let b: string;
  let c: string;

  before(async () => {
    [a, b, c] = await Promise.all(['login-a', 'login-b', 'login-c'].map((p) => createNamespace(uniqueName(p))));
  });

  it('writes exactly the expected dockerconfigjson in several namespaces and attaches it to default', async () => {
    const res = await runCli(['login', '-n', a, '-n', b, '-n', c]);
    assert.equal(res.code, 0, res.stderr);

    const expected = await ecrToken('us-east-1');
    for (const ns of [a, b, c]) {
      const secret = await readSecret(ns);
      assert.equal(secret?.type, 'kubernetes.io/dockerconfigjson');
      assert.deepEqual(dockerConfig(secret), {
        auths: {
          [HOST]: {
            username: expected.username,
            password: expected.password,
            auth: Buffer.from(`${expected.username}:${expected.password}`).toString('base64'),
          },
        },
      });
      assert.equal(secret?.metadata?.labels?.['app.kubernetes.io/managed-by'], 'kubectl-ecr');
      assert.equal(secret?.metadata?.annotations?.['kubectl-ecr.io/registries'], HOST);
      assert.equal(secret?.metadata?.annotations?.['kubectl-ecr.io/attached-service-accounts'], 'default');
      const expires = Date.parse(secret?.metadata?.annotations?.['kubectl-ecr.io/expires-at'] ?? '');
      assert.ok(Math.abs(expires - expected.expiresAt.getTime()) < 5_000, 'expiry recorded from ECR');

      const sa = await core.readNamespacedServiceAccount({ name: 'default', namespace: ns });
      assert.deepEqual(pullSecrets(sa), ['ecr-registry']);
    }
    assert.match(res.stderr, /Using AWS identity arn:aws:/);
    assert.match(res.stderr, new RegExp(`namespace/${a}: secret/ecr-registry created; added to serviceaccount/default`));
    assert.match(res.stderr, /3 namespaces: 3 created, 0 updated, 0 unchanged, 0 failed/);
    assert.equal(res.stdout, '', 'nothing on stdout without -o');
    assert.equal(lines(res.stderr).length, 5, `identity, three namespaces and a summary, nothing else:\n${res.stderr}`);
  });

  it('keeps a service account\'s other pull secrets, the secret\'s other registries and annotations, and updates in place', async () => {
    const ns = await createNamespace(uniqueName('login-keep'));
    await core.replaceNamespacedServiceAccount({
      name: 'default',
      namespace: ns,
      body: { metadata: { name: 'default', namespace: ns }, imagePullSecrets: [{ name: 'dockerhub' }, { name: 'quay' }] },
    });
    assert.equal((await runCli(['login', '-n', ns])).code, 0);
    const first = await readSecret(ns);

    // Someone adds a registry entry and an annotation of their own.
    const cfg = dockerConfig(first);
    cfg.auths['ghcr.io'] = { auth: Buffer.from('me:ghp').toString('base64') };
    first!.data!['.dockerconfigjson'] = Buffer.from(JSON.stringify(cfg)).toString('base64');
    first!.metadata!.annotations!['team.example.com/owner'] = 'platform';
    first!.metadata!.labels!['team'] = 'platform';
    await core.replaceNamespacedSecret({ name: 'ecr-registry', namespace: ns, body: first! });

    const res = await runCli(['login', '-n', ns]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, new RegExp(`namespace/${ns}: secret/ecr-registry (updated|unchanged)`));
    const second = await readSecret(ns);
    assert.equal(second?.metadata?.uid, first?.metadata?.uid, 'same object, not deleted and recreated');
    assert.deepEqual(Object.keys(dockerConfig(second).auths).sort(), ['123456789012.dkr.ecr.us-east-1.amazonaws.com', 'ghcr.io']);
    assert.equal(dockerConfig(second).auths['ghcr.io'].auth, Buffer.from('me:ghp').toString('base64'));
    assert.equal(second?.metadata?.annotations?.['team.example.com/owner'], 'platform');
    assert.equal(second?.metadata?.labels?.['team'], 'platform');

    const sa = await core.readNamespacedServiceAccount({ name: 'default', namespace: ns });
    assert.deepEqual(pullSecrets(sa), ['dockerhub', 'quay', 'ecr-registry']);
    // Attached once: a second run does not add it again, and records only what it attached.
    assert.equal(second?.metadata?.annotations?.['kubectl-ecr.io/attached-service-accounts'], 'default');
  });

  it('does not claim a service account that already referenced the secret', async () => {
    const ns = await createNamespace(uniqueName('login-pre'));
    await core.replaceNamespacedServiceAccount({
      name: 'default',
      namespace: ns,
      body: { metadata: { name: 'default', namespace: ns }, imagePullSecrets: [{ name: 'ecr-registry' }] },
    });
    const res = await runCli(['login', '-n', ns]);
    assert.equal(res.code, 0, res.stderr);
    const secret = await readSecret(ns);
    assert.equal(secret?.metadata?.annotations?.['kubectl-ecr.io/attached-service-accounts'], undefined);
    const sa = await core.readNamespacedServiceAccount({ name: 'default', namespace: ns });
    assert.deepEqual(pullSecrets(sa), ['ecr-registry']);
  });

  it('fails a namespace that does not exist on its own, and finishes the others', async () => {
    const ok = await createNamespace(uniqueName('login-ok'));
    const missing = uniqueName('login-missing');
    const res = await runCli(['login', '-n', ok, '-n', missing]);
    assert.equal(res.code, 1);
    assert.ok(await readSecret(ok), 'the existing namespace got its secret');
    assert.ok(lines(res.stderr).includes(`namespace/${missing}: failed: namespace "${missing}" does not exist`), res.stderr);
    assert.match(res.stderr, /2 namespaces: 1 created, 0 updated, 0 unchanged, 1 failed/);
    assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
  });

  it('writes into the context\'s namespace when none is given, and attaches to named service accounts', async () => {
    const ns = await createNamespace(uniqueName('login-ctx'));
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'builder' } } });
    const kc = (await import('../helpers/testbed.js')).adminConfig();
    kc.contexts = kc.contexts.map((ctx) => ({ ...ctx, namespace: ns }));
    const file = `${tb.dir}/kubeconfig-${ns}`;
    (await import('node:fs')).writeFileSync(file, kc.exportConfig());

    const res = await runCli(['login', '--kubeconfig', file, '--service-account', 'builder']);
    assert.equal(res.code, 0, res.stderr);
    assert.ok(await readSecret(ns));
    const builder = await core.readNamespacedServiceAccount({ name: 'builder', namespace: ns });
    assert.deepEqual(pullSecrets(builder), ['ecr-registry']);
    const dflt = await core.readNamespacedServiceAccount({ name: 'default', namespace: ns });
    assert.equal(dflt.imagePullSecrets, undefined, 'default left alone when another account is named');
  });

  it('reports a missing service account for that namespace and exits 1', async () => {
    const ns = await createNamespace(uniqueName('login-nosa'));
    const res = await runCli(['login', '-n', ns, '--service-account', 'ghost']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /serviceaccount\/ghost not found/);
    assert.ok(await readSecret(ns), 'the secret itself was written');
  });

  describe('one clear line and exit 1, no stack trace', () => {
    const expectOneLine = (res: { code: number; stderr: string; stdout: string }, pattern: RegExp) => {
      assert.equal(res.code, 1, res.stderr);
      const errs = lines(res.stderr).filter((l) => l.startsWith('error:'));
      assert.equal(errs.length, 1, res.stderr);
      assert.match(errs[0], pattern);
      assert.doesNotMatch(res.stderr, /\n\s+at /);
      assert.equal(res.stdout, '');
    };

    it('without AWS credentials', async () => {
      const res = await runCli(['login', '-n', 'default'], {
        env: { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_PROFILE: undefined },
      });
      expectOneLine(res, /^error: no AWS credentials found; .*--profile/);
    });

    it('with an unknown context', async () => {
      expectOneLine(await runCli(['login', '--context', 'nope']), /^error: context "nope" not found in .*; known contexts: testbed/);
    });

    it('with a missing kubeconfig', async () => {
      expectOneLine(await runCli(['login', '--kubeconfig', '/nonexistent/kubeconfig']), /^error: kubeconfig \/nonexistent\/kubeconfig does not exist/);
      expectOneLine(await runCli(['login'], { env: { KUBECONFIG: undefined } }), /^error: no kubeconfig found/);
    });
  });
});
