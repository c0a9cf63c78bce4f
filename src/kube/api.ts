// The Kubernetes client as kubectl-ecr uses it: API objects made from a loaded config, and API
// failures turned into something a caller can branch on (status code, reason) or show (one line).
import type { CoreV1Api, KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';
import { UserError } from '../cli/errors.js';
import { debug } from '../cli/log.js';

const log = debug('kube');

export interface Kube {
  kc: KubeConfig;
  core: CoreV1Api;
  server: string;
}

export async function connect(kc: KubeConfig): Promise<Kube> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const { applyKubeProxy } = await import('../net/proxy.js');
  applyKubeProxy(kc);
  return { kc, core: kc.makeApiClient(CoreV1Api), server: kc.getCurrentCluster()?.server ?? '' };
}

/** The generic client, for code that handles several kinds alike (install, patch-deployment). */
export async function objectApi(kc: KubeConfig): Promise<KubernetesObjectApi> {
  const { KubernetesObjectApi } = await import('@kubernetes/client-node');
  return KubernetesObjectApi.makeApiClient(kc);
}

export interface ApiFailure {
  code: number;
  reason: string;
  message: string;
  /** details.kind from a Status: which resource was not found ("namespaces", "secrets"). */
  kind?: string;
  retryAfterSeconds?: number;
}

/** The Status behind a failed call, or undefined when the failure is not an HTTP answer. */
export function apiFailure(err: unknown): ApiFailure | undefined {
  const e = err as { code?: unknown; body?: unknown; headers?: Record<string, string> };
  if (typeof e?.code !== 'number') return undefined;
  let status: { reason?: string; message?: string; details?: { kind?: string; retryAfterSeconds?: number } } = {};
  if (typeof e.body === 'string') {
    try {
      status = JSON.parse(e.body);
    } catch {
      status = { message: e.body };
    }
  } else if (e.body && typeof e.body === 'object') {
    status = e.body as typeof status;
  }
  const retryHeader = Number(e.headers?.['retry-after']);
  return {
    code: e.code,
    reason: status.reason ?? '',
    message: status.message ?? httpText(e.code),
    kind: status.details?.kind,
    retryAfterSeconds: Number.isFinite(retryHeader) && retryHeader > 0 ? retryHeader : status.details?.retryAfterSeconds,
  };
}

export const isNotFound = (err: unknown) => apiFailure(err)?.code === 404;
export const isConflict = (err: unknown) => apiFailure(err)?.code === 409;

function httpText(code: number): string {
  if (code === 401) return 'Unauthorized: the API server did not accept the credentials';
  if (code === 403) return 'Forbidden';
  return `HTTP ${code}`;
}

const MAX_THROTTLE_RETRIES = 5;

/**
 * Run one API call, waiting out 429 (and 503 with Retry-After) answers the way client-go does:
 * sleep what the server asks, at most 30 s a time, a few times.
 */
export async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const f = apiFailure(err);
      const throttled = f && (f.code === 429 || (f.code === 503 && f.retryAfterSeconds));
      if (!throttled || attempt >= MAX_THROTTLE_RETRIES) throw err;
      const wait = Math.min(f.retryAfterSeconds ?? 1, 30);
      log(`${what}: HTTP ${f.code}, retrying in ${wait}s`);
      // Up to half a second of jitter, so writes rejected together do not all come back together.
      await new Promise((r) => setTimeout(r, wait * 1000 + Math.random() * 500));
    }
  }
}

/** One line for a failed call: the server's own message, or what kept us from reaching it. */
export function describeFailure(err: unknown): string {
  const f = apiFailure(err);
  if (f) return f.message;
  if (err instanceof UserError) return err.line();
  const e = err as { code?: string; message?: string; cause?: { code?: string } };
  const code = e?.cause?.code ?? e?.code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ETIMEDOUT' || code === 'EAI_AGAIN') {
    return `cannot reach the API server (${code})`;
  }
  return (e?.message ?? String(err)).split('\n')[0];
}

/** A failure that ends the whole command (every namespace would fail the same way). */
export function clusterError(server: string, err: unknown): UserError | undefined {
  const f = apiFailure(err);
  if (f?.code === 401) {
    return new UserError('Unauthorized', `the API server at ${server} rejected the credentials`, 'check the user in your kubeconfig');
  }
  if (!f && !(err instanceof UserError)) {
    return new UserError('ClusterUnreachable', `cannot reach the API server at ${server}: ${describeFailure(err)}`, 'check --context and that the cluster is up');
  }
  return undefined;
}
