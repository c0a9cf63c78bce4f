// The test plays the kubelet (no kubelet runs in the test bed): it runs a Job pod's command as that
// pod would, with the pod's service account token, its mounted settings and its environment, and
// writes the outcome through the pod's status subresource so that the real Job controller acts.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { core, runCli, tb, type CliResult } from './testbed.js';

const SA_TOKEN_AUDIENCE_STS = 'sts.amazonaws.com';

/** A kubeconfig that is exactly a service account: a token from the TokenRequest API. */
export async function serviceAccountKubeconfig(namespace: string, name: string): Promise<string> {
  const tr = await core.createNamespacedServiceAccountToken({ name, namespace, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
  const dir = mkdtempSync(join(tb.dir, 'sa-'));
  const file = join(dir, 'kubeconfig');
  const { readFileSync } = await import('node:fs');
  const ca = Buffer.from(readFileSync(tb.caFile)).toString('base64');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'testbed', cluster: { server: tb.server, 'certificate-authority-data': ca } }],
      users: [{ name: name, user: { token: tr.status!.token } }],
      contexts: [{ name: 'sa', context: { cluster: 'testbed', user: name, namespace } }],
      'current-context': 'sa',
    }),
  );
  return file;
}

/** Run the pod's container as the kubelet would; returns the command's result. */
export async function runPod(pod: V1Pod, env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const namespace = pod.metadata!.namespace!;
  const spec = pod.spec!;
  const container = spec.containers[0];
  const dir = mkdtempSync(join(tb.dir, 'pod-'));

  // Volumes: ConfigMaps written where the container would see them.
  const args = [...(container.args ?? [])];
  for (const mount of container.volumeMounts ?? []) {
    const volume = spec.volumes?.find((v) => v.name === mount.name);
    if (!volume?.configMap) continue;
    const cm = await core.readNamespacedConfigMap({ name: volume.configMap.name!, namespace });
    const local = join(dir, mount.name);
    (await import('node:fs')).mkdirSync(local, { recursive: true });
    for (const [k, v] of Object.entries(cm.data ?? {})) writeFileSync(join(local, k), v);
    for (let i = 0; i < args.length; i++) if (args[i].startsWith(mount.mountPath)) args[i] = local + args[i].slice(mount.mountPath.length);
  }

  // Environment: literal values and secretKeyRefs, resolved as the kubelet does.
  const podEnv: Record<string, string | undefined> = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) podEnv[e.name] = e.value;
    const ref = e.valueFrom?.secretKeyRef;
    if (ref) {
      const secret = await core.readNamespacedSecret({ name: ref.name!, namespace });
      podEnv[e.name] = Buffer.from(secret.data![ref.key], 'base64').toString();
    }
  }

  // The service account: a token kubeconfig; and EKS's IRSA webhook, emulated when annotated.
  const sa = await core.readNamespacedServiceAccount({ name: spec.serviceAccountName!, namespace });
  const kubeconfig = await serviceAccountKubeconfig(namespace, spec.serviceAccountName!);
  const irsaRole = sa.metadata?.annotations?.['eks.amazonaws.com/role-arn'];
  if (irsaRole) {
    const tr = await core.createNamespacedServiceAccountToken({ name: spec.serviceAccountName!, namespace, body: { spec: { audiences: [SA_TOKEN_AUDIENCE_STS], expirationSeconds: 3600 } } });
    const tokenFile = join(dir, 'eks-token');
    writeFileSync(tokenFile, tr.status!.token);
    Object.assign(podEnv, { AWS_ROLE_ARN: irsaRole, AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined });
  }
  return runCli(args, { env: { KUBECONFIG: kubeconfig, ...podEnv, ...env } });
}

/** Write what the kubelet would after the container exits. */
export async function finishPod(pod: V1Pod, exitCode: number): Promise<void> {
  const now = new Date();
  const fresh = await core.readNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace! });
  fresh.status = {
    ...fresh.status,
    phase: exitCode === 0 ? 'Succeeded' : 'Failed',
    startTime: fresh.status?.startTime ?? now,
    containerStatuses: [
      {
        name: pod.spec!.containers[0].name,
        image: pod.spec!.containers[0].image!,
        imageID: '',
        ready: false,
        restartCount: 0,
        state: { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt: now, finishedAt: now } },
      },
    ],
  };
  await core.replaceNamespacedPodStatus({ name: fresh.metadata!.name!, namespace: fresh.metadata!.namespace!, body: fresh });
}

/**
 * Until `done` resolves: every new pod of jobs matching the selector is run and finished.
 * Returns the results of the runs, in order.
 */
export function playKubelet(namespace: string, labelSelector: string, env: Record<string, string | undefined> = {}) {
  const results: CliResult[] = [];
  const handled = new Set<string>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const pods = await core.listNamespacedPod({ namespace, labelSelector });
      for (const pod of pods.items) {
        const name = pod.metadata!.name!;
        if (handled.has(name) || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
        handled.add(name);
        const res = await runPod(pod, env);
        results.push(res);
        await finishPod(pod, res.code);
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  return {
    results,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}
