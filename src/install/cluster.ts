// install-cron's and uninstall's conversations with the cluster: apply by server-side apply, prune
// what an install no longer needs, start a run now and follow it, and find what an install owns.
import type { KubeConfig, KubernetesObject, KubernetesObjectApi, V1Job, V1Pod } from '@kubernetes/client-node';
import { call, isNotFound, objectApi } from '../kube/api.js';
import { FIELD_MANAGER, LABEL_INSTALL } from '../names.js';
import type { K8sObject } from './manifests.js';

/** Every kind an install may own, cluster-wide kinds included; uninstall and pruning walk these. */
export const OWNED_KINDS: Array<{ apiVersion: string; kind: string }> = [
  { apiVersion: 'batch/v1', kind: 'CronJob' },
  { apiVersion: 'batch/v1', kind: 'Job' },
  { apiVersion: 'v1', kind: 'ConfigMap' },
  { apiVersion: 'v1', kind: 'Secret' },
  { apiVersion: 'v1', kind: 'ServiceAccount' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole' },
];


export type Applied = { object: K8sObject; outcome: 'created' | 'configured' | 'unchanged' };

/** Server-side apply each object, in order; report what changed, as `kubectl apply` does. */
export async function applyAll(kc: KubeConfig, objects: K8sObject[], dryRun?: 'All'): Promise<Applied[]> {
  const api = await objectApi(kc);
  const { PatchStrategy } = await import('@kubernetes/client-node');
  const out: Applied[] = [];
  for (const object of objects) {
    const before = await read(api, object);
    const after = await call(`apply ${object.kind}`, () =>
      api.patch(object as KubernetesObject, undefined, dryRun, FIELD_MANAGER, true, PatchStrategy.ServerSideApply),
    );
    const outcome = !before ? 'created' : before.metadata?.resourceVersion === after.metadata?.resourceVersion ? 'unchanged' : 'configured';
    out.push({ object, outcome });
  }
  return out;
}

async function read(api: KubernetesObjectApi, o: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }): Promise<KubernetesObject | undefined> {
  try {
    return await api.read({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata.name, namespace: o.metadata.namespace } });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export interface Owned {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

/** What carries the install's label, across all namespaces. */
export async function findOwned(kc: KubeConfig, install: string, kinds = OWNED_KINDS): Promise<Owned[]> {
  const api = await objectApi(kc);
  const found: Owned[] = [];
  for (const { apiVersion, kind } of kinds) {
    const list = await call(`list ${kind}`, () => api.list(apiVersion, kind, undefined, undefined, undefined, undefined, undefined, `${LABEL_INSTALL}=${install}`));
    for (const item of list.items) {
      found.push({ apiVersion, kind, metadata: { name: item.metadata!.name!, namespace: item.metadata?.namespace } });
    }
  }
  return found;
}

export const key = (o: Owned | K8sObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export async function deleteAll(kc: KubeConfig, objects: Owned[], dryRun?: 'All'): Promise<void> {
  const api = await objectApi(kc);
  for (const o of objects) {
    try {
      // Background: the CronJob's Jobs and their Pods go with it.
      await call(`delete ${o.kind}`, () => api.delete(o as KubernetesObject, undefined, dryRun, undefined, undefined, 'Background'));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

/** Start a run now, as `kubectl create job --from=cronjob/NAME` does. */
export async function runNow(kc: KubeConfig, namespace: string, cronJobName: string): Promise<V1Job> {
  const { BatchV1Api } = await import('@kubernetes/client-node');
  const batch = kc.makeApiClient(BatchV1Api);
  const cj = await call('read cronjob', () => batch.readNamespacedCronJob({ name: cronJobName, namespace }));
  const template = cj.spec!.jobTemplate;
  const stamp = Math.floor(Date.now() / 1000).toString(36);
  const job: V1Job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: `${cronJobName}-now-${stamp}`.slice(0, 63),
      namespace,
      labels: { ...template.metadata?.labels },
      annotations: { ...template.metadata?.annotations, 'cronjob.kubernetes.io/instantiate': 'manual' },
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: cronJobName, uid: cj.metadata!.uid!, controller: true, blockOwnerDeletion: true }],
    },
    spec: template.spec,
  };
  return call('create job', () => batch.createNamespacedJob({ namespace, body: job, fieldManager: FIELD_MANAGER }));
}

export type JobEnd = { state: 'succeeded' } | { state: 'failed'; reason: string; logs?: string } | { state: 'timeout' };

/** Follow a Job until it completes, fails or the time runs out; on failure, say why. */
export async function waitForJob(kc: KubeConfig, namespace: string, name: string, timeoutMs: number, pollMs = 1000): Promise<JobEnd> {
  const { BatchV1Api, CoreV1Api } = await import('@kubernetes/client-node');
  const batch = kc.makeApiClient(BatchV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const job = await call('read job', () => batch.readNamespacedJob({ name, namespace }));
    const conditions = job.status?.conditions ?? [];
    if (conditions.some((c) => c.type === 'Complete' && c.status === 'True')) return { state: 'succeeded' };
    const failed = conditions.find((c) => c.type === 'Failed' && c.status === 'True');
    if (failed) return { state: 'failed', ...(await whyFailed(core, namespace, name, failed.reason, failed.message)) };
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return { state: 'timeout' };
}

export async function whyFailed(
  core: import('@kubernetes/client-node').CoreV1Api,
  namespace: string,
  job: string,
  jobReason?: string,
  jobMessage?: string,
): Promise<{ reason: string; logs?: string }> {
  const pods = await core.listNamespacedPod({ namespace, labelSelector: `job-name=${job}` }).catch(() => ({ items: [] as V1Pod[] }));
  const last = pods.items.sort((a, b) => String(b.metadata?.creationTimestamp).localeCompare(String(a.metadata?.creationTimestamp)))[0];
  const state = last?.status?.containerStatuses?.[0]?.state;
  const podReason =
    state?.terminated ? `${state.terminated.reason ?? 'terminated'} (exit ${state.terminated.exitCode})${state.terminated.message ? `: ${state.terminated.message.trim()}` : ''}`
    : state?.waiting ? `${state.waiting.reason}${state.waiting.message ? `: ${state.waiting.message}` : ''}`
    : last?.status?.message ?? last?.status?.reason;
  const reason = [jobReason && `${jobReason}${jobMessage ? `: ${jobMessage}` : ''}`, podReason && `pod ${last?.metadata?.name}: ${podReason}`].filter(Boolean).join('; ');
  let logs: string | undefined;
  if (last?.metadata?.name) {
    logs = await core
      .readNamespacedPodLog({ name: last.metadata.name, namespace, tailLines: 10 })
      .then((l) => l.trim() || undefined)
      .catch(() => undefined); // no kubelet to ask, or the pod never ran
  }
  return { reason: reason || 'the job failed', logs };
}
