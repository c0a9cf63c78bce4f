import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { moveImage, parseImage, parseImageOverride } from '../../src/workloads/image-ref.js';
import { changeTemplate, type Workload } from '../../src/workloads/template.js';

const ECR = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const DIGEST = 'sha256:' + 'a'.repeat(64);

describe('image references', () => {
  it('moves an image to another registry keeping path, tag and digest', () => {
    const cases: Array<[string, string]> = [
      ['nginx', `${ECR}/nginx`],
      ['nginx:1.25', `${ECR}/nginx:1.25`],
      ['library/nginx:1.25-alpine', `${ECR}/nginx:1.25-alpine`],
      ['docker.io/library/postgres:16', `${ECR}/postgres:16`],
      ['docker.io/bitnami/redis:7', `${ECR}/bitnami/redis:7`],
      ['quay.io/team/app:v2', `${ECR}/team/app:v2`],
      ['registry.local:5000/team/app:1.0', `${ECR}/team/app:1.0`],
      ['localhost:5000/app', `${ECR}/app`],
      [`ghcr.io/org/app@${DIGEST}`, `${ECR}/org/app@${DIGEST}`],
      [`ghcr.io/org/app:1.2@${DIGEST}`, `${ECR}/org/app:1.2@${DIGEST}`],
      [`${ECR}/app:1`, `${ECR}/app:1`],
    ];
    for (const [from, to] of cases) assert.equal(moveImage(from, ECR), to, from);
  });

  it('does not mistake a tag for a port, nor a port for a tag', () => {
    assert.deepEqual(parseImage('registry.local:5000/app'), { registry: 'registry.local:5000', path: 'app', tag: undefined, digest: undefined });
    assert.deepEqual(parseImage('app:5000'), { registry: undefined, path: 'app', tag: '5000', digest: undefined });
  });

  it('refuses what is not an image reference', () => {
    for (const bad of ['', 'UPPER/case', 'app:', 'app@sha256:short', 'a b']) assert.equal(parseImage(bad), undefined, bad);
  });

  it('reads --image CONTAINER=REPOSITORY:TAG, filling in --registry, and refuses the rest', () => {
    assert.deepEqual(parseImageOverride('app=web:1.4', ECR), { container: 'app', image: `${ECR}/web:1.4` });
    assert.deepEqual(parseImageOverride(`app=${ECR}/web@${DIGEST}`), { container: 'app', image: `${ECR}/web@${DIGEST}` });
    assert.throws(() => parseImageOverride('web:1.4'), /is not CONTAINER=REPOSITORY:TAG/);
    assert.throws(() => parseImageOverride('app=web'), /names no tag or digest/);
    assert.throws(() => parseImageOverride('app=Web:1'), /is not CONTAINER=REPOSITORY:TAG/);
  });
});

function deployment(spec: Record<string, unknown>): Workload {
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop' }, spec: { template: { spec } } };
}

describe('kindOf', () => {
  it('takes the names kubectl takes', async () => {
    const { kindOf } = await import('../../src/workloads/template.js');
    for (const k of ['deploy', 'deployment', 'deployments', 'deployment.apps', 'deployments.apps', 'Deployment']) assert.equal(kindOf(k), 'deployment', k);
    assert.equal(kindOf('cronjobs.batch'), 'cronjob');
    assert.equal(kindOf('pod'), undefined);
  });
});

describe('changeTemplate', () => {
  const base = { secretName: 'ecr-registry', serviceAccountSecrets: [], images: [] };

  it('appends the pull secret and keeps the others', () => {
    const { object, changes } = changeTemplate(deployment({ containers: [{ name: 'app', image: 'a' }], imagePullSecrets: [{ name: 'hub' }] }), base);
    assert.deepEqual((object.spec as any).template.spec.imagePullSecrets, [{ name: 'hub' }, { name: 'ecr-registry' }]);
    assert.deepEqual(changes, ['added ecr-registry to imagePullSecrets']);
  });

  it('carries the service account\'s pull secrets into an empty template list, and says so', () => {
    const { object, changes } = changeTemplate(deployment({ containers: [{ name: 'app', image: 'a' }], serviceAccountName: 'web' }), { ...base, serviceAccountSecrets: ['hub', 'quay'] });
    assert.deepEqual((object.spec as any).template.spec.imagePullSecrets.map((r: any) => r.name), ['hub', 'quay', 'ecr-registry']);
    assert.match(changes[1], /carried hub, quay over from serviceaccount\/web/);
  });

  it('moves init containers and containers alike, and changes nothing a second time', () => {
    const w = deployment({ initContainers: [{ name: 'migrate', image: 'quay.io/t/migrate:3' }], containers: [{ name: 'app', image: 'nginx:1' }] });
    const first = changeTemplate(w, { ...base, registry: ECR });
    const spec = (first.object.spec as any).template.spec;
    assert.equal(spec.initContainers[0].image, `${ECR}/t/migrate:3`);
    assert.equal(spec.containers[0].image, `${ECR}/nginx:1`);
    assert.equal(changeTemplate(first.object, { ...base, registry: ECR }).changes.length, 0);
  });

  it('refuses an --image for a container the workload does not have', () => {
    assert.throws(() => changeTemplate(deployment({ containers: [{ name: 'app', image: 'a' }] }), { ...base, images: [{ container: 'nope', image: 'x:1' }] }), (e: any) => /has no container "nope"; its containers: app/.test(e.line()));
  });

  it('finds a CronJob\'s template under its job template', () => {
    const cj: Workload = { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'c' }, spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'c', image: 'x:1' }] } } } } } };
    const { object } = changeTemplate(cj, base);
    assert.deepEqual((object.spec as any).jobTemplate.spec.template.spec.imagePullSecrets, [{ name: 'ecr-registry' }]);
  });
});
