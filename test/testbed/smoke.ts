// Smoke test of the test bed itself, run by hand: npx tsx test/testbed/smoke.ts
// Starts the test bed, exercises kubectl (admin and tester), the controller-manager (default
// ServiceAccount, kube-root-ca.crt, Job -> Pod), moto's ECR and STS through the AWS SDK with only
// awsEnv, the ECR token TTL switch; stops, and checks that nothing is left behind.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ECRClient, GetAuthorizationTokenCommand, CreateRepositoryCommand } from '@aws-sdk/client-ecr';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { startTestbed } from './testbed.js';

let passed = 0;
let failed = 0;
async function check(name: string, fn: () => Promise<void> | void): Promise<void> {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const t0 = Date.now();
const tb = await startTestbed({ log: (s) => console.error(s) });
const startMs = Date.now() - t0;
const kubectl = path.join(tb.binDir, 'kubectl');
const k = (args: string[], kubeconfig = tb.kubeconfig): { status: number | null; out: string; err: string } => {
  const r = spawnSync(kubectl, ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8', env: tb.env() });
  return { status: r.status, out: r.stdout, err: r.stderr };
};
const ns = `smoke-${process.pid}`;

try {
  await check(`started in ${startMs} ms`, () => assert(startMs < 30_000, 'slow start'));

  await check('kubectl get ns (admin kubeconfig, context testbed)', () => {
    const r = k(['get', 'ns', '-o', 'name']);
    assert(r.status === 0, r.err);
    assert(r.out.includes('namespace/default') && r.out.includes('namespace/kube-system'), r.out);
    const ctx = k(['config', 'current-context']);
    assert(ctx.out.trim() === 'testbed', ctx.out);
  });

  await check('admin is system:masters; tester is tester', () => {
    const a = k(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username} {.status.userInfo.groups}']);
    assert(a.status === 0 && a.out.startsWith('admin ') && a.out.includes('system:masters'), a.out + a.err);
    const t = k(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], tb.testerKubeconfig);
    assert(t.status === 0 && t.out === 'tester', t.out + t.err);
    const token = readFileSync(tb.tokenFile, 'utf8');
    const r = spawnSync(kubectl, ['--server', tb.server, '--certificate-authority', tb.caFile, '--token', token, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
    assert(r.status === 0 && r.stdout === 'tester', r.stdout + r.stderr);
  });

  await check('RBAC: tester cannot list secrets, admin can', () => {
    const t = k(['get', 'secrets', '-n', 'default'], tb.testerKubeconfig);
    assert(t.status !== 0 && /forbidden/i.test(t.err), t.err);
    const can = k(['auth', 'can-i', 'list', 'secrets', '-n', 'default', '--as', 'tester']);
    assert(can.out.trim() === 'no', can.out);
  });

  await check('new namespace gets default ServiceAccount and kube-root-ca.crt', async () => {
    const c = k(['create', 'ns', ns]);
    assert(c.status === 0, c.err);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const sa = k(['get', 'sa', 'default', '-n', ns, '-o', 'name']);
      const cm = k(['get', 'configmap', 'kube-root-ca.crt', '-n', ns, '-o', 'name']);
      if (sa.status === 0 && cm.status === 0) break;
      assert(Date.now() < deadline, `not within 20 s: ${sa.err} ${cm.err}`);
      await sleep(200);
    }
  });

  await check('Job controller creates the Job\'s Pod (stays Pending: no kubelet)', async () => {
    const c = k(['create', 'job', 'hello', '-n', ns, '--image=busybox', '--', 'true']);
    assert(c.status === 0, c.err);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const p = k(['get', 'pods', '-n', ns, '-l', 'job-name=hello', '-o', 'jsonpath={.items[*].status.phase}']);
      if (p.out.includes('Pending')) break;
      assert(Date.now() < deadline, `no pod within 20 s: ${p.out} ${p.err}`);
      await sleep(200);
    }
  });

  await check('CronJob accepted by the API', () => {
    const c = k(['create', 'cronjob', 'tick', '-n', ns, '--image=busybox', '--schedule=*/5 * * * *', '--', 'true']);
    assert(c.status === 0, c.err);
  });

  // The SDK reads nothing but awsEnv: clear every AWS_* of this process, then apply awsEnv.
  for (const key of Object.keys(process.env)) if (key.startsWith('AWS_')) delete process.env[key];
  Object.assign(process.env, tb.awsEnv);

  await check('awsEnv config and credentials files are empty files in dir', () => {
    for (const f of [tb.awsEnv.AWS_CONFIG_FILE, tb.awsEnv.AWS_SHARED_CREDENTIALS_FILE]) {
      assert(f && f.startsWith(tb.dir) && readFileSync(f, 'utf8') === '', String(f));
    }
  });

  const ecr = new ECRClient({});
  const token = async (): Promise<{ user: string; password: string; proxyEndpoint: string; expiresAt: Date }> => {
    const r = await ecr.send(new GetAuthorizationTokenCommand({}));
    const d = r.authorizationData?.[0];
    assert(d?.authorizationToken && d.expiresAt && d.proxyEndpoint, JSON.stringify(r));
    const [user, password] = Buffer.from(d.authorizationToken, 'base64').toString().split(':') as [string, string];
    return { user, password, proxyEndpoint: d.proxyEndpoint, expiresAt: d.expiresAt };
  };

  await check('ECR GetAuthorizationToken: AWS / <account>-auth-token, expiry ~12 h ahead', async () => {
    const t = await token();
    const ahead = (t.expiresAt.getTime() - Date.now()) / 3600_000;
    console.log(`     user=${t.user} password=<${t.password.length} chars, ${t.password.replace(/^\d{12}/, '<12 digits>')}> proxyEndpoint=${t.proxyEndpoint} expiresAt=${t.expiresAt.toISOString()} (${ahead.toFixed(3)} h ahead)`);
    assert(t.user === 'AWS' && t.password === '123456789012-auth-token', 'unexpected credentials shape');
    assert(t.proxyEndpoint === 'https://123456789012.dkr.ecr.us-east-1.amazonaws.com', t.proxyEndpoint);
    assert(ahead > 11.99 && ahead <= 12.0001, `expiry ${ahead} h ahead`);
  });

  await check('setEcrTokenTtl(-60) -> expired token; null -> 12 h again', async () => {
    await tb.setEcrTokenTtl(-60);
    const past = (await token()).expiresAt.getTime() - Date.now();
    assert(past < -58_000 && past > -62_000, `expired by ${past} ms`);
    await tb.setEcrTokenTtl(300);
    const soon = (await token()).expiresAt.getTime() - Date.now();
    assert(soon > 298_000 && soon <= 300_000, `${soon} ms`);
    await tb.setEcrTokenTtl(null);
    const back = (await token()).expiresAt.getTime() - Date.now();
    assert(Math.abs(back - 12 * 3600_000) < 2000, `${back} ms`);
  });

  await check('per access key TTL: only that key\'s tokens are expired', async () => {
    await tb.setEcrTokenTtl(-3600, { accessKeyId: 'expired-key' });
    const other = new ECRClient({ credentials: { accessKeyId: 'expired-key', secretAccessKey: 'testing' } });
    const r = await other.send(new GetAuthorizationTokenCommand({}));
    const mine = r.authorizationData?.[0]?.expiresAt?.getTime() ?? 0;
    assert(Math.abs(mine - (Date.now() - 3600_000)) < 2000, `expired-key: ${new Date(mine).toISOString()}`);
    const normal = (await token()).expiresAt.getTime() - Date.now();
    assert(Math.abs(normal - 12 * 3600_000) < 2000, `default key: ${normal} ms`);
    await tb.setEcrTokenTtl(null);
  });

  await check('ECR CreateRepository and STS GetCallerIdentity', async () => {
    const repo = await ecr.send(new CreateRepositoryCommand({ repositoryName: 'smoke/app' }));
    assert(repo.repository?.repositoryUri === '123456789012.dkr.ecr.us-east-1.amazonaws.com/smoke/app', JSON.stringify(repo.repository));
    const id = await new STSClient({}).send(new GetCallerIdentityCommand({}));
    assert(id.Account === '123456789012', JSON.stringify(id));
  });

  await check('nothing listens outside 127.0.0.1', () => {
    const ss = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
    const ours = ss.split('\n').filter((l) => /"(etcd|kube-apiserver|kube-controller|python3?)"/.test(l));
    assert(ours.length >= 4, `expected our listeners in:\n${ss}`);
    const bad = ours.filter((l) => !/\s127\.0\.0\.1:\d+\s/.test(l));
    assert(bad.length === 0, `non-loopback listeners:\n${bad.join('\n')}`);
  });
} finally {
  const dir = tb.dir;
  const motoPort = Number(new URL(tb.motoUrl).port);
  const apiPort = Number(new URL(tb.server).port);
  await tb.stop();
  await check('stop(): no process left, ports closed, dir removed', async () => {
    const left = spawnSync('pgrep', ['-af', dir], { encoding: 'utf8' }).stdout.trim();
    assert(left === '', `still running:\n${left}`);
    for (const port of [motoPort, apiPort]) {
      const open = await new Promise<boolean>((r) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => (s.destroy(), r(true)));
        s.once('error', () => r(false));
      });
      assert(!open, `port ${port} still open`);
    }
    assert(!existsSync(dir), `${dir} still exists`);
  });
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}
