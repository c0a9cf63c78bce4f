// patch-deployment against the real API server (and its Deployment controller).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppsV1Api, BatchV1Api } from '@kubernetes/client-node';
import { adminConfig, core, createNamespace, lines, pullSecrets, runCli, uniqueName } from '../helpers/testbed.js';

const ECR = '123456789012.dkr.ecr.us-east-1.amazonaws.com';
const DIGEST = 'sha256:' + 'b'.repeat(64);
const apps = adminConfig().makeApiClient(AppsV1Api);
const batch = adminConfig().makeApiClient(BatchV1Api);

const labels = { app: 'web' };
function podTemplate(spec: Record<string, unknown>) {
  return { metadata: { labels }, spec: { containers: [{ name: 'app', image: 'nginx:1.25' }], ...spec } };
}

async function deployment(namespace: string, name: string, spec: Record<string, unknown> = {}, extraLabels: Record<string, string> = {}) {
  return apps.createNamespacedDeployment({
    namespace,
    body: { metadata: { name, labels: { ...labels, ...extraLabels } }, spec: { replicas: 0, selector: { matchLabels: labels }, template: podTemplate(spec) as any } },
  });
}

describe('patch-deployment', () => {
  it('adds the pull secret keeping the others, moves every image, and a second run changes nothing', async () => {
    const ns = await createNamespace(uniqueName('pd'));
    await deployment(ns, 'web', {
      imagePullSecrets: [{ name: 'hub' }],
      initContainers: [{ name: 'migrate', image: 'registry.local:5000/team/migrate:3' }],
      containers: [
        { name: 'app', image: `ghcr.io/org/app:1.2@${DIGEST}` },
        { name: 'sidecar', image: 'envoyproxy/envoy:v1.30' },
      ],
    });
    const res = await runCli(['patch-deployment', 'web', '-n', ns, '--registry', ECR]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /warning: secret\/ecr-registry does not exist in .*kubectl ecr login -n/);
    assert.equal((await runCli(['login', '-n', ns, '--registry', '123456789012.dkr.ecr.eu-west-1.amazonaws.com'])).code, 0);
    const uncovered = await runCli(['patch-deployment', 'web', '-n', ns, '--registry', ECR, '--dry-run=client']);
    assert.match(uncovered.stderr, new RegExp(`warning: secret/ecr-registry has no entry for ${ECR.replace(/\./g, '\\.')}; .*--registry`));
    const d = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    const spec = d.spec!.template.spec!;
    assert.deepEqual(pullSecrets(spec), ['hub', 'ecr-registry']);
    assert.deepEqual(spec.initContainers!.map((c) => c.image), [`${ECR}/team/migrate:3`]);
    assert.deepEqual(spec.containers.map((c) => [c.name, c.image]), [['app', `${ECR}/org/app:1.2@${DIGEST}`], ['sidecar', `${ECR}/envoyproxy/envoy:v1.30`]]);

    const generation = d.metadata!.generation;
    const again = await runCli(['patch-deployment', 'web', '-n', ns, '--registry', ECR]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /deployment.apps\/web unchanged/);
    assert.equal((await apps.readNamespacedDeployment({ name: 'web', namespace: ns })).metadata!.generation, generation, 'no new rollout');
  });

  it('keeps the service account\'s pull secrets for a template that relied on them', async () => {
    const ns = await createNamespace(uniqueName('pd-sa'));
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'web' }, imagePullSecrets: [{ name: 'hub' }, { name: 'quay' }] } });
    await deployment(ns, 'web', { serviceAccountName: 'web' });
    const res = await runCli(['patch-deployment', 'web', '-n', ns]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /carried hub, quay over from serviceaccount\/web/);
    const d = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    assert.deepEqual(pullSecrets(d.spec!.template.spec!), ['hub', 'quay', 'ecr-registry']);
  });

  it('--image sets one container and leaves the others', async () => {
    const ns = await createNamespace(uniqueName('pd-img'));
    await deployment(ns, 'web', { containers: [{ name: 'app', image: 'nginx:1.25' }, { name: 'log', image: 'fluent/fluent-bit:3' }] });
    const res = await runCli(['patch-deployment', 'web', '-n', ns, '--image', `app=${ECR}/web:2.0`, '--image-pull-policy', 'IfNotPresent']);
    assert.equal(res.code, 0, res.stderr);
    const c = (await apps.readNamespacedDeployment({ name: 'web', namespace: ns })).spec!.template.spec!.containers;
    assert.deepEqual(c.map((x) => [x.name, x.image, x.imagePullPolicy]), [['app', `${ECR}/web:2.0`, 'IfNotPresent'], ['log', 'fluent/fluent-bit:3', 'IfNotPresent']]);
  });

  it('-l and --all patch exactly the matching workloads', async () => {
    const ns = await createNamespace(uniqueName('pd-sel'));
    await deployment(ns, 'front', {}, { tier: 'web' });
    await deployment(ns, 'api', {}, { tier: 'web' });
    await deployment(ns, 'db', {}, { tier: 'data' });
    const sel = await runCli(['patch-deployment', '-l', 'tier=web', '-n', ns]);
    assert.equal(sel.code, 0, sel.stderr);
    const has = async (name: string) => pullSecrets((await apps.readNamespacedDeployment({ name, namespace: ns })).spec!.template.spec!).includes('ecr-registry');
    assert.deepEqual([await has('front'), await has('api'), await has('db')], [true, true, false]);
    const all = await runCli(['patch-deployment', '--all', '-n', ns]);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(await has('db'), true);
    assert.match(all.stderr, /deployment.apps\/front unchanged/);
  });

  it('patches StatefulSet, DaemonSet and CronJob templates', async () => {
    const ns = await createNamespace(uniqueName('pd-kinds'));
    await apps.createNamespacedStatefulSet({ namespace: ns, body: { metadata: { name: 'db' }, spec: { replicas: 0, serviceName: 'db', selector: { matchLabels: labels }, template: podTemplate({}) as any } } });
    await apps.createNamespacedDaemonSet({ namespace: ns, body: { metadata: { name: 'agent' }, spec: { selector: { matchLabels: labels }, template: podTemplate({}) as any } } });
    await batch.createNamespacedCronJob({ namespace: ns, body: { metadata: { name: 'report' }, spec: { schedule: '0 1 * * *', jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'r', image: 'busybox:1' }] } } } } } } });
    const res = await runCli(['patch-deployment', 'statefulset/db', 'ds/agent', 'cronjob/report', '-n', ns, '--registry', ECR]);
    assert.equal(res.code, 0, res.stderr);
    const sts = await apps.readNamespacedStatefulSet({ name: 'db', namespace: ns });
    const ds = await apps.readNamespacedDaemonSet({ name: 'agent', namespace: ns });
    const cj = await batch.readNamespacedCronJob({ name: 'report', namespace: ns });
    for (const spec of [sts.spec!.template.spec!, ds.spec!.template.spec!, cj.spec!.jobTemplate.spec!.template.spec!]) {
      assert.deepEqual(pullSecrets(spec), ['ecr-registry']);
      assert.ok(spec.containers[0].image!.startsWith(`${ECR}/`));
    }
  });

  it('--dry-run=client shows a diff and writes nothing; --wait follows a rollout', async () => {
    const ns = await createNamespace(uniqueName('pd-dry'));
    const before = await deployment(ns, 'web');
    const dry = await runCli(['patch-deployment', 'web', '-n', ns, '--registry', ECR, '--dry-run=client']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^-\s+- image: nginx:1\.25$/m);
    assert.match(dry.stdout, new RegExp(`^\\+\\s+- image: ${ECR.replace(/\./g, '\\.')}/nginx:1\\.25$`, 'm'));
    // The controller writes status, so the resourceVersion moves; the spec's generation does not.
    const after = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    assert.equal(after.metadata!.generation, before.metadata!.generation);
    assert.equal(after.spec!.template.spec!.containers[0].image, 'nginx:1.25');

    // replicas: 0, so the real Deployment controller can finish the rollout without a kubelet.
    const waited = await runCli(['patch-deployment', 'web', '-n', ns, '--wait', '--timeout', '60']);
    assert.equal(waited.code, 0, waited.stderr);
    assert.match(waited.stderr, /deployment.apps\/web: rollout complete/);
  });

  it('an unknown workload, a bad --image and a bad registry each give one clear line and exit 1', async () => {
    const ns = await createNamespace(uniqueName('pd-bad'));
    await deployment(ns, 'web');
    const unknown = await runCli(['patch-deployment', 'ghost', 'web', '-n', ns]);
    assert.equal(unknown.code, 1);
    assert.ok(lines(unknown.stderr).includes(`deployment.apps/ghost: failed: not found in namespace ${ns}`), unknown.stderr);
    assert.match(unknown.stderr, /deployment.apps\/web patched/, 'the others are still done');

    const badImage = await runCli(['patch-deployment', 'web', '-n', ns, '--image', 'web:1.0']);
    assert.equal(badImage.code, 1);
    assert.match(badImage.stderr, /^error: --image "web:1.0" is not CONTAINER=REPOSITORY:TAG; e.g. --image app=/m);
    const noContainer = await runCli(['patch-deployment', 'web', '-n', ns, '--image', `nope=${ECR}/x:1`]);
    assert.equal(noContainer.code, 1);
    assert.match(noContainer.stderr, /has no container "nope"; its containers: app/);

    const badName = await runCli(['patch-deployment', 'web', '-n', ns, '--secret-name', 'bad name']);
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /^error: --secret-name "bad name" is not a valid Secret name/m);
    const noNs = await runCli(['patch-deployment', 'web', '-n', uniqueName('pd-nowhere')]);
    assert.equal(noNs.code, 1);
    assert.match(noNs.stderr, /^error: namespace "pd-nowhere-\d+-\d+" does not exist; check -n$/m);
    assert.doesNotMatch(noNs.stderr, /kubectl ecr login/, 'no advice to log in to a namespace that is not there');

    const badRegistry = await runCli(['patch-deployment', 'web', '-n', ns, '--registry', 'docker.io']);
    assert.equal(badRegistry.code, 1);
    assert.match(badRegistry.stderr, /^error: "docker.io" is not an ECR registry host; expected/m);
  });

  it('--verify-image checks the repository and tag in ECR before writing', async () => {
    const ns = await createNamespace(uniqueName('pd-verify'));
    await deployment(ns, 'web');
    const repo = uniqueName('web');
    const { ECRClient, CreateRepositoryCommand, PutImageCommand } = await import('@aws-sdk/client-ecr');
    const { tb } = await import('../helpers/testbed.js');
    const ecr = new ECRClient({ region: 'us-east-1', endpoint: tb.awsEnv.AWS_ENDPOINT_URL, credentials: { accessKeyId: tb.awsEnv.AWS_ACCESS_KEY_ID, secretAccessKey: tb.awsEnv.AWS_SECRET_ACCESS_KEY } });
    await ecr.send(new CreateRepositoryCommand({ repositoryName: repo }));
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: 1, digest: DIGEST }, layers: [] });
    await ecr.send(new PutImageCommand({ repositoryName: repo, imageManifest: manifest, imageTag: '1.0' }));
    ecr.destroy();

    const missing = await runCli(['patch-deployment', 'web', '-n', ns, '--image', `app=${ECR}/${repo}:9.9`, '--verify-image']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, new RegExp(`failed: not in ECR: ${ECR.replace(/\./g, '\\.')}/${repo}:9\\.9`));
    assert.equal((await apps.readNamespacedDeployment({ name: 'web', namespace: ns })).spec!.template.spec!.containers[0].image, 'nginx:1.25');

    const present = await runCli(['patch-deployment', 'web', '-n', ns, '--image', `app=${ECR}/${repo}:1.0`, '--verify-image']);
    assert.equal(present.code, 0, present.stderr);
  });
});
