// install-cron and uninstall against the real API server, with the real CronJob and Job
// controllers; the test plays the kubelet for the Job's pods.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { playKubelet, runPod, serviceAccountKubeconfig } from '../helpers/kubelet.js';
import { adminConfig, core, createNamespace, readSecret, rememberSecret, runCli, tb, uniqueName } from '../helpers/testbed.js';

const REGISTRY = '123456789012.dkr.ecr.us-east-1.amazonaws.com';
const IRSA = 'arn:aws:iam::123456789012:role/ecr-refresher';

async function labelled(install: string): Promise<string[]> {
  const { KubernetesObjectApi } = await import('@kubernetes/client-node');
  const api = KubernetesObjectApi.makeApiClient(adminConfig());
  const kinds: Array<[string, string]> = [
    ['batch/v1', 'CronJob'], ['v1', 'ConfigMap'], ['v1', 'ServiceAccount'], ['v1', 'Secret'],
    ['rbac.authorization.k8s.io/v1', 'Role'], ['rbac.authorization.k8s.io/v1', 'RoleBinding'],
    ['rbac.authorization.k8s.io/v1', 'ClusterRole'], ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'],
  ];
  const out: string[] = [];
  for (const [v, k] of kinds) {
    const list = await api.list(v, k, undefined, undefined, undefined, undefined, undefined, `kubectl-ecr.io/install=${install}`);
    for (const i of list.items) out.push(`${k}/${i.metadata?.namespace ?? ''}/${i.metadata?.name}`);
  }
  return out.sort();
}

function kubectl(args: string[], input?: string) {
  return spawnSync(`${tb.binDir}/kubectl`, ['--kubeconfig', tb.kubeconfig, ...args], { input, encoding: 'utf8' });
}

describe('install-cron', () => {
  it('installs, converges, prunes dropped namespaces, and uninstalls without a trace', async () => {
    const name = uniqueName('ic').slice(0, 30);
    const jobNs = await createNamespace(uniqueName('ic-job'));
    const [a, b] = await Promise.all([createNamespace(uniqueName('ic-a')), createNamespace(uniqueName('ic-b'))]);
    const base = ['install-cron', '--name', name, '--job-namespace', jobNs, '--auth', 'irsa', '--irsa-role-arn', IRSA, '--registry', REGISTRY, '--no-wait'];

    const first = await runCli([...base, '-n', a, '-n', b]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /cronjob\/.* created/);
    assert.match(first.stderr, /"Action": "ecr:GetAuthorizationToken"/, 'prints the IAM policy');
    assert.match(first.stderr, /sts:AssumeRoleWithWebIdentity/, 'prints the IRSA trust policy');
    const objects = await labelled(name);
    assert.ok(objects.includes(`Role/${a}/kubectl-ecr-${name}`) && objects.includes(`Role/${b}/kubectl-ecr-${name}`));

    const rvs = async () => JSON.stringify(await Promise.all(objects.map(async (o) => {
      const [kind, ns, n] = o.split('/');
      const { KubernetesObjectApi } = await import('@kubernetes/client-node');
      const api = KubernetesObjectApi.makeApiClient(adminConfig());
      const apiVersion = kind === 'CronJob' ? 'batch/v1' : kind.includes('Role') ? 'rbac.authorization.k8s.io/v1' : 'v1';
      const obj = await api.read({ apiVersion, kind, metadata: { name: n, namespace: ns || undefined } });
      return `${o}@${obj.metadata?.resourceVersion}`;
    })));
    const before = await rvs();
    const jobsBefore = (await core.listNamespacedPod({ namespace: jobNs })).items.length;
    const second = await runCli([...base, '-n', a, '-n', b]);
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stderr, / (created|configured|pruned)\b/, second.stderr);
    assert.match(second.stderr, /Nothing changed; no run started/);
    assert.equal(await rvs(), before, 'a second install-cron writes nothing');
    assert.equal((await core.listNamespacedPod({ namespace: jobNs })).items.length, jobsBefore);

    const pruned = await runCli([...base, '-n', a]);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.match(pruned.stderr, new RegExp(`role/kubectl-ecr-${name} -n ${b} pruned`));
    const after = await labelled(name);
    assert.ok(!after.some((o) => o.includes(`/${b}/`)), `nothing left in ${b}: ${after}`);
    assert.ok(after.includes(`Role/${a}/kubectl-ecr-${name}`));

    const gone = await runCli(['uninstall', '--name', name]);
    assert.equal(gone.code, 0, gone.stderr);
    assert.deepEqual(await labelled(name), []);
  });

  it('the CronJob\'s command, run as its own service account, refreshes every target and nothing else', async () => {
    const name = uniqueName('icsa').slice(0, 30);
    const jobNs = await createNamespace(uniqueName('icsa-job'));
    const [a, b, other] = await Promise.all(['icsa-a', 'icsa-b', 'icsa-other'].map((p) => createNamespace(uniqueName(p))));
    await core.createNamespacedSecret({ namespace: a, body: { metadata: { name: 'unrelated' }, stringData: { k: 'v' } } });
    const res = await runCli(['install-cron', '--name', name, '--job-namespace', jobNs, '--auth', 'irsa', '--irsa-role-arn', IRSA, '--registry', REGISTRY, '-n', a, '-n', b, '--no-wait']);
    assert.equal(res.code, 0, res.stderr);

    // The pod the CronJob would make, run as the kubelet would run it (IRSA webhook emulated).
    const { BatchV1Api } = await import('@kubernetes/client-node');
    const cj = await adminConfig().makeApiClient(BatchV1Api).readNamespacedCronJob({ name, namespace: jobNs });
    const pod = { metadata: { name: 'x', namespace: jobNs }, spec: cj.spec!.jobTemplate.spec!.template.spec! };
    const run = await runPod(pod);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /assumed-role\/ecr-refresher\//, 'the IRSA role was used');
    for (const ns of [a, b]) {
      const s = await readSecret(ns);
      assert.equal(s?.metadata?.labels?.['kubectl-ecr.io/install'], name);
    }
    assert.equal(await readSecret(other), undefined);

    // The same identity may not read other secrets nor write outside its namespaces.
    const kc = await serviceAccountKubeconfig(jobNs, name);
    const can = (args: string[]) => spawnSync(`${tb.binDir}/kubectl`, ['--kubeconfig', kc, ...args], { encoding: 'utf8' });
    assert.notEqual(can(['get', 'secret', 'unrelated', '-n', a]).status, 0, 'cannot read another secret');
    assert.match(can(['auth', 'can-i', 'get', 'secret/unrelated', '-n', a]).stdout, /no/);
    assert.match(can(['auth', 'can-i', 'create', 'secret/ecr-registry', '-n', other]).stdout, /no/);
    assert.match(can(['auth', 'can-i', 'update', 'serviceaccount/default', '-n', other]).stdout, /no/);
    assert.match(can(['auth', 'can-i', 'list', 'secrets', '-n', a]).stdout, /no/);
    const outside = await runCli(['login', '-n', other, '--registry', REGISTRY], { env: { KUBECONFIG: kc } });
    assert.equal(outside.code, 1);
    assert.match(outside.stderr, new RegExp(`namespace/${other}: failed: .*forbidden`));

    await runCli(['uninstall', '--name', name, '--purge']);
    assert.equal(await readSecret(a), undefined, '--purge removed the pull secret');
    const sa = await core.readNamespacedServiceAccount({ name: 'default', namespace: a });
    assert.ok(!(sa.imagePullSecrets ?? []).some((r) => r.name === 'ecr-registry'), '--purge detached it');
  });

  it('--wait follows the real Job to success, and to failure with the pod\'s reason', async () => {
    const name = uniqueName('icw').slice(0, 30);
    const jobNs = await createNamespace(uniqueName('icw-job'));
    const target = await createNamespace(uniqueName('icw-t'));
    const kubelet = playKubelet(jobNs, `kubectl-ecr.io/install=${name}`);
    const ok = await runCli(['install-cron', '--name', name, '--job-namespace', jobNs, '--auth', 'irsa', '--irsa-role-arn', IRSA, '--registry', REGISTRY, '-n', target, '--timeout', '60']);
    await kubelet.stop();
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /The first run succeeded/);
    assert.ok(await readSecret(target), 'the run wrote the secret');

    // Now the job's identity lacks ecr:GetAuthorizationToken: each attempt fails, the Job gives up.
    const { createIamUser } = await import('../testbed/testbed.js');
    const denied = await createIamUser(tb, { userName: uniqueName('icw-denied'), policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecr:DescribeRepositories', Resource: '*' }] } });
    rememberSecret(denied.secretAccessKey);
    const failing = playKubelet(jobNs, `kubectl-ecr.io/install=${name}`, {
      AWS_ROLE_ARN: undefined,
      AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
      AWS_ACCESS_KEY_ID: denied.accessKeyId,
      AWS_SECRET_ACCESS_KEY: denied.secretAccessKey,
    });
    const bad = await runCli(['install-cron', '--name', name, '--job-namespace', jobNs, '--auth', 'irsa', '--irsa-role-arn', IRSA, '--registry', REGISTRY, '-n', target, '--schedule', '0 */6 * * *', '--timeout', '120']);
    await failing.stop();
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /The first run failed: BackoffLimitExceeded.*pod .*: Error \(exit 1\)/);
    assert.ok(failing.results.length >= 1 && failing.results.every((r) => /AWS denied ecr:GetAuthorizationToken/.test(r.stderr)));
    await runCli(['uninstall', '--name', name]);
  });

  it('keeps AWS keys in a Secret only, and its pod template is admitted under the restricted Pod Security Standard', async () => {
    const name = uniqueName('ick').slice(0, 30);
    const jobNs = await createNamespace(uniqueName('ick-job'), {
      'pod-security.kubernetes.io/enforce': 'restricted',
      'pod-security.kubernetes.io/warn': 'restricted',
    });
    const target = await createNamespace(uniqueName('ick-t'));
    const { createIamUser } = await import('../testbed/testbed.js');
    const user = await createIamUser(tb, { userName: uniqueName('ick-user'), policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' }] } });
    rememberSecret(user.secretAccessKey);
    const env = { AWS_ACCESS_KEY_ID: user.accessKeyId, AWS_SECRET_ACCESS_KEY: user.secretAccessKey };

    const res = await runCli(['install-cron', '--name', name, '--job-namespace', jobNs, '--auth', 'keys', '--registry', REGISTRY, '-n', target, '--no-wait'], { env });
    assert.equal(res.code, 0, res.stderr);
    const cm = await core.readNamespacedConfigMap({ name, namespace: jobNs });
    assert.ok(!JSON.stringify(cm).includes(user.secretAccessKey), 'no key in the ConfigMap');
    const keys = await core.readNamespacedSecret({ name: `${name}-aws`, namespace: jobNs });
    assert.equal(Buffer.from(keys.data!.AWS_SECRET_ACCESS_KEY, 'base64').toString(), user.secretAccessKey);
    for (const o of [cm, keys]) assert.ok(!JSON.stringify(o.metadata?.annotations ?? {}).includes(user.secretAccessKey));

    // Temporary credentials would expire under the job: refused before anything is applied.
    const temp = await runCli(['install-cron', '--name', `${name}-t`, '--job-namespace', jobNs, '--auth', 'keys', '--registry', REGISTRY, '-n', target], { env: { ...env, AWS_SESSION_TOKEN: 'session' } });
    assert.equal(temp.code, 1);
    assert.match(temp.stderr, /temporary \(session\) credentials/);
    assert.deepEqual(await labelled(`${name}-t`), []);

    // A Pod made from the CronJob's template is admitted where restricted is enforced.
    const { BatchV1Api } = await import('@kubernetes/client-node');
    const cj = await adminConfig().makeApiClient(BatchV1Api).readNamespacedCronJob({ name, namespace: jobNs });
    await core.createNamespacedPod({ namespace: jobNs, body: { metadata: { name: `${name}-pss` }, spec: cj.spec!.jobTemplate.spec!.template.spec! } });

    // And applying the CronJob draws no Pod Security warning.
    const applied = kubectl(['apply', '--server-side', '--field-manager', 'pss-check', '--dry-run=server', '-f', '-'], JSON.stringify({ ...cj, metadata: { name: cj.metadata!.name, namespace: jobNs } }));
    assert.equal(applied.status, 0, applied.stderr);
    assert.doesNotMatch(applied.stderr, /Warning/i);
    await runCli(['uninstall', '--name', name]);
  });

  it('names what a user without enough rights is missing, and applies nothing', async () => {
    const name = uniqueName('icp').slice(0, 30);
    const res = await runCli(['install-cron', '--name', name, '--job-namespace', 'default', '--auth', 'node', '--registry', REGISTRY, '-n', 'default'], { env: { KUBECONFIG: tb.testerKubeconfig } });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /^error: you lack \d+ permission\(s\) install-cron needs: create serviceaccounts\/.* in default/m);
    assert.deepEqual(await labelled(name), []);
  });

  it('refuses bad schedules and unsupported auth combinations before applying anything', async () => {
    const name = uniqueName('icbad').slice(0, 30);
    const base = ['install-cron', '--name', name, '--registry', REGISTRY, '-n', 'default'];
    const cases: Array<[string[], RegExp]> = [
      [['--auth', 'node', '--schedule', '* */6 * * *'], /runs every minute/],
      [['--auth', 'node', '--schedule', '0 0 * * *'], /leaves up to 24 hours between runs/],
      [['--auth', 'node', '--schedule', 'every 4h'], /not a five-field cron schedule/],
      [['--auth', 'irsa'], /--auth irsa needs --irsa-role-arn/],
      [['--auth', 'keys', '--irsa-role-arn', IRSA], /--irsa-role-arn only applies to --auth irsa/],
      [['--auth', 'irsa', '--irsa-role-arn', IRSA, '--host-network'], /--host-network only applies to --auth node/],
    ];
    for (const [args, pattern] of cases) {
      const res = await runCli([...base, ...args]);
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, pattern);
    }
    assert.deepEqual(await labelled(name), []);
    const warned = await runCli([...base, '--auth', 'node', '--schedule', '0 */8 * * *', '--dry-run=client']);
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(warned.stderr, /warning: schedule "0 \*\/8 \* \* \*" runs only once in some 12-hour windows/);
  });

  it('--dry-run=client -o yaml prints manifests that the server accepts as they are', async () => {
    // A server dry run cannot create a namespace and then objects in it (nothing persists), so the
    // job's namespace exists here; the printed Namespace is then simply unchanged.
    const jobNs = await createNamespace(uniqueName('icd-job'));
    const target = await createNamespace(uniqueName('icd-t'));
    const res = await runCli(['install-cron', '--name', 'gitops', '--job-namespace', jobNs, '--auth', 'irsa', '--irsa-role-arn', IRSA, '--registry', REGISTRY, '-n', target, '--dry-run=client', '-o', 'yaml']);
    assert.equal(res.code, 0, res.stderr);
    const docs = res.stdout.split(/^---$/m).map((d) => parse(d));
    assert.deepEqual(docs.map((d) => d.kind), ['Namespace', 'ServiceAccount', 'ConfigMap', 'Role', 'RoleBinding', 'CronJob']);
    assert.equal((await core.listNamespacedConfigMap({ namespace: jobNs, labelSelector: 'kubectl-ecr.io/install=gitops' })).items.length, 0, 'nothing applied');
    const applied = kubectl(['apply', '--dry-run=server', '-f', '-'], res.stdout);
    assert.equal(applied.status, 0, applied.stderr);
    assert.match(applied.stdout, /cronjob.batch\/gitops created \(server dry run\)/);
  });
});

describe('install-cron across the cluster', () => {
  it('with -A, a ClusterRole limited to the secret name lets the job refresh every namespace, later ones too', async () => {
    const name = uniqueName('ica').slice(0, 30);
    const jobNs = await createNamespace(uniqueName('ica-job'));
    const secretName = `${name}-pull`;
    const res = await runCli(['install-cron', '--name', name, '--job-namespace', jobNs, '--auth', 'irsa', '--irsa-role-arn', IRSA, '--registry', REGISTRY, '-A', '--exclude-namespace', 'kube-*', '--secret-name', secretName, '--no-service-account', '--no-wait']);
    assert.equal(res.code, 0, res.stderr);
    const objects = await labelled(name);
    assert.ok(objects.includes(`ClusterRole//kubectl-ecr-${name}`) && !objects.some((o) => o.startsWith('Role/')), `${objects}`);

    const later = await createNamespace(uniqueName('ica-later'));
    const { BatchV1Api } = await import('@kubernetes/client-node');
    const cj = await adminConfig().makeApiClient(BatchV1Api).readNamespacedCronJob({ name, namespace: jobNs });
    const run = await runPod({ metadata: { name: 'x', namespace: jobNs }, spec: cj.spec!.jobTemplate.spec!.template.spec! });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(await readSecret(later, secretName), 'a namespace created after the install is covered');
    assert.equal(await readSecret('kube-system', secretName), undefined, 'excluded');

    const kc = await serviceAccountKubeconfig(jobNs, name);
    const can = (args: string[]) => spawnSync(`${tb.binDir}/kubectl`, ['--kubeconfig', kc, 'auth', 'can-i', ...args], { encoding: 'utf8' }).stdout.trim();
    assert.equal(can(['get', 'secret/other', '-n', later]), 'no');
    assert.equal(can(['get', `secret/${secretName}`, '-n', later]), 'yes');

    const gone = await runCli(['uninstall', '--name', name, '--purge']);
    assert.equal(gone.code, 0, gone.stderr);
    assert.equal(await readSecret(later, secretName), undefined);
    assert.deepEqual(await labelled(name), []);
  });

  it('reports a hand-written refresher already in the cluster, with how to remove it', async () => {
    const ns = await createNamespace(uniqueName('legacy'));
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'aws-creds' }, data: { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'not-a-real-key' } } });
    const { BatchV1Api } = await import('@kubernetes/client-node');
    await adminConfig().makeApiClient(BatchV1Api).createNamespacedCronJob({
      namespace: ns,
      body: {
        metadata: { name: 'ecr-cred-helper' },
        spec: {
          schedule: '* */6 * * *',
          jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'odaniait/aws-kubectl', command: ['/bin/sh', '-c', 'TOKEN=$(aws ecr get-login --no-include-email) && kubectl delete secret regcred'] }] } } } },
        },
      },
    });
    const res = await runCli(['install-cron', '--name', uniqueName('icl').slice(0, 30), '--job-namespace', ns, '--auth', 'node', '--registry', REGISTRY, '-n', ns, '--dry-run=server']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, new RegExp(`warning: cronjob/ecr-cred-helper in ${ns} runs an \`aws ecr get-login\` style refresh; once the new refresher works: kubectl delete cronjob ecr-cred-helper -n ${ns}`));
    assert.match(res.stderr, new RegExp(`warning: configmap/aws-creds in ${ns} holds AWS keys in plain text`));
  });
});
