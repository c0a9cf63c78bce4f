// HTTPS_PROXY, HTTP_PROXY and NO_PROXY, which neither Node nor the AWS SDK honour by themselves.
// AWS calls get agents that decide per request (NO_PROXY may exempt one endpoint and not another);
// the Kubernetes client gets the proxy as the cluster's proxy-url, unless the kubeconfig names one.
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';
import { Agent, type AgentConnectOpts } from 'agent-base';
import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';
import { debug } from '../cli/log.js';

const log = debug('proxy');
const PROXY_VARS = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy'];

export function proxyConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return PROXY_VARS.some((v) => env[v]);
}

/** The proxy for a URL by the environment's rules, or undefined to go direct. */
export function proxyFor(url: string): string | undefined {
  return getProxyForUrl(url) || undefined;
}

/** Shown in debug lines: the proxy without any user:password in it. */
function safe(proxy: string): string {
  try {
    const u = new URL(proxy);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '(unparsable proxy URL)';
  }
}

class EnvProxyAgent extends Agent {
  readonly #agents = new Map<string, http.Agent>();

  override connect(req: http.ClientRequest, opts: AgentConnectOpts): http.Agent | net.Socket {
    const scheme = opts.secureEndpoint ? 'https' : 'http';
    const proxy = proxyFor(`${scheme}://${opts.host}:${opts.port}${req.path}`);
    if (!proxy) return opts.secureEndpoint ? tls.connect(opts as tls.ConnectionOptions) : net.connect(opts as net.NetConnectOpts);
    const key = `${scheme} ${proxy}`;
    let agent = this.#agents.get(key);
    if (!agent) {
      log(`${scheme} requests to ${opts.host} go through ${safe(proxy)}`);
      agent = opts.secureEndpoint ? new HttpsProxyAgent(proxy) : new HttpProxyAgent(proxy);
      this.#agents.set(key, agent);
    }
    return agent;
  }
}

export interface AwsRequestHandler {
  httpAgent: http.Agent;
  httpsAgent: https.Agent;
}

let shared: AwsRequestHandler | undefined;

/**
 * The SDK's `requestHandler` option when a proxy is configured, else undefined (the SDK's
 * default). Pass it to every client, including those the credential providers make for STS.
 */
export function awsRequestHandler(env: NodeJS.ProcessEnv = process.env): AwsRequestHandler | undefined {
  if (!proxyConfigured(env)) return undefined;
  shared ??= { httpAgent: new EnvProxyAgent() as unknown as http.Agent, httpsAgent: new EnvProxyAgent() as unknown as https.Agent };
  return shared;
}

/** Give the current cluster the environment's proxy when its kubeconfig entry names none. */
export function applyKubeProxy(kc: KubeConfig): void {
  const cluster = kc.getCurrentCluster();
  if (!cluster || cluster.proxyUrl || !proxyConfigured()) return;
  const proxy = proxyFor(cluster.server);
  if (!proxy) return;
  log(`the API server ${cluster.server} is reached through ${safe(proxy)}`);
  kc.clusters = kc.clusters.map((c) => (c.name === cluster.name ? { ...c, proxyUrl: proxy } : c));
}
