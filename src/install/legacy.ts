// Hand-written refreshers already in the cluster: a CronJob running `aws ecr get-login`, or AWS keys
// kept in a ConfigMap. Reported, not touched: the user removes them once the new refresher works.
import type { KubeConfig } from '@kubernetes/client-node';
import { call } from '../kube/api.js';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../names.js';

export interface LegacyFinding {
  kind: 'CronJob' | 'ConfigMap';
  namespace: string;
  name: string;
  why: string;
  remove: string;
}

const ECR_LOGIN = /aws\s+ecr\s+get-login|get-login-password|ecr\s+get-authorization-token/i;
const AWS_KEY = /aws_secret_access_key|aws_access_key_id/i;

export async function findLegacyRefreshers(kc: KubeConfig): Promise<LegacyFinding[]> {
  const { BatchV1Api, CoreV1Api } = await import('@kubernetes/client-node');
  const found: LegacyFinding[] = [];
  const cronJobs = await call('list cronjobs', () => kc.makeApiClient(BatchV1Api).listCronJobForAllNamespaces()).catch(() => ({ items: [] }));
  for (const cj of cronJobs.items) {
    if (cj.metadata?.labels?.[LABEL_MANAGED_BY] === MANAGED_BY) continue;
    const containers = cj.spec?.jobTemplate.spec?.template.spec?.containers ?? [];
    const script = containers.flatMap((c) => [...(c.command ?? []), ...(c.args ?? [])]).join(' ');
    if (ECR_LOGIN.test(script)) {
      const { namespace, name } = cj.metadata as { namespace: string; name: string };
      found.push({ kind: 'CronJob', namespace, name, why: 'runs an `aws ecr get-login` style refresh', remove: `kubectl delete cronjob ${name} -n ${namespace}` });
    }
  }
  const configMaps = await call('list configmaps', () => kc.makeApiClient(CoreV1Api).listConfigMapForAllNamespaces()).catch(() => ({ items: [] }));
  for (const cm of configMaps.items) {
    const keys = Object.keys(cm.data ?? {});
    const holdsKeys = keys.some((k) => AWS_KEY.test(k)) || Object.values(cm.data ?? {}).some((v) => AWS_KEY.test(v));
    if (holdsKeys && cm.metadata?.labels?.[LABEL_MANAGED_BY] !== MANAGED_BY) {
      const { namespace, name } = cm.metadata as { namespace: string; name: string };
      found.push({ kind: 'ConfigMap', namespace, name, why: 'holds AWS keys in plain text', remove: `kubectl delete configmap ${name} -n ${namespace} (and rotate those keys)` });
    }
  }
  return found;
}
