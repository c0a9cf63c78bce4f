// login over many namespaces, checked against the API server's own accounting:
//  - reads are batched: existing Secrets and ServiceAccounts are read with one cluster-wide list each
//    (fieldSelector metadata.name=...), not a GET per namespace;
//  - 429 answers from API Priority and Fairness are waited out (Retry-After) and every namespace ends
//    up with its secret.
//
// Test files may run at the same time as this one (node --test runs files in parallel when the machine
// has more than two cores), and apiserver_request_total has no user label. So each login here runs as
// an identity of its own, and FlowSchemas made for the test route that identity's requests by verb and
// resource: apiserver_flowcontrol_dispatched_requests_total{flow_schema=...} then counts exactly this
// process's requests, whatever else the cluster is doing. apiserver_request_total is checked too, in a
// window where it can be attributed (see `quietWindow`).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  AuthorizationV1Api,
  CoreV1Api,
  FlowcontrolApiserverV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1FlowSchema,
  type V1FlowSchemaSpec,
} from '@kubernetes/client-node';
import {
  adminConfig,
  apiMetrics,
  core,
  createNamespace,
  lines,
  metricSum,
  pullSecrets,
  readSecret,
  rememberSecret,
  runCli,
  tb,
  testerKubeconfig,
  uniqueName,
  waitFor,
  type MetricSample,
} from '../helpers/testbed.js';

const admin = adminConfig();
const flow = admin.makeApiClient(FlowcontrolApiserverV1Api);
const rbac = admin.makeApiClient(RbacAuthorizationV1Api);

// Names every cluster-scoped object this file makes (FlowSchemas, PriorityLevel, RBAC).
const TAG = uniqueName('kubectl-ecr-scale');
const COUNTER_SA = 'login-counter';

const DISPATCHED = 'apiserver_flowcontrol_dispatched_requests_total';
const REJECTED = 'apiserver_flowcontrol_rejected_requests_total';
const REQUESTS = 'apiserver_request_total';

// Everything made here, undone in reverse order in after(): FlowSchemas go before the priority level
// they name, and both before the RBAC, so no other test is ever throttled by what is left behind.
const undo: Array<{ what: string; fn: () => Promise<unknown> }> = [];
const ignoreNotFound = (err: unknown) => {
  if ((err as { code?: number }).code !== 404) throw err;
};

async function createFlowSchema(name: string, spec: V1FlowSchemaSpec): Promise<string> {
  await flow.createFlowSchema({ body: { metadata: { name }, spec } });
  undo.push({ what: `flowschema/${name}`, fn: () => flow.deleteFlowSchema({ name }).catch(ignoreNotFound) });
  return name;
}

/**
 * Wait until the API server's APF controller has taken the FlowSchemas in (it writes their Dangling
 * condition when it digests them), then until a probe request really lands in `probeSchema`.
 */
async function awaitRouting(names: string[], probeSchema: string, probe: () => Promise<unknown>): Promise<void> {
  await waitFor(`APF to digest ${names.length} FlowSchema(s)`, async () => {
    const all = await Promise.all(names.map((name) => flow.readFlowSchema({ name })));
    return all.every((fs: V1FlowSchema) => fs.status?.conditions?.some((c) => c.type === 'Dangling' && c.status === 'False'));
  });
  await waitFor(`requests to be routed to flowschema ${probeSchema}`, async () => {
    const before = metricSum(await apiMetrics(), DISPATCHED, { flow_schema: probeSchema });
    await probe().catch(() => undefined);
    return metricSum(await apiMetrics(), DISPATCHED, { flow_schema: probeSchema }) > before;
  });
}

/** Metric deltas between two snapshots. */
function delta(a: MetricSample[], b: MetricSample[], name: string, match: Record<string, string> = {}): number {
  return metricSum(b, name, match) - metricSum(a, name, match);
}

/** A kubeconfig file for a bearer token, on the test bed's cluster. */
function tokenKubeconfig(user: string, token: string, namespace: string): string {
  const cluster = admin.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: user, token }],
    contexts: [{ name: user, cluster: cluster.name, user, namespace }],
    currentContext: user,
  });
  const file = `${tb.dir}/kubeconfig-${TAG}-${user}`;
  writeFileSync(file, kc.exportConfig(), { mode: 0o600 });
  return file;
}

async function freshNamespaces(prefix: string, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `${TAG}-${prefix}${i + 1}`);
  await Promise.all(names.map((ns) => createNamespace(ns)));
  undo.push({ what: `${n} namespaces ${prefix}*`, fn: () => Promise.all(names.map((name) => core.deleteNamespace({ name }).catch(ignoreNotFound))) });
  return names;
}

async function assertLoggedIn(namespaces: string[]): Promise<void> {
  for (const ns of namespaces) {
    const secret = await readSecret(ns);
    assert.equal(secret?.type, 'kubernetes.io/dockerconfigjson', `${ns} has its pull secret`);
    const sa = await core.readNamespacedServiceAccount({ name: 'default', namespace: ns });
    assert.deepEqual(pullSecrets(sa), ['ecr-registry'], `${ns}: default service account references it once`);
  }
}

describe('login at scale, as the API server counts it', { concurrency: false }, () => {
  let home: string;
  let counterKubeconfig: string;

  before(async () => {
    // What login needs, for tester and for the counting identity, through RBAC made for this file.
    home = await createNamespace(`${TAG}-home`);
    undo.push({ what: `namespace ${home}`, fn: () => core.deleteNamespace({ name: home }).catch(ignoreNotFound) });
    await core.createNamespacedServiceAccount({ namespace: home, body: { metadata: { name: COUNTER_SA } } });
    await rbac.createClusterRole({
      body: {
        metadata: { name: TAG },
        rules: [
          // patch: login creates secrets through server-side apply.
          { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'create', 'update', 'patch'] },
          { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get', 'list', 'update'] },
        ],
      },
    });
    undo.push({ what: `clusterrole/${TAG}`, fn: () => rbac.deleteClusterRole({ name: TAG }).catch(ignoreNotFound) });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: TAG },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: TAG },
        subjects: [
          { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'tester' },
          { kind: 'ServiceAccount', name: COUNTER_SA, namespace: home },
        ],
      },
    });
    undo.push({ what: `clusterrolebinding/${TAG}`, fn: () => rbac.deleteClusterRoleBinding({ name: TAG }).catch(ignoreNotFound) });

    const tr = await core.createNamespacedServiceAccountToken({
      name: COUNTER_SA,
      namespace: home,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const token = tr.status?.token;
    assert.ok(token, 'TokenRequest returned a token');
    rememberSecret(token); // no CLI output may show it
    counterKubeconfig = tokenKubeconfig(COUNTER_SA, token, home);

    // RBAC is cached by the authorizer's informers: wait until both identities may list cluster-wide.
    await waitFor('RBAC for tester and the counting service account', async () => {
      const authz = admin.makeApiClient(AuthorizationV1Api);
      const asUser = async (user: string, groups: string[]) =>
        (await authz.createSubjectAccessReview({ body: { spec: { user, groups, resourceAttributes: { verb: 'list', resource: 'secrets' } } } }))
          .status?.allowed;
      return (
        (await asUser('tester', ['system:authenticated'])) === true &&
        (await asUser(`system:serviceaccount:${home}:${COUNTER_SA}`, ['system:serviceaccounts', 'system:authenticated'])) === true
      );
    });
  });

  after(async () => {
    const failures: string[] = [];
    for (const { what, fn } of undo.reverse()) {
      await fn().catch((err) => failures.push(`${what}: ${(err as Error).message}`));
    }
    assert.deepEqual(failures, [], 'clean-up');
  });

  it('reads existing secrets and service accounts with one cluster-wide list each, not a GET per namespace', async () => {
    // One FlowSchema per (verb, resource, scope) that login may use, for the counting identity only,
    // and one for everything else it might do. They route to the exempt priority level: counted,
    // never throttled.
    // Writes are counted together (create, update, or patch for server-side apply): how a secret is
    // written is not what this test is about.
    const WRITE = ['create', 'update', 'patch'];
    const counted = {
      getSecrets: [['get'], 'secrets', 'namespaced'],
      listSecretsAll: [['list'], 'secrets', 'cluster'],
      listSecretsNs: [['list'], 'secrets', 'namespaced'],
      writeSecrets: [WRITE, 'secrets', 'namespaced'],
      getAccounts: [['get'], 'serviceaccounts', 'namespaced'],
      listAccountsAll: [['list'], 'serviceaccounts', 'cluster'],
      listAccountsNs: [['list'], 'serviceaccounts', 'namespaced'],
      writeAccounts: [WRITE, 'serviceaccounts', 'namespaced'],
    } as const;
    type Key = keyof typeof counted | 'other';
    const subjects = [{ kind: 'ServiceAccount', serviceAccount: { name: COUNTER_SA, namespace: home } }];
    const schema: Record<Key, string> = {} as Record<Key, string>;
    await Promise.all([
      ...Object.entries(counted).map(async ([key, [verbs, resource, scope]], i) => {
        schema[key as Key] = await createFlowSchema(`${TAG}-${key.toLowerCase()}`, {
          matchingPrecedence: 200 + i,
          priorityLevelConfiguration: { name: 'exempt' },
          rules: [
            {
              subjects,
              resourceRules: [
                scope === 'cluster'
                  ? { verbs: [...verbs], apiGroups: [''], resources: [resource], clusterScope: true }
                  : { verbs: [...verbs], apiGroups: [''], resources: [resource], namespaces: ['*'] },
              ],
            },
          ],
        });
      }),
      (async () => {
        schema.other = await createFlowSchema(`${TAG}-other`, {
          matchingPrecedence: 299,
          priorityLevelConfiguration: { name: 'exempt' },
          rules: [
            {
              subjects,
              resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'], clusterScope: true, namespaces: ['*'] }],
              nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
            },
          ],
        });
      })(),
    ]);
    const counterCore = (() => {
      const kc = new KubeConfig();
      kc.loadFromFile(counterKubeconfig);
      return kc.makeApiClient(CoreV1Api);
    })();
    await awaitRouting(Object.values(schema), schema.getSecrets, () =>
      counterCore.readNamespacedSecret({ name: 'routing-probe', namespace: home }),
    );

    const counts = (a: MetricSample[], b: MetricSample[]) =>
      Object.fromEntries(Object.entries(schema).map(([key, fs]) => [key, delta(a, b, DISPATCHED, { flow_schema: fs })])) as Record<Key, number>;
    const none: Record<Key, number> = Object.fromEntries(Object.keys(schema).map((k) => [k, 0])) as Record<Key, number>;
    // apiserver_request_total has no user label: a window is attributable to this test when every
    // read of secrets and service accounts it counted is one the counting identity made.
    const quietWindow = (a: MetricSample[], b: MetricSample[], c: Record<Key, number>) =>
      delta(a, b, REQUESTS, { verb: 'GET', resource: 'secrets' }) === c.getSecrets &&
      delta(a, b, REQUESTS, { verb: 'LIST', resource: 'secrets' }) === c.listSecretsAll + c.listSecretsNs &&
      delta(a, b, REQUESTS, { verb: 'GET', resource: 'serviceaccounts' }) === c.getAccounts &&
      delta(a, b, REQUESTS, { verb: 'LIST', resource: 'serviceaccounts' }) === c.listAccountsAll + c.listAccountsNs;
    const login = (namespaces: string[]) =>
      runCli(['login', '--kubeconfig', counterKubeconfig, ...namespaces.flatMap((ns) => ['-n', ns])]);

    // The comparison: one namespace per run reads with a GET each (nothing to batch).
    const single = await freshNamespaces('one', 3);
    let m0 = await apiMetrics();
    const singles = await Promise.all(single.map((ns) => login([ns])));
    let m1 = await apiMetrics();
    for (const res of singles) assert.equal(res.code, 0, res.stderr);
    await assertLoggedIn(single);
    assert.deepEqual(
      counts(m0, m1),
      { ...none, getSecrets: 3, writeSecrets: 3, getAccounts: 3, writeAccounts: 3 },
      'three one-namespace runs: a GET of the secret and of the account, and a write of each, per namespace',
    );

    // Six fresh namespaces in one run: one list of secrets by name and one of `default` accounts,
    // across the cluster, then only writes.
    const six = await freshNamespaces('batch', 6);
    m0 = await apiMetrics();
    const first = await login(six);
    m1 = await apiMetrics();
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /6 namespaces: 6 created, 0 updated, 0 unchanged, 0 failed/);
    await assertLoggedIn(six);
    assert.deepEqual(
      counts(m0, m1),
      { ...none, listSecretsAll: 1, listAccountsAll: 1, writeSecrets: 6, writeAccounts: 6 },
      'six fresh namespaces: 1 LIST secrets + 1 LIST serviceaccounts across namespaces, no GET; a write of each per namespace',
    );
    const windows: Array<[MetricSample[], MetricSample[]]> = [[m0, m1]];

    // Again, now that the secrets exist: still no GET, and the listed copies are what gets updated.
    for (let run = 0; run < 3; run++) {
      m0 = await apiMetrics();
      const again = await login(six);
      m1 = await apiMetrics();
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /6 namespaces: 0 created, \d+ updated, \d+ unchanged, 0 failed/);
      const c = counts(m0, m1);
      assert.deepEqual(
        { ...c, writeSecrets: 0 },
        { ...none, listSecretsAll: 1, listAccountsAll: 1 },
        'existing secrets: read by the one list, written back (or left) without a GET',
      );
      assert.equal(c.writeSecrets, Number(/(\d+) updated/.exec(again.stderr)![1]), 'one update per secret reported updated');
      windows.push([m0, m1]);
      // apiserver_request_total, which counts every client, says the same once a window is quiet.
      if (windows.some(([a, b]) => quietWindow(a, b, counts(a, b)))) break;
    }

    const quiet = windows.find(([a, b]) => quietWindow(a, b, counts(a, b)));
    if (!quiet) {
      // Other test files kept reading secrets during every window; the per-identity counts above are
      // the proof then. Said, not failed: a busy cluster is not the product's fault.
      const [a, b] = windows[0];
      console.log(
        `# apiserver_request_total not attributable (other clients read secrets meanwhile): GET secrets +${delta(a, b, REQUESTS, { verb: 'GET', resource: 'secrets' })}, LIST secrets +${delta(a, b, REQUESTS, { verb: 'LIST', resource: 'secrets' })}`,
      );
      return;
    }
    const [a, b] = quiet;
    assert.equal(delta(a, b, REQUESTS, { verb: 'GET', resource: 'secrets' }), 0, 'apiserver_request_total: no GET of a secret');
    assert.equal(delta(a, b, REQUESTS, { verb: 'LIST', resource: 'secrets', scope: 'cluster' }), 1, 'apiserver_request_total: one cluster-wide LIST of secrets');
    assert.equal(delta(a, b, REQUESTS, { verb: 'LIST', resource: 'secrets', scope: 'namespace' }), 0, 'apiserver_request_total: no per-namespace LIST');
    assert.equal(delta(a, b, REQUESTS, { verb: 'GET', resource: 'serviceaccounts' }), 0, 'apiserver_request_total: no GET of a service account');
  });

  it('waits out 429 answers (Retry-After) from API Priority and Fairness and finishes every namespace', async () => {
    // A priority level with the smallest share of the server's seats, none lent or borrowed, that
    // rejects at once when full; tester's requests all go there.
    const level = `${TAG}-tiny`;
    await flow.createPriorityLevelConfiguration({
      body: {
        metadata: { name: level },
        spec: {
          type: 'Limited',
          limited: { nominalConcurrencyShares: 1, lendablePercent: 0, borrowingLimitPercent: 0, limitResponse: { type: 'Reject' } },
        },
      },
    });
    undo.push({ what: `prioritylevelconfiguration/${level}`, fn: () => flow.deletePriorityLevelConfiguration({ name: level }).catch(ignoreNotFound) });
    const schema = await createFlowSchema(`${TAG}-tester`, {
      matchingPrecedence: 100,
      priorityLevelConfiguration: { name: level },
      distinguisherMethod: { type: 'ByUser' },
      rules: [
        {
          subjects: [{ kind: 'User', user: { name: 'tester' } }],
          resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'], clusterScope: true, namespaces: ['*'] }],
          nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
        },
      ],
    });
    const testerCore = (() => {
      const kc = new KubeConfig();
      kc.loadFromFile(testerKubeconfig);
      return kc.makeApiClient(CoreV1Api);
    })();
    await awaitRouting([schema], schema, () => testerCore.listNamespacedSecret({ namespace: home, limit: 1 }));

    const namespaces = await freshNamespaces('busy', 12);
    const m0 = await apiMetrics();
    const started = Date.now();
    const res = await runCli(['login', '--kubeconfig', testerKubeconfig, ...namespaces.flatMap((ns) => ['-n', ns])], {
      env: { DEBUG: 'kubectl-ecr:kube' },
    });
    const seconds = (Date.now() - started) / 1000;
    const m1 = await apiMetrics();

    const rejected = delta(m0, m1, REJECTED, { priority_level: level });
    const dispatched = delta(m0, m1, DISPATCHED, { priority_level: level });
    const throttled429 = delta(m0, m1, REQUESTS, { code: '429' });
    const retries = lines(res.stderr).filter((l) => /HTTP 429, retrying in \d+s/.test(l));
    console.log(
      `# ${level}: nominal seats ${metricSum(m1, 'apiserver_flowcontrol_nominal_limit_seats', { priority_level: level })}, ` +
        `dispatched ${dispatched}, rejected ${rejected}; apiserver_request_total code=429 +${throttled429}; ` +
        `client retries ${retries.length}; login took ${seconds.toFixed(1)}s`,
    );

    assert.ok(rejected > 0, `the server rejected some of tester's requests (rejected ${rejected}, dispatched ${dispatched})`);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /12 namespaces: 12 created, 0 updated, 0 unchanged, 0 failed/);
    await assertLoggedIn(namespaces);
    // What the client saw matches what the server did: one wait per rejection, each as long as asked.
    assert.equal(retries.length, rejected, `one retry per 429:\n${retries.join('\n')}`);
    assert.equal(dispatched, 2 + 12 * 2, 'after the retries, exactly the requests of an unthrottled run were served');
  });
});
