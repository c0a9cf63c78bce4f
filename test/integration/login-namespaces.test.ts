// login across the cluster: -A with exclusions, a namespace selector.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { core, createNamespace, readSecret, runCli, uniqueName } from '../helpers/testbed.js';

describe('login: choosing namespaces across the cluster', () => {
  it('--namespace-selector with --exclude-namespace writes exactly the matching namespaces', async () => {
    const tag = uniqueName('sel');
    const [web1, web2, webSkip, other] = await Promise.all([
      createNamespace(`${tag}-web1`, { 'kubectl-ecr-test': tag, tier: 'web' }),
      createNamespace(`${tag}-web2`, { 'kubectl-ecr-test': tag, tier: 'web' }),
      createNamespace(`${tag}-skip-web`, { 'kubectl-ecr-test': tag, tier: 'web' }),
      createNamespace(`${tag}-db`, { 'kubectl-ecr-test': tag, tier: 'db' }),
    ]);
    const res = await runCli(['login', '--namespace-selector', `kubectl-ecr-test=${tag},tier=web`, '--exclude-namespace', `${tag}-skip-*`]);
    assert.equal(res.code, 0, res.stderr);
    for (const ns of [web1, web2]) assert.ok(await readSecret(ns), `${ns} has the secret`);
    for (const ns of [webSkip, other]) assert.equal(await readSecret(ns), undefined, `${ns} left alone`);
    assert.match(res.stderr, /2 namespaces: 2 created/);
  });

  it('-A with exclusions covers every namespace but the excluded ones', async () => {
    const name = uniqueName('all-ns').replace(/-/g, '');
    await createNamespace(uniqueName('all-keep'));
    const before = (await core.listNamespace()).items.map((n) => n.metadata!.name!);
    const res = await runCli(['login', '-A', '--secret-name', name, '--no-service-account', '--exclude-namespace', 'kube-*', '--exclude-namespace', 'default']);
    assert.equal(res.code, 0, res.stderr);

    const has = new Set((await core.listSecretForAllNamespaces({ fieldSelector: `metadata.name=${name}` })).items.map((s) => s.metadata!.namespace!));
    for (const ns of before) {
      const excluded = ns.startsWith('kube-') || ns === 'default';
      assert.equal(has.has(ns), !excluded, `${ns} ${excluded ? 'excluded' : 'included'}`);
    }
    // Clean up: other test files share this cluster.
    await Promise.all([...has].map((ns) => core.deleteNamespacedSecret({ name, namespace: ns })));
  });

  it('refuses a namespace glob that can never match before any call', async () => {
    const res = await runCli(['login', '-A', '--exclude-namespace', 'Kube/System']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /--exclude-namespace "Kube\/System" is not a namespace glob/);
  });
});
