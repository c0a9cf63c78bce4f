// Before applying: can this user create everything, and hold every permission the Role grants
// (Kubernetes refuses to let anyone grant what they lack, unless they may escalate)? Asked of the
// API server with SelfSubjectAccessReview, so the answer is the server's own.
import type { KubeConfig } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { call } from '../kube/api.js';
import { clusterScoped, rbacRules, type InstallPlan, type K8sObject } from './manifests.js';

interface Attributes {
  verb: string;
  group: string;
  resource: string;
  namespace?: string;
  name?: string;
}

const RESOURCES: Record<string, { group: string; resource: string }> = {
  ServiceAccount: { group: '', resource: 'serviceaccounts' },
  ConfigMap: { group: '', resource: 'configmaps' },
  Secret: { group: '', resource: 'secrets' },
  Role: { group: 'rbac.authorization.k8s.io', resource: 'roles' },
  RoleBinding: { group: 'rbac.authorization.k8s.io', resource: 'rolebindings' },
  ClusterRole: { group: 'rbac.authorization.k8s.io', resource: 'clusterroles' },
  ClusterRoleBinding: { group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' },
  CronJob: { group: 'batch', resource: 'cronjobs' },
  Job: { group: 'batch', resource: 'jobs' },
};

export function describe(a: Attributes): string {
  const what = `${a.group ? `${a.resource}.${a.group}` : a.resource}${a.name ? `/${a.name}` : ''}`;
  return `${a.verb} ${what}${a.namespace ? ` in ${a.namespace}` : ' (cluster-wide)'}`;
}

/** Everything install-cron will do, as access-review questions. */
export function requiredAccess(plan: InstallPlan, objects: K8sObject[]): Attributes[] {
  const asks: Attributes[] = [];
  for (const o of objects) {
    const r = RESOURCES[o.kind];
    // Server-side apply is a patch that may create: both verbs, by name.
    for (const verb of ['create', 'patch']) asks.push({ verb, ...r, namespace: o.metadata.namespace, name: o.metadata.name });
  }
  asks.push({ verb: 'create', ...RESOURCES.Job, namespace: plan.jobNamespace });

  // Holding what the Role grants, in each namespace it grants it (or cluster-wide).
  const cluster = clusterScoped(plan);
  const namespaces = cluster ? [undefined] : (plan.settings.namespaces ?? []);
  for (const rule of rbacRules(plan, cluster)) {
    const resource = (rule.resources as string[])[0];
    const names = (rule.resourceNames as string[] | undefined) ?? [undefined];
    for (const namespace of namespaces) {
      for (const verb of rule.verbs as string[]) {
        for (const name of verb === 'list' ? [undefined] : names) asks.push({ verb, group: '', resource, namespace, name });
      }
    }
  }
  return asks;
}

/** The questions the server answered no to. */
export async function missingAccess(kc: KubeConfig, asks: Attributes[]): Promise<Attributes[]> {
  const { AuthorizationV1Api } = await import('@kubernetes/client-node');
  const authz = kc.makeApiClient(AuthorizationV1Api);
  const limit = pLimit(8);
  const answers = await Promise.all(
    asks.map((a) =>
      limit(async () => {
        const review = await call('access review', () =>
          authz.createSelfSubjectAccessReview({ body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: a } } }),
        );
        return review.status?.allowed ? undefined : a;
      }),
    ),
  );
  return answers.filter((a): a is Attributes => Boolean(a));
}
