// patch-deployment against the cluster: find the workloads, change their pod templates (only when
// something changes, so no rollout starts for nothing), and follow rollouts.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { UserError } from '../cli/errors.js';
import { apiFailure, call, describeFailure, isConflict, isNotFound, objectApi } from '../kube/api.js';
import { FIELD_MANAGER } from '../names.js';
import { changeTemplate, KINDS, podSpec, type KindName, type TemplateChange, type Workload } from './template.js';

export interface Target {
  kind: KindName;
  name: string;
}

export interface PatchOutcome {
  ref: string;
  outcome: 'patched' | 'unchanged' | 'failed';
  changes: string[];
  object?: Workload;
  diff?: string;
  error?: string;
}

const refOf = (w: { kind: string; metadata: { name: string } }) =>
  `${w.kind.toLowerCase()}.${Object.values(KINDS).find((k) => k.kind === w.kind)?.group}/${w.metadata.name}`;


/** Named workloads (each may be missing: reported on its own), or every one matching. */
export async function findWorkloads(
  kc: KubeConfig,
  namespace: string,
  choice: { targets: Target[]; selector?: string; all?: boolean; kinds: KindName[] },
): Promise<Array<Workload | PatchOutcome>> {
  const api = await objectApi(kc);
  if (choice.targets.length > 0) {
    return Promise.all(
      choice.targets.map(async (t) => {
        const k = KINDS[t.kind];
        try {
          return (await call('read workload', () => api.read({ apiVersion: k.apiVersion, kind: k.kind, metadata: { name: t.name, namespace } }))) as Workload;
        } catch (err) {
          const ref = `${k.kind.toLowerCase()}.${k.group}/${t.name}`;
          return { ref, outcome: 'failed' as const, changes: [], error: isNotFound(err) ? `not found in namespace ${namespace}` : describeFailure(err) };
        }
      }),
    );
  }
  const out: Workload[] = [];
  for (const kind of choice.kinds) {
    const k = KINDS[kind];
    const list = await call('list workloads', () => api.list(k.apiVersion, k.kind, namespace, undefined, undefined, undefined, undefined, choice.all ? undefined : choice.selector));
    out.push(...list.items.map((i) => ({ ...i, apiVersion: k.apiVersion, kind: k.kind }) as Workload));
  }
  return out;
}

export async function serviceAccountSecrets(kc: KubeConfig, namespace: string, name: string): Promise<string[]> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  try {
    const sa = await call('read serviceaccount', () => kc.makeApiClient(CoreV1Api).readNamespacedServiceAccount({ name, namespace }));
    return (sa.imagePullSecrets ?? []).map((r) => r.name!).filter(Boolean);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/** The registry hosts a pull secret holds; undefined when there is no such secret, null when we may not look. */
export async function secretHosts(kc: KubeConfig, namespace: string, name: string): Promise<string[] | undefined | null> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const { parseDockerConfig, DOCKER_CONFIG_KEY } = await import('../refresh/dockerconfig.js');
  try {
    const s = await kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name, namespace });
    return Object.keys(parseDockerConfig(s.data?.[DOCKER_CONFIG_KEY]).auths);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    if (apiFailure(err)?.code === 403) return null; // may not read secrets: nothing to say about them
    throw err;
  }
}

export async function namespaceExists(kc: KubeConfig, name: string): Promise<boolean> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  try {
    await kc.makeApiClient(CoreV1Api).readNamespace({ name });
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    if (apiFailure(err)?.code === 403) return true; // may not read namespaces: let the workload reads tell
    throw err;
  }
}

/**
 * Change one workload: read, change, write with the read's resourceVersion (retrying on conflict),
 * or write nothing at all when nothing changes.
 */
export async function patchWorkload(
  kc: KubeConfig,
  first: Workload,
  change: Omit<TemplateChange, 'serviceAccountSecrets'>,
  dryRun: 'none' | 'client' | 'server',
): Promise<PatchOutcome> {
  const api = await objectApi(kc);
  const ref = refOf(first);
  let current = first;
  for (let attempt = 0; ; attempt++) {
    try {
      const namespace = current.metadata.namespace!;
      const sa = podSpec(current).serviceAccountName ?? 'default';
      const { object, changes } = changeTemplate(current, { ...change, serviceAccountSecrets: await serviceAccountSecrets(kc, namespace, sa) });
      if (changes.length === 0) return { ref, outcome: 'unchanged', changes, object: current };
      const diff = await unifiedDiff(ref, current, object);
      if (dryRun !== 'client') {
        await call('replace workload', () => api.replace(object as KubernetesObject, undefined, dryRun === 'server' ? 'All' : undefined, FIELD_MANAGER));
      }
      return { ref, outcome: 'patched', changes, object, diff };
    } catch (err) {
      if (err instanceof UserError) return { ref, outcome: 'failed', changes: [], error: err.line() };
      if (!isConflict(err) || attempt >= 5) return { ref, outcome: 'failed', changes: [], error: describeFailure(err) };
      current = (await api.read({ apiVersion: current.apiVersion, kind: current.kind, metadata: current.metadata })) as unknown as Workload;
    }
  }
}

async function unifiedDiff(ref: string, before: Workload, after: Workload): Promise<string> {
  const { createTwoFilesPatch } = await import('diff');
  const clean = (w: Workload) => {
    const { managedFields: _m, resourceVersion: _r, ...metadata } = w.metadata as Record<string, unknown>;
    const { status: _s, ...rest } = w as unknown as Record<string, unknown>;
    return stringify({ ...rest, metadata }, { aliasDuplicateObjects: false });
  };
  return createTwoFilesPatch(`${ref} (live)`, `${ref} (patched)`, clean(before), clean(after), undefined, undefined, { context: 3 });
}

/** Like `kubectl rollout status`: done, failed (progress deadline), or still going at the timeout. */
export async function waitForRollout(kc: KubeConfig, w: Workload, timeoutMs: number): Promise<'done' | 'failed' | 'timeout' | 'none'> {
  if (w.kind === 'CronJob') return 'none'; // the next scheduled Job uses the new template
  const api = await objectApi(kc);
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const o = (await api.read({ apiVersion: w.apiVersion, kind: w.kind, metadata: w.metadata })) as unknown as Workload & { status?: Record<string, any> };
    const s = o.status ?? {};
    const generation = o.metadata.generation ?? 0;
    const observed = (s.observedGeneration ?? 0) >= generation;
    const want = (o.spec as Record<string, any>)?.replicas ?? 1;
    if (o.kind === 'Deployment') {
      if (s.conditions?.some((c: any) => c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded')) return 'failed';
      if (observed && (s.updatedReplicas ?? 0) >= want && (s.replicas ?? 0) <= (s.updatedReplicas ?? 0) && (s.availableReplicas ?? 0) >= want) return 'done';
    } else if (o.kind === 'StatefulSet') {
      if (observed && (s.updatedReplicas ?? 0) >= want && (s.readyReplicas ?? 0) >= want && (!s.updateRevision || s.currentRevision === s.updateRevision)) return 'done';
    } else if (o.kind === 'DaemonSet') {
      if (observed && (s.updatedNumberScheduled ?? 0) >= (s.desiredNumberScheduled ?? 0) && (s.numberAvailable ?? 0) >= (s.desiredNumberScheduled ?? 0)) return 'done';
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  return 'timeout';
}
