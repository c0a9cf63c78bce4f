// status against the real API server: each state an operator meets, with the exit code scripts rely on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppsV1Api } from '@kubernetes/client-node';
import { adminConfig, core, createNamespace, rememberSecret, runCli, tb, uniqueName } from '../helpers/testbed.js';

const US = '123456789012.dkr.ecr.us-east-1.amazonaws.com';
const EU = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const apps = adminConfig().makeApiClient(AppsV1Api);

async function deploy(namespace: string, name: string, image: string, spec: Record<string, unknown> = {}) {
  await apps.createNamespacedDeployment({
    namespace,
    body: { metadata: { name }, spec: { replicas: 0, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image }], ...spec } } } },
  });
}

/** Login as an IAM user whose ECR tokens moto issues with this lifetime. */
async function loginWithTtl(ns: string, seconds: number) {
  const { createIamUser } = await import('../testbed/testbed.js');
  const user = await createIamUser(tb, { userName: uniqueName('ttl'), policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' }] } });
  rememberSecret(user.secretAccessKey);
  const res = await fetch(`${tb.motoUrl}/testbed/token-ttl`, { method: 'POST', body: JSON.stringify({ seconds, accessKeyId: user.accessKeyId }) });
  assert.equal(res.status, 200);
  const login = await runCli(['login', '-n', ns], { env: { AWS_ACCESS_KEY_ID: user.accessKeyId, AWS_SECRET_ACCESS_KEY: user.secretAccessKey } });
  assert.equal(login.code, 0, login.stderr);
}

describe('status', () => {
  it('healthy: secret fresh, referenced, and every ECR workload can pull: exit 0', async () => {
    const ns = await createNamespace(uniqueName('st-ok'));
    assert.equal((await runCli(['login', '-n', ns])).code, 0);
    await deploy(ns, 'web', `${US}/web:1`);
    const res = await runCli(['status', '-n', ns]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /^NAMESPACE\s+SECRET\s+REGISTRIES\s+EXPIRES IN\s+SERVICE ACCOUNTS\s+STATUS$/m);
    assert.match(res.stdout, new RegExp(`^${ns}\\s+ecr-registry\\s+${US.replace(/\./g, '\\.')}\\s+1[12]h\\d*m?\\s+default\\s+OK$`, 'm'));
    assert.match(res.stdout, new RegExp(`${ns}\\s+deployment/web\\s+OK\\s+can pull \\(via serviceaccount/default\\)`));
    assert.match(res.stderr, /Healthy\./);

    const json = JSON.parse((await runCli(['status', '-n', ns, '-o', 'json'])).stdout);
    assert.equal(json.status, 'ok');
    assert.ok(!JSON.stringify(json).includes('auth-token'), 'no credentials in the data');
  });

  it('an expired token is an error (exit 1); one near expiry a warning (exit 0)', async () => {
    const expired = await createNamespace(uniqueName('st-exp'));
    await loginWithTtl(expired, -120);
    const e = await runCli(['status', '-n', expired]);
    assert.equal(e.code, 1, e.stdout + e.stderr);
    assert.match(e.stdout, /expired\s+default\s+Error/);
    assert.match(e.stderr, /the token expired 2m ago/);

    const near = await createNamespace(uniqueName('st-near'));
    await loginWithTtl(near, 3600);
    const n = await runCli(['status', '-n', near]);
    assert.equal(n.code, 0, n.stdout + n.stderr);
    assert.match(n.stdout, /(59m|1h)\s+default\s+Warning/);
    assert.match(n.stderr, /warning: secret .*: the token expires in (59m|1h)/);
  });

  it('a target namespace without the secret, and a service account not referencing it, are errors', async () => {
    const [a, b, idle] = await Promise.all([createNamespace(uniqueName('st-a')), createNamespace(uniqueName('st-b')), createNamespace(uniqueName('st-idle'))]);
    assert.equal((await runCli(['login', '-n', a, '--no-service-account'])).code, 0);
    await deploy(b, 'web', `${US}/web:1`); // b pulls from ECR, so it needs the secret
    const quiet = await runCli(['status', '-n', idle]);
    assert.equal(quiet.code, 0, `a namespace where nothing pulls from ECR needs no secret: ${quiet.stdout}${quiet.stderr}`);
    const res = await runCli(['status', '-n', a, '-n', b]);
    assert.equal(res.code, 1);
    assert.match(res.stdout, new RegExp(`^${b}\\s+ecr-registry \\(missing\\)\\s+<none>\\s+<none>\\s+<none>\\s+Error`, 'm'));
    assert.match(res.stderr, new RegExp(`secret ${b}/ecr-registry: secret/ecr-registry is missing: run kubectl ecr login -n ${b}`));
    assert.match(res.stderr, new RegExp(`secret ${a}/ecr-registry: serviceaccount/default does not reference it`));
  });

  it('follows the pull path of each workload: no pull secret, another region\'s host, own secrets hiding the account\'s', async () => {
    const ns = await createNamespace(uniqueName('st-path'));
    assert.equal((await runCli(['login', '-n', ns])).code, 0); // us-east-1, on default
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'builder' } } });
    await deploy(ns, 'nosecret', `${US}/a:1`, { serviceAccountName: 'builder' });
    await deploy(ns, 'euimage', `${EU}/a:1`);
    await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'hidden' }, spec: { imagePullSecrets: [{ name: 'dockerhub' }], containers: [{ name: 'c', image: `${US}/a:1` }] } } });
    await deploy(ns, 'dockerhub-only', 'nginx:1.25');

    const res = await runCli(['status', '-n', ns]);
    assert.equal(res.code, 1, res.stdout);
    assert.match(res.stdout, /deployment\/nosecret\s+Error\s+pulls from 123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com with no pull secret \(none in the template, none on serviceaccount\/builder\)/);
    assert.match(res.stdout, /deployment\/euimage\s+Error\s+needs 123456789012\.dkr\.ecr\.eu-west-1\.amazonaws\.com, but serviceaccount\/default only has 123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com \(another region's host\)/);
    assert.match(res.stdout, /pod\/hidden\s+Error\s+its own imagePullSecrets \(dockerhub\) hide serviceaccount\/default's, which has 123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com/);
    assert.doesNotMatch(res.stdout, /dockerhub-only/, 'workloads not on ECR are not judged');
  });

  it('calls out a pod in ImagePullBackOff with the likely cause', async () => {
    const ns = await createNamespace(uniqueName('st-backoff'));
    const pod = await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'web' }, spec: { containers: [{ name: 'app', image: `${US}/web:1` }] } } });
    pod.status = { phase: 'Pending', containerStatuses: [{ name: 'app', image: `${US}/web:1`, imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' } } }] };
    await core.replaceNamespacedPodStatus({ name: 'web', namespace: ns, body: pod });
    const res = await runCli(['status', '-n', ns]);
    assert.equal(res.code, 1);
    assert.match(res.stdout, /pod\/web\s+Error\s+ImagePullBackOff: pulls from 123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com with no pull secret/);
  });

  it('reports an install whose last run failed, with the pod\'s reason: exit 1', async () => {
    const { playKubelet } = await import('../helpers/kubelet.js');
    const name = uniqueName('st-inst').slice(0, 30);
    const jobNs = await createNamespace(uniqueName('st-job'));
    const target = await createNamespace(uniqueName('st-t'));
    assert.equal((await runCli(['login', '-n', target])).code, 0);
    const { createIamUser } = await import('../testbed/testbed.js');
    const denied = await createIamUser(tb, { userName: uniqueName('st-denied'), policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecr:DescribeRepositories', Resource: '*' }] } });
    rememberSecret(denied.secretAccessKey);
    const kubelet = playKubelet(jobNs, `kubectl-ecr.io/install=${name}`, { AWS_ROLE_ARN: undefined, AWS_WEB_IDENTITY_TOKEN_FILE: undefined, AWS_ACCESS_KEY_ID: denied.accessKeyId, AWS_SECRET_ACCESS_KEY: denied.secretAccessKey });
    const install = await runCli(['install-cron', '--name', name, '--job-namespace', jobNs, '--auth', 'irsa', '--irsa-role-arn', 'arn:aws:iam::123456789012:role/r', '--registry', US, '-n', target, '--timeout', '120']);
    await kubelet.stop();
    assert.equal(install.code, 1, install.stderr);

    const res = await runCli(['status', '--name', name]);
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stdout, new RegExp(`^${name}\\s+${jobNs}\\s+0 \\*/4 \\* \\* \\*\\s+false\\s+.*Error$`, 'm'));
    assert.match(res.stderr, /install .*: the last run \(job\/.*\) failed: BackoffLimitExceeded.*Error \(exit 1\)/);
    await runCli(['uninstall', '--name', name]);
  });

  it('says it could not check (exit 3) when the API server cannot be reached', async () => {
    const kc = adminConfig();
    kc.clusters = kc.clusters.map((c) => ({ ...c, server: 'https://127.0.0.1:1' }));
    const file = `${tb.dir}/kubeconfig-down`;
    (await import('node:fs')).writeFileSync(file, kc.exportConfig());
    const res = await runCli(['status', '--kubeconfig', file]);
    assert.equal(res.code, 3, res.stderr);
    assert.equal((await runCli(['status', '--context', 'nope'])).code, 3, 'an unknown context is "could not check" too');
    const ghost = await runCli(['status', '--name', 'no-such-install']);
    assert.equal(ghost.code, 1);
    assert.match(ghost.stderr, /^error: no kubectl-ecr install named "no-such-install"/m);
    assert.match(res.stderr, /^error: cannot read the cluster's state: cannot reach the API server \(ECONNREFUSED\)/m);
  });
});

describe('status --verify', () => {
  it('asks the registry itself: accepted with the right password, rejected with a wrong one', async (t) => {
    const { setRegistryPassword } = await import('../testbed/testbed.js');
    const registry = tb.registry;
    if (!registry && process.env.KUBECTL_ECR_TESTBED_REGISTRY !== 'required') {
      // .ci/run installs the packages and requires the registry, so CI never skips this.
      t.skip('no credential-checking registry: apt-get install docker-registry apache2-utils');
      return;
    }
    assert.ok(registry, 'the test bed runs a registry that checks credentials (docker-registry with htpasswd)');
    const env = { NODE_EXTRA_CA_CERTS: registry.caFile };
    const ns = await createNamespace(uniqueName('st-verify'));
    assert.equal((await runCli(['login', '-n', ns])).code, 0);

    const ok = await runCli(['status', '-n', ns, '--verify'], { env });
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, new RegExp(`^${ns}\\s+ecr-registry\\s+${US.replace(/\./g, '\\.')}\\s+accepted$`, 'm'));

    // The registry now wants another password: what ECR does once a token is no longer valid.
    await setRegistryPassword(registry, US, 'a-different-password');
    try {
      const bad = await runCli(['status', '-n', ns, '--verify'], { env });
      assert.equal(bad.code, 1, bad.stdout + bad.stderr);
      assert.match(bad.stdout, new RegExp(`^${ns}\\s+ecr-registry\\s+${US.replace(/\./g, '\\.')}\\s+rejected \\(HTTP 401\\)$`, 'm'));
      assert.match(bad.stderr, new RegExp(`error: secret ${ns}/ecr-registry: ${US.replace(/\./g, '\\.')} rejected the stored credentials`));
    } finally {
      await setRegistryPassword(registry, US, null);
    }
  });
});
