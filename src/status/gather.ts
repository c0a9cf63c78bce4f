// Reading what status judges: installs (CronJobs and their Jobs), the pull secret in each target
// namespace, and the pod sources (workload templates and pods) that pull from ECR.
import type { KubeConfig, V1Job, V1PodSpec, V1Secret } from '@kubernetes/client-node';
import { apiFailure, call, isNotFound } from '../kube/api.js';
import { UserError } from '../cli/errors.js';
import { ANNOTATIONS, DEFAULT_SECRET_NAME, LABEL_INSTALL, LABEL_MANAGED_BY, MANAGED_BY, isManaged, splitList } from '../names.js';
import { parseDockerConfig, DOCKER_CONFIG_KEY } from '../refresh/dockerconfig.js';
import { parseSettings, type Settings } from '../refresh/settings.js';
import { imageHost, isEcrHost } from './judge.js';
import type { Credential, InstallState, PodSource, SecretState } from './model.js';

export interface Scope {
  namespaces?: string[];
  all?: boolean;
  install?: string;
  secretName?: string;
  current: string;
}

export interface Gathered {
  /** True when installs could not be listed (no cluster-wide right to list CronJobs). */
  installsHidden?: boolean;
  installs: InstallState[];
  secrets: SecretState[];
  workloads: PodSource[];
}

export async function gather(kc: KubeConfig, scope: Scope): Promise<Gathered> {
  const k8s = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);

  // Installs, and the settings that say which namespaces they keep, which secret, which accounts.
  const selector = `${LABEL_MANAGED_BY}=${MANAGED_BY}${scope.install ? `,${LABEL_INSTALL}=${scope.install}` : ''}`;
  let cronJobs: import('@kubernetes/client-node').V1CronJob[] = [];
  let installsHidden = false;
  try {
    cronJobs = (await call('list cronjobs', () => batch.listCronJobForAllNamespaces({ labelSelector: selector }))).items;
  } catch (err) {
    // Someone with rights in a few namespaces only can still check those namespaces.
    if (apiFailure(err)?.code !== 403 || !scope.namespaces?.length) throw err;
    installsHidden = true;
  }
  const installs: InstallState[] = [];
  const targets: Array<{ settings: Settings; namespace: string }> = [];
  for (const cj of cronJobs) {
    const name = cj.metadata!.name!;
    const namespace = cj.metadata!.namespace!;
    const cm = await core.readNamespacedConfigMap({ name, namespace }).catch(() => undefined);
    const text = cm?.data?.['settings.yaml'];
    const settings = text ? parseSettings(text, `configmap/${name}`) : undefined;
    // With -n, only the installs that keep those namespaces (or every namespace) are in view.
    const covers = (ns: string) => !settings || settings.allNamespaces || Boolean(settings.namespaceSelector) || Boolean(settings.namespaces?.includes(ns));
    if (scope.namespaces?.length && !scope.namespaces.some(covers)) continue;
    if (settings) targets.push({ namespace, settings });
    const jobs = (await call('list jobs', () => batch.listNamespacedJob({ namespace, labelSelector: `${LABEL_INSTALL}=${name}` }))).items;
    installs.push({
      name,
      namespace,
      schedule: cj.spec?.schedule ?? '',
      suspended: Boolean(cj.spec?.suspend),
      lastSchedule: iso(cj.status?.lastScheduleTime),
      lastSuccess: iso(cj.status?.lastSuccessfulTime),
      active: cj.status?.active?.length ?? 0,
      failedJobs: jobs.filter(failed).length,
      lastRun: await lastRun(core, jobs),
    });
  }

  // Which namespaces, which secret: the flags, else what the installs keep, else the current one.
  const allNamespaces = async () => (await call('list namespaces', () => core.listNamespace())).items.map((n) => n.metadata!.name!);
  // required: an install keeps this namespace, so its secret must be there. Otherwise (-n, -A) a
  // namespace counts only when it has the secret or something in it pulls from ECR.
  const expected = new Map<string, { secret: string; accounts: string[]; required: boolean }>();
  const want = (ns: string, secret: string, accounts: string[], required: boolean) => expected.set(`${ns}/${secret}`, { secret, accounts, required });
  if (scope.namespaces?.length || scope.all) {
    const namespaces = scope.all ? await allNamespaces() : scope.namespaces!;
    for (const ns of namespaces) {
      const fromInstall = targets.find((t) => t.settings.allNamespaces || t.settings.namespaceSelector || t.settings.namespaces?.includes(ns));
      const kept = Boolean(fromInstall?.settings.namespaces?.includes(ns));
      want(ns, scope.secretName ?? fromInstall?.settings.secretName ?? DEFAULT_SECRET_NAME, fromInstall?.settings.serviceAccounts ?? ['default'], kept);
    }
  } else if (targets.length > 0) {
    for (const t of targets) {
      const { resolveNamespaces } = await import('../kube/namespaces.js');
      const namespaces = t.settings.namespaces ?? (await resolveNamespaces(core, { all: t.settings.allNamespaces, selector: t.settings.namespaceSelector, exclude: t.settings.excludeNamespaces, current: scope.current }));
      for (const ns of namespaces) want(ns, scope.secretName ?? t.settings.secretName ?? DEFAULT_SECRET_NAME, t.settings.serviceAccounts ?? ['default'], true);
    }
  } else {
    want(scope.current, scope.secretName ?? DEFAULT_SECRET_NAME, ['default'], false);
  }

  const namespaces = [...new Set([...expected.keys()].map((k) => k.split('/')[0]))].sort();
  for (const name of scope.namespaces ?? []) {
    const missing = await core.readNamespace({ name }).then(() => false, (err) => isNotFound(err));
    if (missing) throw new UserError('NamespaceNotFound', `namespace "${name}" does not exist`, 'check -n');
  }
  const secrets: SecretState[] = [];
  const workloads: PodSource[] = [];
  for (const namespace of namespaces) {
    const accounts = (await call('list serviceaccounts', () => core.listNamespacedServiceAccount({ namespace }))).items;
    const saSecrets = (name: string) => (accounts.find((a) => a.metadata?.name === name)?.imagePullSecrets ?? []).map((r) => r.name!);
    const allSecrets = (await call('list secrets', () => core.listNamespacedSecret({ namespace }))).items;

    // Every other docker-config secret too: a workload may rely on one (another region's, say).
    for (const s of allSecrets) {
      if (s.type === 'kubernetes.io/dockerconfigjson' && !expected.has(`${namespace}/${s.metadata!.name}`)) {
        secrets.push({ ...secretState(namespace, s.metadata!.name!, s, [], []), expectedOn: [] });
      }
    }

    const source = (kind: string, name: string, spec: V1PodSpec | undefined, waiting?: PodSource['waiting']): PodSource | undefined => {
      if (!spec) return undefined;
      const images = [...(spec.initContainers ?? []), ...spec.containers].map((c) => c.image ?? '');
      if (!images.some((i) => isEcrHost(imageHost(i) ?? ''))) return undefined;
      const sa = spec.serviceAccountName ?? 'default';
      return { namespace, kind, name, images, ownSecrets: (spec.imagePullSecrets ?? []).map((r) => r.name!), serviceAccount: sa, serviceAccountSecrets: saSecrets(sa), waiting };
    };
    const add = (s: PodSource | undefined) => s && workloads.push(s);
    for (const d of (await call('list deployments', () => apps.listNamespacedDeployment({ namespace }))).items) add(source('Deployment', d.metadata!.name!, d.spec?.template.spec));
    for (const d of (await call('list statefulsets', () => apps.listNamespacedStatefulSet({ namespace }))).items) add(source('StatefulSet', d.metadata!.name!, d.spec?.template.spec));
    for (const d of (await call('list daemonsets', () => apps.listNamespacedDaemonSet({ namespace }))).items) add(source('DaemonSet', d.metadata!.name!, d.spec?.template.spec));
    for (const d of (await call('list cronjobs', () => batch.listNamespacedCronJob({ namespace }))).items) add(source('CronJob', d.metadata!.name!, d.spec?.jobTemplate.spec?.template.spec));
    for (const p of (await call('list pods', () => core.listNamespacedPod({ namespace }))).items) {
      const statuses = [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])];
      const w = statuses.map((c) => c.state?.waiting).find((x) => x?.reason === 'ErrImagePull' || x?.reason === 'ImagePullBackOff');
      // Pods of a workload are judged through their template, unless they are failing to pull.
      if (w || !p.metadata?.ownerReferences?.length) add(source('Pod', p.metadata!.name!, p.spec, w ? { reason: w.reason!, message: w.message } : undefined));
    }

    const pullsFromEcr = workloads.some((w) => w.namespace === namespace);
    for (const [key, e] of expected) {
      if (!key.startsWith(`${namespace}/`)) continue;
      const s = allSecrets.find((x) => x.metadata?.name === e.secret);
      if (!s && !e.required && !pullsFromEcr) continue; // nothing here needs it
      secrets.push(secretState(namespace, e.secret, s, accounts.filter((a) => saSecrets(a.metadata!.name!).includes(e.secret)).map((a) => a.metadata!.name!), e.accounts));
    }
  }
  return { installs, secrets, workloads, installsHidden };
}

function secretState(namespace: string, name: string, s: V1Secret | undefined, referencedBy: string[], expectedOn: string[]): SecretState {
  if (!s) return { namespace, name, present: false, managed: false, hosts: [], expirySource: 'unknown', referencedBy, expectedOn, credentials: {} };
  const cfg = parseDockerConfig(s.data?.[DOCKER_CONFIG_KEY]);
  const credentials: Record<string, Credential> = {};
  for (const [host, e] of Object.entries(cfg.auths)) {
    const [u, ...p] = e.auth ? Buffer.from(e.auth, 'base64').toString().split(':') : [e.username ?? '', e.password ?? ''];
    credentials[host] = { username: e.username ?? u, password: e.password ?? p.join(':') };
  }
  const recorded = s.metadata?.annotations?.[ANNOTATIONS.expiresAt];
  const derived = recorded ? undefined : derivedExpiry(Object.values(credentials).map((c) => c.password));
  return {
    namespace,
    name,
    present: true,
    managed: isManaged(s.metadata?.labels),
    hosts: Object.keys(cfg.auths).sort(),
    issuedAt: s.metadata?.annotations?.[ANNOTATIONS.issuedAt],
    expiresAt: recorded ?? derived,
    expirySource: recorded ? 'recorded' : derived ? 'derived' : 'unknown',
    referencedBy,
    expectedOn: expectedOn.length ? expectedOn : splitList(s.metadata?.annotations?.[ANNOTATIONS.attachedTo]),
    credentials,
  };
}

/** ECR passwords are base64 JSON carrying an `expiration` (epoch seconds); the earliest wins. */
export function derivedExpiry(passwords: string[]): string | undefined {
  const times = passwords.flatMap((p) => {
    try {
      const exp = JSON.parse(Buffer.from(p, 'base64').toString()).expiration;
      return typeof exp === 'number' ? [exp * 1000] : [];
    } catch {
      return [];
    }
  });
  return times.length ? new Date(Math.min(...times)).toISOString() : undefined;
}

function failed(j: V1Job): boolean {
  return Boolean(j.status?.conditions?.some((c) => c.type === 'Failed' && c.status === 'True'));
}

async function lastRun(core: import('@kubernetes/client-node').CoreV1Api, jobs: V1Job[]): Promise<InstallState['lastRun']> {
  const last = [...jobs].sort((a, b) => String(b.metadata?.creationTimestamp?.toISOString?.() ?? b.metadata?.creationTimestamp).localeCompare(String(a.metadata?.creationTimestamp?.toISOString?.() ?? a.metadata?.creationTimestamp)))[0];
  if (!last) return undefined;
  const job = last.metadata!.name!;
  if (failed(last)) {
    const { whyFailed } = await import('../install/cluster.js');
    const c = last.status!.conditions!.find((x) => x.type === 'Failed');
    const why = await whyFailed(core, last.metadata!.namespace!, job, c?.reason, c?.message);
    return { job, state: 'failed', reason: why.reason, logs: why.logs };
  }
  const done = last.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True');
  return { job, state: done ? 'succeeded' : 'running', finishedAt: iso(last.status?.completionTime) };
}

function iso(d: Date | string | undefined): string | undefined {
  if (!d) return undefined;
  return typeof d === 'string' ? d : d.toISOString();
}
