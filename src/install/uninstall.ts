// Removing an install: everything it created, and with purge the pull secrets, detached first
// from exactly the service accounts kubectl-ecr recorded attaching them to.
import type { KubeConfig, V1Secret } from '@kubernetes/client-node';
import { call, clusterError, isConflict, isNotFound } from '../kube/api.js';
import { ANNOTATIONS, FIELD_MANAGER, splitList } from '../names.js';
import { deleteAll, findOwned, type Owned } from './cluster.js';
import { installObject } from './install.js';

export async function uninstall(kc: KubeConfig, install: string, opts: { purge?: boolean; dryRun?: 'All' }): Promise<string[]> {
  const server = kc.getCurrentCluster()?.server ?? '';
  const { applyKubeProxy } = await import('../net/proxy.js');
  applyKubeProxy(kc);
  try {
    const owned = await findOwned(kc, install);
    const objects = owned.filter((o) => installObject(o, install));
    const lines: string[] = [];
    // The CronJob first, so no new run starts while the rest goes.
    objects.sort((a, b) => Number(b.kind === 'CronJob') - Number(a.kind === 'CronJob'));
    await deleteAll(kc, objects, opts.dryRun);
    lines.push(...objects.map(describe));

    if (opts.purge) {
      const pullSecrets = owned.filter((o) => o.kind === 'Secret' && !installObject(o, install));
      for (const s of pullSecrets) {
        const detached = await detach(kc, s, opts.dryRun);
        await deleteAll(kc, [s], opts.dryRun);
        lines.push(`${describe(s)}${detached.length ? `, removed from ${detached.map((n) => `serviceaccount/${n}`).join(', ')}` : ''}`);
      }
    }
    return lines;
  } catch (err) {
    throw clusterError(server, err) ?? err;
  }
}

function describe(o: Owned): string {
  return `${o.kind.toLowerCase()}/${o.metadata.name}${o.metadata.namespace ? ` -n ${o.metadata.namespace}` : ''} deleted`;
}

/** Remove the secret from the service accounts its annotation says kubectl-ecr attached it to. */
async function detach(kc: KubeConfig, s: Owned, dryRun?: 'All'): Promise<string[]> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = s.metadata.namespace!;
  let secret: V1Secret;
  try {
    secret = await core.readNamespacedSecret({ name: s.metadata.name, namespace });
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  const done: string[] = [];
  for (const name of splitList(secret.metadata?.annotations?.[ANNOTATIONS.attachedTo])) {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const sa = await core.readNamespacedServiceAccount({ name, namespace });
        const kept = (sa.imagePullSecrets ?? []).filter((r) => r.name !== s.metadata.name);
        if (kept.length === (sa.imagePullSecrets ?? []).length) break;
        sa.imagePullSecrets = kept;
        await call('replace serviceaccount', () => core.replaceNamespacedServiceAccount({ name, namespace, body: sa, fieldManager: FIELD_MANAGER, dryRun }));
        done.push(name);
        break;
      } catch (err) {
        if (isNotFound(err)) break;
        if (!isConflict(err)) throw err;
      }
    }
  }
  return done;
}
