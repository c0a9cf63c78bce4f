// What integration tests share: the running test bed (started by test/run.ts), an admin client,
// the CLI run as a user runs it, and a guard that no secret ever shows in what the CLI prints.
import assert from 'node:assert/strict';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig, type V1Secret } from '@kubernetes/client-node';
import type { Testbed } from '../testbed/testbed.js';

/** The test bed as test/run.ts hands it over: its data, without the functions. */
export type TestbedState = Omit<Testbed, 'stop' | 'env' | 'setEcrTokenTtl'>;

const statePath = process.env.KUBECTL_ECR_TESTBED;
if (!statePath) {
  throw new Error('integration tests need the test bed: run them with `npm test` (test/run.ts starts it)');
}
export const tb: TestbedState = JSON.parse(readFileSync(statePath, 'utf8'));

export function adminConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(tb.kubeconfig);
  return kc;
}

export const core = adminConfig().makeApiClient(CoreV1Api);

let counter = 0;
/** A fresh namespace name for one test, so tests never see each other's objects. */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`.slice(0, 63);
}

export async function createNamespace(name: string, labels?: Record<string, string>): Promise<string> {
  await core.createNamespace({ body: { metadata: { name, labels } } });
  await waitFor(`serviceaccount default in ${name}`, async () => {
    try {
      await core.readNamespacedServiceAccount({ name: 'default', namespace: name });
      return true;
    } catch {
      return false;
    }
  });
  return name;
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`timed out waiting for ${what}`);
}

export async function readSecret(namespace: string, name = 'ecr-registry'): Promise<V1Secret | undefined> {
  try {
    return await core.readNamespacedSecret({ name, namespace });
  } catch {
    return undefined;
  }
}

/** The names in a service account's imagePullSecrets, in order. */
export function pullSecrets(sa: { imagePullSecrets?: Array<{ name?: string }> }): string[] {
  return (sa.imagePullSecrets ?? []).map((r) => r.name ?? '');
}

export function dockerConfig(secret: V1Secret | undefined): { auths: Record<string, { username?: string; password?: string; auth?: string }> } {
  assert.ok(secret?.data?.['.dockerconfigjson'], 'secret has .dockerconfigjson');
  return JSON.parse(Buffer.from(secret.data['.dockerconfigjson'], 'base64').toString('utf8'));
}

// Everything a leak would look like: the AWS secret key, every password kubectl-ecr has written,
// and their base64 forms. Every CLI run in every test is checked against them.
const secrets = new Set<string>([tb.awsEnv.AWS_SECRET_ACCESS_KEY].filter(Boolean));

export function rememberSecret(value: string): void {
  secrets.add(value);
}

function leakForms(): string[] {
  return [...secrets].flatMap((s) => [s, Buffer.from(s).toString('base64'), Buffer.from(`AWS:${s}`).toString('base64')]);
}

export function assertNoLeak(text: string, where: string): void {
  for (const s of leakForms()) assert.ok(!text.includes(s), `${where} contains a secret (${s.length} chars)`);
}

/** After a login, learn the passwords it wrote so later output is checked for them too. */
export function rememberPasswords(secret: V1Secret | undefined): void {
  for (const entry of Object.values(dockerConfig(secret).auths)) {
    if (entry.password) rememberSecret(entry.password);
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const bin = fileURLToPath(new URL('../../bin/kubectl-ecr', import.meta.url));

/** Run `kubectl-ecr ARGS` as a process, with the test bed's kubeconfig and AWS settings. */
export async function runCli(args: string[], opts: { env?: Record<string, string | undefined>; stdin?: string } = {}): Promise<CliResult> {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: tb.dir,
    KUBECONFIG: tb.kubeconfig,
    NO_COLOR: '1',
    ...tb.awsEnv,
    ...opts.env,
  };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const child = spawn(process.execPath, [bin, ...args], { env: env as NodeJS.ProcessEnv });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end(opts.stdin ?? '');
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  assertNoLeak(stdout, `stdout of ${args.join(' ')}`);
  assertNoLeak(stderr, `stderr of ${args.join(' ')}`);
  return { code, stdout, stderr };
}

/** Lines on stderr, without blank ones. */
export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim());
}

/** What ECR (moto) hands out in a region, asked directly: the expected content of a secret. */
export async function ecrToken(region: string): Promise<{ username: string; password: string; expiresAt: Date }> {
  const { ECRClient, GetAuthorizationTokenCommand } = await import('@aws-sdk/client-ecr');
  const client = new ECRClient({
    region,
    endpoint: tb.awsEnv.AWS_ENDPOINT_URL,
    credentials: { accessKeyId: tb.awsEnv.AWS_ACCESS_KEY_ID, secretAccessKey: tb.awsEnv.AWS_SECRET_ACCESS_KEY },
  });
  const out = await client.send(new GetAuthorizationTokenCommand({}));
  client.destroy();
  const data = out.authorizationData![0];
  const [username, ...rest] = Buffer.from(data.authorizationToken!, 'base64').toString().split(':');
  const password = rest.join(':');
  rememberSecret(password);
  return { username, password, expiresAt: data.expiresAt! };
}

// Learn the tokens of the regions tests use before any test runs, so even a first run's output is
// checked for them.
await Promise.all(['us-east-1', 'eu-west-1', 'cn-north-1'].map((r) => ecrToken(r).catch(() => undefined)));

// ---------------------------------------------------------------- the API server's own metrics

/** Kubeconfig of the non-admin user "tester" (bearer token), from the test bed's state. */
export const testerKubeconfig: string = (tb as TestbedState & { testerKubeconfig: string }).testerKubeconfig;

export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** GET /metrics from the API server as admin, parsed (Prometheus text format; comments skipped). */
export async function apiMetrics(): Promise<MetricSample[]> {
  const https = await import('node:https');
  const kc = adminConfig();
  const opts: import('node:https').RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const url = new URL('/metrics', kc.getCurrentCluster()!.server);
  const text = await new Promise<string>((resolve, reject) => {
    https
      .get(url, opts, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET /metrics: HTTP ${res.statusCode}`))));
      })
      .on('error', reject);
  });
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, '$1');
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sum of a metric's samples whose labels include `match` (a missing series counts 0). */
export function metricSum(samples: MetricSample[], name: string, match: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}
