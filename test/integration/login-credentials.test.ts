// Where credentials come from (an assumed role, IRSA's web identity) and how AWS and the API server
// are reached (proxies from the environment and from the kubeconfig).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startProxy, type CountingProxy } from '../helpers/proxy.js';
import { adminConfig, createNamespace, readSecret, runCli, tb, uniqueName } from '../helpers/testbed.js';

const ROLE = 'arn:aws:iam::123456789012:role/ecr-puller';

describe('login: credentials', () => {
  it('assumes --role-arn on top of the base credentials and says so', async () => {
    const ns = await createNamespace(uniqueName('cred-role'));
    const res = await runCli(['login', '-n', ns, '--role-arn', ROLE, '--role-session-name', 'nightly', '--external-id', 'ext-1']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /Using AWS identity arn:aws:sts::123456789012:assumed-role\/ecr-puller\/nightly/);
    assert.equal((await readSecret(ns))?.metadata?.annotations?.['kubectl-ecr.io/identity'], 'arn:aws:sts::123456789012:assumed-role/ecr-puller/nightly');
  });

  it('takes the IRSA path (web identity token file and role) through the SDK chain', async () => {
    const ns = await createNamespace(uniqueName('cred-irsa'));
    const tokenFile = `${tb.dir}/irsa-token-${ns}`;
    // A service account token as EKS projects it; moto's STS does not verify it.
    writeFileSync(tokenFile, 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZS1zeXN0ZW06ZWNyIn0.c2ln');
    const res = await runCli(['login', '-n', ns], {
      env: {
        AWS_ACCESS_KEY_ID: undefined,
        AWS_SECRET_ACCESS_KEY: undefined,
        AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
        AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/irsa-ecr',
        AWS_ROLE_SESSION_NAME: 'irsa-session',
      },
    });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /Using AWS identity arn:aws:sts::123456789012:assumed-role\/irsa-ecr\/irsa-session/);
    assert.ok(await readSecret(ns));
  });
});

describe('login: proxies', () => {
  let proxy: CountingProxy;
  before(async () => {
    proxy = await startProxy();
  });
  after(() => proxy.close());

  const apiHost = new URL(tb.server).host;
  const motoHost = new URL(tb.motoUrl).host;

  it('sends AWS calls and API server calls through HTTPS_PROXY / HTTP_PROXY', async () => {
    const ns = await createNamespace(uniqueName('proxy-env'));
    proxy.carried.length = 0;
    const res = await runCli(['login', '-n', ns], { env: { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url, NO_PROXY: '' } });
    assert.equal(res.code, 0, res.stderr);
    assert.ok(await readSecret(ns));
    // moto is plain http: STS GetCallerIdentity and ECR GetAuthorizationToken, each forwarded.
    assert.ok(proxy.carried.filter((h) => h === motoHost).length >= 2, `AWS calls through the proxy: ${proxy.carried}`);
    assert.ok(proxy.carried.includes(apiHost), `a CONNECT tunnel to the API server: ${proxy.carried}`);
  });

  it('goes direct to hosts NO_PROXY names', async () => {
    const ns = await createNamespace(uniqueName('proxy-no'));
    proxy.carried.length = 0;
    const res = await runCli(['login', '-n', ns], { env: { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1' } });
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(proxy.carried, []);
  });

  it('uses a kubeconfig cluster\'s proxy-url for the API server', async () => {
    const ns = await createNamespace(uniqueName('proxy-kc'));
    const kc = adminConfig();
    kc.clusters = kc.clusters.map((c) => ({ ...c, proxyUrl: proxy.url }));
    const file = `${tb.dir}/kubeconfig-proxy-${ns}`;
    writeFileSync(file, kc.exportConfig());
    proxy.carried.length = 0;
    const res = await runCli(['login', '-n', ns, '--kubeconfig', file]);
    assert.equal(res.code, 0, res.stderr);
    assert.ok(proxy.carried.includes(apiHost), `${proxy.carried}`);
    assert.ok(!proxy.carried.includes(motoHost), 'AWS calls go direct without proxy variables');
  });
});

describe('login: what AWS refuses', () => {
  it('names the missing permission when the identity may not get a token', async () => {
    const { createIamUser } = await import('../testbed/testbed.js');
    const { rememberSecret } = await import('../helpers/testbed.js');
    const user = await createIamUser(tb, {
      userName: uniqueName('no-ecr'),
      policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecr:DescribeRepositories', Resource: '*' }] },
    });
    rememberSecret(user.secretAccessKey);
    const ns = await createNamespace(uniqueName('denied'));
    const res = await runCli(['login', '-n', ns], { env: { AWS_ACCESS_KEY_ID: user.accessKeyId, AWS_SECRET_ACCESS_KEY: user.secretAccessKey } });
    assert.equal(res.code, 1);
    const errors = res.stderr.split('\n').filter((l) => l.startsWith('error:'));
    assert.equal(errors.length, 1, res.stderr);
    assert.match(errors[0], /^error: AWS denied ecr:GetAuthorizationToken in us-east-1: .*not authorized.*; grant ecr:GetAuthorizationToken/);
    assert.equal(await readSecret(ns), undefined, 'nothing written without a token');
  });
});

describe('login: EKS Pod Identity', () => {
  it('gets credentials from the Pod Identity agent endpoint the SDK chain knows', async () => {
    const { createServer } = await import('node:http');
    const seen: string[] = [];
    const agent = createServer((req, res) => {
      seen.push(String(req.headers.authorization));
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({
        AccessKeyId: tb.awsEnv.AWS_ACCESS_KEY_ID,
        SecretAccessKey: tb.awsEnv.AWS_SECRET_ACCESS_KEY,
        Token: 'pod-identity-session',
        Expiration: new Date(Date.now() + 3600_000).toISOString(),
      }));
    });
    await new Promise<void>((r) => agent.listen(0, '127.0.0.1', r));
    const port = (agent.address() as { port: number }).port;
    const ns = await createNamespace(uniqueName('pod-identity'));
    const authFile = `${tb.dir}/pod-identity-token-${ns}`;
    writeFileSync(authFile, 'projected-sa-token');
    try {
      const res = await runCli(['login', '-n', ns], {
        env: {
          AWS_ACCESS_KEY_ID: undefined,
          AWS_SECRET_ACCESS_KEY: undefined,
          AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${port}/v1/credentials`,
          AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: authFile,
        },
      });
      assert.equal(res.code, 0, res.stderr);
      assert.ok(await readSecret(ns));
      assert.ok(seen.includes('projected-sa-token'), 'the agent was asked, with the projected token');
    } finally {
      agent.close();
    }
  });
});
