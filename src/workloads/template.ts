// Pointing a workload's pod template at the pull secret and at ECR images. Pure: takes the object
// as read, returns the object to write and what changed, in words.
import type { V1Container, V1PodSpec } from '@kubernetes/client-node';
import { UserError } from '../cli/errors.js';
import { moveImage, type ImageOverride } from './image-ref.js';

export const KINDS = {
  deployment: { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments', group: 'apps' },
  statefulset: { apiVersion: 'apps/v1', kind: 'StatefulSet', plural: 'statefulsets', group: 'apps' },
  daemonset: { apiVersion: 'apps/v1', kind: 'DaemonSet', plural: 'daemonsets', group: 'apps' },
  cronjob: { apiVersion: 'batch/v1', kind: 'CronJob', plural: 'cronjobs', group: 'batch' },
} as const;
export type KindName = keyof typeof KINDS;

const ALIASES: Record<string, KindName> = {
  deployment: 'deployment', deployments: 'deployment', deploy: 'deployment', 'deployment.apps': 'deployment',
  statefulset: 'statefulset', statefulsets: 'statefulset', sts: 'statefulset', 'statefulset.apps': 'statefulset',
  daemonset: 'daemonset', daemonsets: 'daemonset', ds: 'daemonset', 'daemonset.apps': 'daemonset',
  cronjob: 'cronjob', cronjobs: 'cronjob', cj: 'cronjob', 'cronjob.batch': 'cronjob',
};

export function kindOf(name: string): KindName | undefined {
  const n = name.toLowerCase();
  // kubectl also takes the plural with its group: deployments.apps, cronjobs.batch.
  return ALIASES[n] ?? ALIASES[n.replace(/\.(apps|batch)$/, '')];
}

export interface Workload {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; generation?: number };
  spec?: Record<string, unknown>;
}

export function podSpec(w: Workload): V1PodSpec {
  const spec = w.spec as Record<string, any> | undefined;
  const template = w.kind === 'CronJob' ? spec?.jobTemplate?.spec?.template : spec?.template;
  if (!template?.spec) throw new UserError('NoPodTemplate', `${w.kind.toLowerCase()}/${w.metadata.name} has no pod template`);
  return template.spec as V1PodSpec;
}

export interface TemplateChange {
  secretName: string;
  /** The service account's pull secrets: a template with none of its own relies on them. */
  serviceAccountSecrets: string[];
  images: ImageOverride[];
  /** Move every image (containers and init containers) to this registry. */
  registry?: string;
  pullPolicy?: string;
}

export interface TemplateResult {
  object: Workload;
  changes: string[];
}

export function changeTemplate(original: Workload, req: TemplateChange): TemplateResult {
  const object = structuredClone(original);
  const spec = podSpec(object);
  const changes: string[] = [];

  const refs = spec.imagePullSecrets ?? [];
  if (!refs.some((r) => r.name === req.secretName)) {
    // A pod gets its service account's pull secrets only when its own list is empty: adding ours
    // to an empty list would silently drop them, so they come along.
    const carried = refs.length === 0 ? req.serviceAccountSecrets.filter((n) => n !== req.secretName) : [];
    spec.imagePullSecrets = [...refs, ...carried.map((name) => ({ name })), { name: req.secretName }];
    changes.push(`added ${req.secretName} to imagePullSecrets`);
    if (carried.length) changes.push(`carried ${carried.join(', ')} over from serviceaccount/${spec.serviceAccountName ?? 'default'} (the pod would otherwise lose them)`);
  }

  const all: Array<[string, V1Container]> = [
    ...(spec.initContainers ?? []).map((c) => ['init container', c] as [string, V1Container]),
    ...spec.containers.map((c) => ['container', c] as [string, V1Container]),
  ];
  for (const o of req.images) {
    if (!all.some(([, c]) => c.name === o.container)) {
      throw new UserError('ContainerNotFound', `${original.kind.toLowerCase()}/${original.metadata.name} has no container "${o.container}"`, `its containers: ${all.map(([, c]) => c.name).join(', ')}`);
    }
  }
  for (const [what, c] of all) {
    const override = req.images.find((o) => o.container === c.name);
    const image = override ? override.image : req.registry && c.image ? moveImage(c.image, req.registry) : c.image;
    if (image && image !== c.image) {
      changes.push(`${what} ${c.name}: ${c.image} -> ${image}`);
      c.image = image;
    }
    if (req.pullPolicy && c.imagePullPolicy !== req.pullPolicy) {
      changes.push(`${what} ${c.name}: imagePullPolicy ${c.imagePullPolicy ?? '(default)'} -> ${req.pullPolicy}`);
      c.imagePullPolicy = req.pullPolicy;
    }
  }
  return { object, changes };
}
