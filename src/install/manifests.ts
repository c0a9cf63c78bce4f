// The objects install-cron applies, built from a plan. Pure: no I/O, so they can be printed for
// GitOps (--dry-run=client -o yaml), tested without a cluster, and diffed.
import type { SecretValue } from '../aws/secret-value.js';
import { IMAGE_UID, LABEL_INSTALL, LABEL_MANAGED_BY, MANAGED_BY } from '../names.js';
import { renderSettings, type Settings } from '../refresh/settings.js';

export type AuthMode = 'irsa' | 'pod-identity' | 'keys' | 'node';

export interface InstallPlan {
  name: string;
  /** Where the CronJob, its ServiceAccount, ConfigMap and key Secret live. */
  jobNamespace: string;
  image: string;
  schedule: string;
  /** What the job's login does; targets are namespaces, or the whole cluster (all or selector). */
  settings: Settings & { secretName: string; serviceAccounts: string[] };
  auth: {
    mode: AuthMode;
    irsaRoleArn?: string;
    keys?: { accessKeyId: string; secretAccessKey: SecretValue };
    hostNetwork?: boolean;
  };
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export const SETTINGS_PATH = '/etc/kubectl-ecr/settings.yaml';
export const resourceName = (install: string) => `kubectl-ecr-${install}`;
export const keysSecretName = (install: string) => `${install}-aws`;
export const clusterScoped = (plan: InstallPlan) => Boolean(plan.settings.allNamespaces || plan.settings.namespaceSelector);

export function labels(install: string): Record<string, string> {
  return {
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_INSTALL]: install,
    'app.kubernetes.io/name': 'kubectl-ecr',
    'app.kubernetes.io/instance': install,
  };
}

export function buildManifests(plan: InstallPlan, opts: { revealKeys?: boolean } = {}): K8sObject[] {
  const meta = (name: string, namespace?: string) => ({ name, ...(namespace ? { namespace } : {}), labels: labels(plan.name) });
  const objects: K8sObject[] = [];

  objects.push({
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {
      ...meta(plan.name, plan.jobNamespace),
      ...(plan.auth.mode === 'irsa' && plan.auth.irsaRoleArn ? { annotations: { 'eks.amazonaws.com/role-arn': plan.auth.irsaRoleArn } } : {}),
    },
  });
  objects.push({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(plan.name, plan.jobNamespace),
    data: { 'settings.yaml': renderSettings({ ...plan.settings, install: plan.name }) },
  });
  if (plan.auth.mode === 'keys' && plan.auth.keys) {
    const { accessKeyId, secretAccessKey } = plan.auth.keys;
    objects.push({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: meta(keysSecretName(plan.name), plan.jobNamespace),
      type: 'Opaque',
      stringData: { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: opts.revealKeys ? secretAccessKey.reveal() : '[redacted]' },
    });
  }
  objects.push(...rbac(plan));
  objects.push(cronJob(plan));
  return objects;
}

/** Least privilege: the one secret name and the named service accounts, in the target namespaces. */
export function rbacRules(plan: InstallPlan, cluster: boolean): Array<Record<string, unknown>> {
  const { secretName, serviceAccounts } = plan.settings;
  const list = cluster ? ['list'] : [];
  const rules: Array<Record<string, unknown>> = [
    { apiGroups: [''], resources: ['secrets'], resourceNames: [secretName], verbs: ['get', ...list, 'create', 'update', 'patch'] },
  ];
  if (serviceAccounts.length > 0) {
    rules.push({ apiGroups: [''], resources: ['serviceaccounts'], resourceNames: [...serviceAccounts], verbs: ['get', ...list, 'update'] });
  }
  if (cluster) rules.push({ apiGroups: [''], resources: ['namespaces'], verbs: ['list'] });
  return rules;
}

function rbac(plan: InstallPlan): K8sObject[] {
  const name = resourceName(plan.name);
  const subject = { kind: 'ServiceAccount', name: plan.name, namespace: plan.jobNamespace };
  const lbl = labels(plan.name);
  if (clusterScoped(plan)) {
    return [
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name, labels: lbl }, rules: rbacRules(plan, true) },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name, labels: lbl },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
        subjects: [subject],
      },
    ];
  }
  return (plan.settings.namespaces ?? []).flatMap((namespace) => [
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name, namespace, labels: lbl }, rules: rbacRules(plan, false) },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name, namespace, labels: lbl },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [subject],
    },
  ]);
}

function cronJob(plan: InstallPlan): K8sObject {
  const lbl = labels(plan.name);
  const env =
    plan.auth.mode === 'keys'
      ? ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'].map((key) => ({
          name: key,
          valueFrom: { secretKeyRef: { name: keysSecretName(plan.name), key } },
        }))
      : [];
  const hostNetwork = plan.auth.mode === 'node' && plan.auth.hostNetwork;
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: plan.name, namespace: plan.jobNamespace, labels: lbl },
    spec: {
      schedule: plan.schedule,
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 600,
      successfulJobsHistoryLimit: 1,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        metadata: { labels: lbl },
        spec: {
          // Two retries for what may heal (a throttled API, IAM still propagating); a usage or
          // settings error (exit 2) will not, so it fails the run at once.
          backoffLimit: 2,
          podFailurePolicy: { rules: [{ action: 'FailJob', onExitCodes: { containerName: 'login', operator: 'In', values: [2] } }] },
          activeDeadlineSeconds: 600,
          template: {
            metadata: { labels: lbl },
            spec: {
              serviceAccountName: plan.name,
              restartPolicy: 'Never',
              ...(hostNetwork ? { hostNetwork: true } : {}),
              securityContext: {
                runAsNonRoot: true,
                runAsUser: IMAGE_UID,
                runAsGroup: IMAGE_UID,
                seccompProfile: { type: 'RuntimeDefault' },
              },
              containers: [
                {
                  name: 'login',
                  image: plan.image,
                  args: ['login', '--settings', SETTINGS_PATH],
                  ...(env.length ? { env } : {}),
                  resources: { requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '256Mi' } },
                  securityContext: {
                    allowPrivilegeEscalation: false,
                    readOnlyRootFilesystem: true,
                    capabilities: { drop: ['ALL'] },
                  },
                  volumeMounts: [{ name: 'settings', mountPath: '/etc/kubectl-ecr', readOnly: true }],
                },
              ],
              volumes: [{ name: 'settings', configMap: { name: plan.name } }],
            },
          },
        },
      },
    },
  };
}

/** The IAM policy the job's AWS identity needs, nothing more. */
export function iamPolicy(plan: InstallPlan): object {
  const statements: object[] = [{ Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' }];
  if (plan.settings.roleArn) statements.push({ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: plan.settings.roleArn });
  return { Version: '2012-10-17', Statement: statements };
}

/** For IRSA: who may assume the role, with the cluster's OIDC provider left for the user to fill in. */
export function irsaTrustPolicy(plan: InstallPlan): object {
  const provider = 'oidc.eks.REGION.amazonaws.com/id/CLUSTER_ID';
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Federated: `arn:aws:iam::${/^arn:[^:]+:iam::(\d{12}):/.exec(plan.auth.irsaRoleArn ?? '')?.[1] ?? 'ACCOUNT'}:oidc-provider/${provider}` },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: {
          StringEquals: {
            [`${provider}:sub`]: `system:serviceaccount:${plan.jobNamespace}:${plan.name}`,
            [`${provider}:aud`]: 'sts.amazonaws.com',
          },
        },
      },
    ],
  };
}
