// install-cron's steps, in order: resolve the plan (AWS where needed), then against the cluster:
// check the API, check the user's rights, report hand-written refreshers, apply, prune, print the
// IAM side, run once and follow the run.
import type { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { Registry } from '../aws/registry.js';
import { SecretValue } from '../aws/secret-value.js';
import { UserError } from '../cli/errors.js';
import { note, paint, warn } from '../cli/output.js';
import { call, clusterError } from '../kube/api.js';
import { IMAGE_REPOSITORY } from '../names.js';
import { applyAll, deleteAll, findOwned, key, runNow, waitForJob } from './cluster.js';
import { findLegacyRefreshers } from './legacy.js';
import { buildManifests, iamPolicy, irsaTrustPolicy, keysSecretName, type AuthMode, type InstallPlan, type K8sObject } from './manifests.js';
import type { Owned } from './cluster.js';
import { checkLongLived } from './plan.js';
import { describe as describeAccess, missingAccess, requiredAccess } from './preflight.js';

interface ResolveFlags {
  name: string;
  'job-namespace': string;
  namespace?: string[];
  'all-namespaces'?: boolean;
  'namespace-selector'?: string;
  'exclude-namespace'?: string[];
  'secret-name': string;
  'service-account'?: string[];
  'no-service-account'?: boolean;
  region?: string;
  profile?: string;
  'role-arn'?: string;
  'role-session-name'?: string;
  'external-id'?: string;
  'irsa-role-arn'?: string;
  'host-network'?: boolean;
  schedule: string;
  image?: string;
}

export async function resolveInstall(
  f: ResolveFlags,
  ctx: { auth: AuthMode; registries: Registry[]; currentNamespace: string; version: string },
): Promise<InstallPlan> {
  const registries = [...ctx.registries];
  let keys: InstallPlan['auth']['keys'];
  let region = f.region;

  // AWS is asked only for what the flags leave open: the default registry, or the keys to store.
  if (registries.length === 0 || ctx.auth === 'keys') {
    const { openSession, whoAmI, requireRegion } = await import('../aws/session.js');
    const session = await openSession({ profile: f.profile, region: f.region });
    region ??= session.region;
    if (registries.length === 0) {
      const identity = await whoAmI(session);
      const { registryFor } = await import('../aws/registry.js');
      registries.push(registryFor(identity.account, requireRegion(session)));
    }
    if (ctx.auth === 'keys') {
      const { awsError } = await import('../aws/session.js');
      const creds = await session.credentials().catch((err) => {
        throw awsError('reading the access key to store', err);
      });
      checkLongLived(creds);
      keys = { accessKeyId: creds.accessKeyId, secretAccessKey: new SecretValue(creds.secretAccessKey) };
    }
  }
  region ??= registries[0].region;

  const cluster = Boolean(f['all-namespaces'] || f['namespace-selector']);
  const { excludeMatcher } = await import('../kube/namespaces.js');
  const excluded = excludeMatcher(f['exclude-namespace']);
  const named = [...new Set(f.namespace?.length ? f.namespace : [ctx.currentNamespace])].sort();
  const namespaces = cluster ? undefined : named.filter((n) => !excluded(n));
  if (namespaces && namespaces.length === 0) {
    throw new UserError('UsageError', `--exclude-namespace leaves none of ${named.join(', ')}`, 'drop the exclusion or name other namespaces', 2);
  }
  return {
    name: f.name,
    jobNamespace: f['job-namespace'],
    image: f.image ?? `${IMAGE_REPOSITORY}:${ctx.version}`,
    schedule: f.schedule,
    settings: {
      registries: registries.map((r) => r.host),
      ...(namespaces ? { namespaces } : {}),
      ...(f['all-namespaces'] ? { allNamespaces: true } : {}),
      ...(f['namespace-selector'] ? { namespaceSelector: f['namespace-selector'] } : {}),
      ...(f['exclude-namespace']?.length ? { excludeNamespaces: f['exclude-namespace'] } : {}),
      secretName: f['secret-name'],
      serviceAccounts: f['no-service-account'] ? [] : (f['service-account'] ?? ['default']),
      region,
      ...(f['role-arn'] ? { roleArn: f['role-arn'] } : {}),
      ...(f['role-session-name'] ? { roleSessionName: f['role-session-name'] } : {}),
      ...(f['external-id'] ? { externalId: f['external-id'] } : {}),
    },
    auth: { mode: ctx.auth, irsaRoleArn: f['irsa-role-arn'], keys, hostNetwork: f['host-network'] },
  };
}

/** For GitOps: the job's namespace first (apply creates it when missing), then the install. */
export function printManifests(objects: K8sObject[], format: 'yaml' | 'json', jobNamespace: string): void {
  objects = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: jobNamespace } }, ...objects];
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2)}\n`);
    return;
  }
  // lineWidth 0: the settings file inside the ConfigMap stays a literal block, as it will be read.
  process.stdout.write(objects.map((o) => stringify(o, { aliasDuplicateObjects: false, lineWidth: 0 })).join('---\n'));
}

export async function install(
  kc: KubeConfig,
  plan: InstallPlan,
  opts: { dryRun: 'none' | 'server'; wait: boolean; timeoutSeconds: number },
): Promise<boolean> {
  const server = kc.getCurrentCluster()?.server ?? '';
  const guard = <T>(p: Promise<T>) =>
    p.catch((err) => {
      throw clusterError(server, err) ?? err;
    });
  const { applyKubeProxy } = await import('../net/proxy.js');
  applyKubeProxy(kc);

  await guard(requireBatchV1CronJobs(kc));
  const objects = buildManifests(plan, { revealKeys: true });

  const missing = await guard(missingAccess(kc, requiredAccess(plan, objects)));
  if (missing.length > 0) {
    const list = missing.slice(0, 8).map(describeAccess).join('; ');
    throw new UserError('Forbidden', `you lack ${missing.length} permission(s) install-cron needs: ${list}${missing.length > 8 ? '; ...' : ''}`, 'ask a cluster admin to grant them, or to run install-cron');
  }

  for (const f of await findLegacyRefreshers(kc)) {
    warn(`${f.kind.toLowerCase()}/${f.name} in ${f.namespace} ${f.why}; once the new refresher works: ${f.remove}`);
  }

  const dry = opts.dryRun === 'server' ? ('All' as const) : undefined;
  await guard(ensureNamespace(kc, plan.jobNamespace, dry));
  const applied = await guard(applyAll(kc, objects, dry));
  for (const a of applied) {
    const where = a.object.metadata.namespace ? ` -n ${a.object.metadata.namespace}` : '';
    note(`${a.object.kind.toLowerCase()}/${a.object.metadata.name}${where} ${a.outcome}${dry ? ' (server dry run)' : ''}`);
  }

  // Whatever carries this install's label and is not in the plan any more: namespaces dropped,
  // another auth mode's Secret, cluster RBAC after moving to named namespaces (and the reverse).
  const wanted = new Set(objects.map(key));
  const owned = await guard(findOwned(kc, plan.name));
  const stale = owned.filter((o) => installObject(o, plan.name) && !wanted.has(key(o)));
  await guard(deleteAll(kc, stale, dry));
  for (const o of stale) note(`${o.kind.toLowerCase()}/${o.metadata.name}${o.metadata.namespace ? ` -n ${o.metadata.namespace}` : ''} pruned${dry ? ' (server dry run)' : ''}`);

  printIamAdvice(plan);
  if (dry) return true;

  const changed = applied.some((a) => a.outcome !== 'unchanged') || stale.length > 0;
  if (!changed) {
    note('Nothing changed; no run started (the CronJob runs on its schedule).');
    return true;
  }
  const running = await guard(activeRun(kc, plan));
  if (running) {
    note(`job/${running} -n ${plan.jobNamespace} is still running; not starting another (the CronJob forbids overlapping runs too).`);
    return true;
  }
  const job = await guard(runNow(kc, plan.jobNamespace, plan.name));
  const jobName = job.metadata!.name!;
  if (!opts.wait) {
    note(`Started job/${jobName} -n ${plan.jobNamespace}; follow it with: kubectl get job ${jobName} -n ${plan.jobNamespace} -w`);
    return true;
  }
  return follow(kc, plan, jobName, opts.timeoutSeconds);
}

async function follow(kc: KubeConfig, plan: InstallPlan, jobName: string, timeoutSeconds: number): Promise<boolean> {
  const { ux } = await import('@oclif/core');
  const tty = Boolean(process.stderr.isTTY);
  if (tty) ux.action.start(`Waiting for the first run, job/${jobName}`);
  else note(`Waiting for the first run, job/${jobName} -n ${plan.jobNamespace} (up to ${timeoutSeconds}s)...`);
  const end = await waitForJob(kc, plan.jobNamespace, jobName, timeoutSeconds * 1000);
  if (tty) ux.action.stop(end.state);
  if (end.state === 'succeeded') {
    note(`${paint('green', 'The first run succeeded')}: pull secrets are in place and refresh on "${plan.schedule}".`);
    return true;
  }
  if (end.state === 'timeout') {
    note(`${paint('yellow', 'The first run has not finished')} after ${timeoutSeconds}s; check it with: kubectl describe job ${jobName} -n ${plan.jobNamespace}`);
    return false;
  }
  note(`${paint('red', 'The first run failed')}: ${end.reason}`);
  if (end.logs) note(`Last log lines:\n${end.logs.split('\n').map((l) => `  ${l}`).join('\n')}`);
  return false;
}

/**
 * Objects install-cron itself writes. Pull secrets carry the install's label too (the job's login
 * writes them) but are the job's output, and Jobs belong to the CronJob: neither is pruned.
 */
export function installObject(o: Owned, install: string): boolean {
  if (o.kind === 'Job') return false;
  if (o.kind === 'Secret') return o.metadata.name === keysSecretName(install);
  return true;
}

function printIamAdvice(plan: InstallPlan): void {
  const json = (o: object) => JSON.stringify(o, null, 2).split('\n').map((l) => `  ${l}`).join('\n');
  note(`\nThe job's AWS identity needs this IAM policy:\n${json(iamPolicy(plan))}`);
  if (plan.auth.mode === 'irsa') note(`The role ${plan.auth.irsaRoleArn} needs this trust policy (fill in your cluster's OIDC provider):\n${json(irsaTrustPolicy(plan))}`);
  if (plan.auth.mode === 'pod-identity') {
    note(`Create the Pod Identity association:\n  aws eks create-pod-identity-association --cluster-name CLUSTER --namespace ${plan.jobNamespace} --service-account ${plan.name} --role-arn ROLE_ARN`);
  }
  note('Anyone who can read Secrets in a target namespace can pull whatever this identity can pull.\n');
}

async function activeRun(kc: KubeConfig, plan: InstallPlan): Promise<string | undefined> {
  const { BatchV1Api } = await import('@kubernetes/client-node');
  const jobs = await call('list jobs', () => kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: plan.jobNamespace, labelSelector: `kubectl-ecr.io/install=${plan.name}` }));
  return jobs.items.find((j) => (j.status?.active ?? 0) > 0 && !j.status?.completionTime)?.metadata?.name;
}

async function requireBatchV1CronJobs(kc: KubeConfig): Promise<void> {
  const { BatchV1Api } = await import('@kubernetes/client-node');
  const resources = await call('discover batch/v1', () => kc.makeApiClient(BatchV1Api).getAPIResources()).catch(() => undefined);
  if (!resources?.resources.some((r) => r.name === 'cronjobs')) {
    throw new UserError('UnsupportedCluster', 'the API server does not serve batch/v1 CronJobs (Kubernetes 1.21 or newer does)', 'upgrade the cluster, or run `kubectl ecr login` from elsewhere on a schedule');
  }
}

async function ensureNamespace(kc: KubeConfig, name: string, dryRun?: 'All'): Promise<void> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(CoreV1Api);
  try {
    await core.readNamespace({ name });
  } catch {
    if (dryRun) {
      throw new UserError('NamespaceNotFound', `namespace "${name}" does not exist, and a server dry run cannot create it and then check objects in it`, 'create it first, or use --dry-run=client');
    }
    await call('create namespace', () => core.createNamespace({ body: { metadata: { name } }, dryRun }));
    note(`namespace/${name} created (it is left in place by uninstall)`);
  }
}
