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
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  AdmissionregistrationV1Api,
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
const admission = admin.makeApiClient(AdmissionregistrationV1Api);

// Names every cluster-scoped object this file makes (FlowSchemas, priority level, RBAC, webhook).
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

async function freshNamespaces(prefix: string, n: number, labels?: Record<string, string>): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `${TAG}-${prefix}${i + 1}`);
  // Left in place, as every test file does: deleting them could pull a namespace from under a
  // concurrent `login -A` test between its list and its writes.
  await Promise.all(names.map((ns) => createNamespace(ns, labels)));
  return names;
}

async function assertLoggedIn(namespaces: string[], accounts = ['default']): Promise<void> {
  for (const ns of namespaces) {
    const secret = await readSecret(ns);
    assert.equal(secret?.type, 'kubernetes.io/dockerconfigjson', `${ns} has its pull secret`);
    for (const name of accounts) {
      const sa = await core.readNamespacedServiceAccount({ name, namespace: ns });
      assert.deepEqual(pullSecrets(sa), ['ecr-registry'], `${ns}: serviceaccount/${name} references it once`);
    }
  }
}

/**
 * A validating admission webhook on loopback that answers "allowed" after `delayMs`, for writes by
 * tester in namespaces labelled `label` only (failurePolicy Ignore: if this process is gone, nothing
 * is held up). A write keeps its APF seat while admission runs, so this makes each of tester's writes
 * occupy the server for a known time instead of a few milliseconds. Returns the writes it saw.
 */
async function slowAdmission(label: Record<string, string>, delayMs: number): Promise<Array<{ operation: string; kind: string; namespace: string }>> {
  const key = `${tb.dir}/${TAG}-webhook.key`;
  const cert = `${tb.dir}/${TAG}-webhook.crt`;
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=kubectl-ecr-test-webhook', '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: 'ignore' });
  const seen: Array<{ operation: string; kind: string; namespace: string }> = [];
  const server = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const { request } = JSON.parse(body) as { request: { uid: string; operation: string; kind: { kind: string }; namespace: string } };
      seen.push({ operation: request.operation, kind: request.kind.kind, namespace: request.namespace });
      setTimeout(() => {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: request.uid, allowed: true } }));
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  undo.push({ what: 'webhook server', fn: () => new Promise((resolve) => server.close(resolve)) });
  await admission.createValidatingWebhookConfiguration({
    body: {
      metadata: { name: TAG },
      webhooks: [
        {
          name: 'slow.kubectl-ecr.test',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Ignore',
          timeoutSeconds: 5,
          clientConfig: { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/`, caBundle: readFileSync(cert).toString('base64') },
          rules: [{ operations: ['CREATE', 'UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['secrets', 'serviceaccounts'] }],
          namespaceSelector: { matchLabels: label },
          matchConditions: [{ name: 'tester-only', expression: "request.userInfo.username == 'tester'" }],
        },
      ],
    },
  });
  undo.push({ what: `validatingwebhookconfiguration/${TAG}`, fn: () => admission.deleteValidatingWebhookConfiguration({ name: TAG }).catch(ignoreNotFound) });
  return seen;
}

describe('login at scale, as the API server counts it', { concurrency: false }, () => {
  let home: string;
  let counterKubeconfig: string;

  before(async () => {
    // What login needs, for tester and for the counting identity, through RBAC made for this file.
    home = await createNamespace(`${TAG}-home`);
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

  it('reads existing secrets and service accounts with one cluster-wide list each, not a GET per namespace', async (t) => {
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
    const login = (namespaces: string[], extra: string[] = []) =>
      runCli(['login', '--kubeconfig', counterKubeconfig, ...extra, ...namespaces.flatMap((ns) => ['-n', ns])]);

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

    // Six fresh namespaces in one run, two service accounts each: one list of secrets by name and one
    // list per service account name, across the cluster; then only writes.
    const six = await freshNamespaces('batch', 6);
    await Promise.all(six.map((namespace) => core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'builder' } } })));
    const accounts = ['--service-account', 'default', '--service-account', 'builder'];
    m0 = await apiMetrics();
    const first = await login(six, accounts);
    m1 = await apiMetrics();
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /6 namespaces: 6 created, 0 updated, 0 unchanged, 0 failed/);
    await assertLoggedIn(six, ['default', 'builder']);
    assert.deepEqual(
      counts(m0, m1),
      { ...none, listSecretsAll: 1, listAccountsAll: 2, writeSecrets: 6, writeAccounts: 12 },
      'six fresh namespaces: 1 LIST of secrets and 1 LIST per service account name across namespaces, no GET; then writes',
    );
    const windows: Array<[MetricSample[], MetricSample[]]> = [[m0, m1]];

    // Again, now that the secrets exist: still no GET, and the listed copies are what gets updated.
    for (let run = 0; run < 3; run++) {
      m0 = await apiMetrics();
      const again = await login(six, accounts);
      m1 = await apiMetrics();
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /6 namespaces: 0 created, \d+ updated, \d+ unchanged, 0 failed/);
      const c = counts(m0, m1);
      assert.deepEqual(
        { ...c, writeSecrets: 0 },
        { ...none, listSecretsAll: 1, listAccountsAll: 2 },
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
      t.diagnostic(
        `apiserver_request_total not attributable (other clients read secrets meanwhile): GET secrets +${delta(a, b, REQUESTS, { verb: 'GET', resource: 'secrets' })}, LIST secrets +${delta(a, b, REQUESTS, { verb: 'LIST', resource: 'secrets' })}`,
      );
      return;
    }
    const [a, b] = quiet;
    t.diagnostic(
      `apiserver_request_total in an attributable window (${windows.indexOf(quiet) + 1} of ${windows.length}): ` +
        `GET secrets +${delta(a, b, REQUESTS, { verb: 'GET', resource: 'secrets' })}, LIST secrets +${delta(a, b, REQUESTS, { verb: 'LIST', resource: 'secrets', scope: 'cluster' })}`,
    );
    assert.equal(delta(a, b, REQUESTS, { verb: 'GET', resource: 'secrets' }), 0, 'apiserver_request_total: no GET of a secret');
    assert.equal(delta(a, b, REQUESTS, { verb: 'LIST', resource: 'secrets', scope: 'cluster' }), 1, 'apiserver_request_total: one cluster-wide LIST of secrets');
    assert.equal(delta(a, b, REQUESTS, { verb: 'LIST', resource: 'secrets', scope: 'namespace' }), 0, 'apiserver_request_total: no per-namespace LIST');
    assert.equal(delta(a, b, REQUESTS, { verb: 'GET', resource: 'serviceaccounts' }), 0, 'apiserver_request_total: no GET of a service account');
  });

  it('waits out 429 answers (Retry-After) from API Priority and Fairness and finishes every namespace', async (t) => {
    // A priority level with the smallest share of the server's seats (3 of 600 here), none lent or
    // borrowed, that rejects at once when full; every request of tester's goes there.
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

    // On loopback a write takes a few milliseconds, so whether 8 concurrent writes ever overlap on 3
    // seats is luck (0 to 5 rejections in 12 namespaces, measured). Holding each of tester's writes in
    // admission for 50 ms makes the first wave of 8 meet 3 seats every time.
    const label = { 'kubectl-ecr-test/slow-admission': TAG.slice(-63) };
    const admitted = await slowAdmission(label, 50);
    const namespaces = await freshNamespaces('busy', 12, label);

    const m0 = await apiMetrics();
    const started = Date.now();
    const res = await runCli(['login', '--kubeconfig', testerKubeconfig, ...namespaces.flatMap((ns) => ['-n', ns])], {
      env: { DEBUG: 'kubectl-ecr:kube' },
    });
    const seconds = (Date.now() - started) / 1000;
    const m1 = await apiMetrics();

    const rejected = delta(m0, m1, REJECTED, { priority_level: level });
    const dispatched = delta(m0, m1, DISPATCHED, { priority_level: level });
    const waits = lines(res.stderr)
      .map((l) => /HTTP 429, retrying in (\d+)s/.exec(l)?.[1])
      .filter((w): w is string => w !== undefined)
      .map(Number);
    t.diagnostic(
      `${level}: nominal seats ${metricSum(m1, 'apiserver_flowcontrol_nominal_limit_seats', { priority_level: level })}, ` +
        `dispatched ${dispatched}, rejected ${rejected}; client waits ${waits.join(',')}s; login took ${seconds.toFixed(1)}s`,
    );

    assert.equal(res.code, 0, res.stderr);
    assert.ok(rejected > 0, `the server rejected some of tester's requests (rejected ${rejected}, dispatched ${dispatched})`);
    assert.match(res.stderr, /12 namespaces: 12 created, 0 updated, 0 unchanged, 0 failed/);
    await assertLoggedIn(namespaces);
    // The client waited once per 429 the server sent, for the Retry-After it was given (APF starts at
    // 1 s and doubles it, to at most 32 s, while it keeps rejecting), and the run took at least that.
    assert.equal(waits.length, rejected, `one wait per 429:\n${res.stderr}`);
    assert.ok(waits.every((w) => w >= 1 && w <= 32), `waits are the server's Retry-After: ${waits.join(',')}`);
    assert.ok(seconds >= Math.max(...waits), `login took ${seconds}s, at least its longest wait`);
    // Rejected requests did nothing: what was served is exactly an unthrottled run's requests (a list
    // of secrets, one of accounts, then a secret write and an account write per namespace), and each
    // write reached admission once.
    assert.equal(dispatched, 2 + 12 * 2, 'requests served');
    assert.equal(admitted.length, 12 * 2, 'writes admitted');
    for (const ns of namespaces) {
      assert.deepEqual(admitted.filter((w) => w.namespace === ns).map((w) => w.kind).sort(), ['Secret', 'ServiceAccount'], ns);
    }
  });
});
