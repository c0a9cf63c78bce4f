// Smoke test of the test bed itself, run by hand: npx tsx test/testbed/smoke.ts
// Starts the test bed, exercises kubectl (admin and tester), the controller-manager (default
// ServiceAccount, kube-root-ca.crt, Job -> Pod), moto's ECR and STS through the AWS SDK with only
// awsEnv, the ECR token TTL switch, region-specific ECR passwords, IAM users with policies and ECR's
// JSON AccessDeniedException, the registries under ECR host names (401/200 with curl and Node's fetch,
// moto's token accepted, setRegistryPassword); stops, and checks that nothing is left behind.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ECRClient, GetAuthorizationTokenCommand, CreateRepositoryCommand, DescribeRepositoriesCommand } from '@aws-sdk/client-ecr';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { createIamUser, setIamEnforcement, setRegistryPassword, startTestbed, type IamUser } from './testbed.js';

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
  const token = async (client = ecr): Promise<{ user: string; password: string; proxyEndpoint: string; expiresAt: Date }> => {
    const r = await client.send(new GetAuthorizationTokenCommand({}));
    const d = r.authorizationData?.[0];
    assert(d?.authorizationToken && d.expiresAt && d.proxyEndpoint, JSON.stringify(r));
    const [user, password] = Buffer.from(d.authorizationToken, 'base64').toString().split(':') as [string, string];
    return { user, password, proxyEndpoint: d.proxyEndpoint, expiresAt: d.expiresAt };
  };

  await check('ECR GetAuthorizationToken: AWS / <account>-<region>-auth-token, expiry ~12 h ahead', async () => {
    const t = await token();
    const ahead = (t.expiresAt.getTime() - Date.now()) / 3600_000;
    console.log(`     user=${t.user} password=<${t.password.length} chars> proxyEndpoint=${t.proxyEndpoint} expiresAt=${t.expiresAt.toISOString()} (${ahead.toFixed(3)} h ahead)`);
    assert(t.user === 'AWS' && t.password === '123456789012-us-east-1-auth-token', 'unexpected credentials shape');
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

  await check('ECR passwords differ by region (us-east-1, eu-west-1, cn-north-1), stable per region', async () => {
    const seen = new Map<string, string>();
    for (const region of ['us-east-1', 'eu-west-1', 'cn-north-1']) {
      const client = new ECRClient({ region });
      const a = await token(client);
      const b = await token(client);
      assert(a.password === b.password, `${region}: password changed between calls`);
      assert(a.password === `123456789012-${region}-auth-token`, `${region}: unexpected password shape`);
      assert(a.proxyEndpoint === `https://123456789012.dkr.ecr.${region}.amazonaws.com`, a.proxyEndpoint);
      seen.set(region, a.password);
      console.log(`     ${region}: user=${a.user} password contains "${region}": ${a.password.includes(region)} proxyEndpoint=${a.proxyEndpoint}`);
    }
    assert(new Set(seen.values()).size === 3, 'passwords not all different');
  });

  // A user whose policy allows ecr:DescribeRepositories but not ecr:GetAuthorizationToken.
  const noTokenPolicy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecr:DescribeRepositories', Resource: '*' }] };
  const asUser = (u: IamUser, region = 'us-east-1', secret = u.secretAccessKey): ECRClient =>
    new ECRClient({ region, credentials: { accessKeyId: u.accessKeyId, secretAccessKey: secret } });
  const sdkError = async (p: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number }; $response?: unknown }> => {
    try {
      await p;
    } catch (err) {
      return err as Error;
    }
    throw new Error('expected the call to fail');
  };
  let denied: IamUser | undefined;

  await check('createIamUser: policy without ecr:GetAuthorizationToken -> AccessDeniedException (JSON), allowed action works', async () => {
    denied = await createIamUser(tb, { userName: 'smoke-no-token', policy: noTokenPolicy });
    assert(denied.arn === 'arn:aws:iam::123456789012:user/smoke-no-token' && /^AKIA[A-Z0-9]{16}$/.test(denied.accessKeyId), denied.arn);
    const err = await sdkError(asUser(denied).send(new GetAuthorizationTokenCommand({})));
    console.log(`     GetAuthorizationToken as ${denied.arn}: ${err.name} (HTTP ${err.$metadata?.httpStatusCode}): ${err.message}`);
    assert(err.name === 'AccessDeniedException', `${err.name}: ${err.message}`);
    assert(err.$metadata?.httpStatusCode === 403, String(err.$metadata?.httpStatusCode));
    assert(err.message === `User: ${denied.arn} is not authorized to perform: ecr:GetAuthorizationToken on resource: *`, err.message);
    const repos = await asUser(denied).send(new DescribeRepositoriesCommand({}));
    assert(Array.isArray(repos.repositories), JSON.stringify(repos));
    // Everyone else is unaffected: the test bed's own key is still not checked.
    assert((await token()).password === '123456789012-us-east-1-auth-token', 'default key affected');
  });

  await check('createIamUser: a 409 for an existing user; a wrong secret -> InvalidSignatureException; raw error is ECR JSON', async () => {
    assert(denied, 'no user from the previous check');
    const again = await createIamUser(tb, { userName: 'smoke-no-token' }).then(() => 'created', (e: Error) => e.message);
    assert(/409/.test(again), again);
    const err = await sdkError(asUser(denied, 'us-east-1', 'not-the-secret').send(new GetAuthorizationTokenCommand({})));
    assert(err.name === 'InvalidSignatureException', `${err.name}: ${err.message}`);
    // The raw answer: what ECR sends, not moto's XML.
    const res = (await sdkError(asUser(denied).send(new GetAuthorizationTokenCommand({}))) as { $response?: { headers?: Record<string, string> } }).$response;
    const h = res?.headers ?? {};
    console.log(`     raw: content-type=${h['content-type']} x-amzn-errortype=${h['x-amzn-errortype']}`);
    assert(h['content-type'] === 'application/x-amz-json-1.1' && h['x-amzn-errortype'] === 'AccessDeniedException', JSON.stringify(h));
  });

  await check('the denied user: STS GetCallerIdentity allowed (as in AWS); a denied STS call stays STS XML (AccessDenied)', async () => {
    assert(denied, 'no user');
    const sts = new STSClient({ credentials: { accessKeyId: denied.accessKeyId, secretAccessKey: denied.secretAccessKey } });
    const id = await sts.send(new GetCallerIdentityCommand({}));
    assert(id.Arn === denied.arn, JSON.stringify(id));
    const err = await sdkError(sts.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::123456789012:role/x', RoleSessionName: 's' })));
    assert(err.name === 'AccessDenied', `${err.name}: ${err.message}`);
  });

  await check('cn-north-1: user made for aws-cn is denied with an aws-cn ARN', async () => {
    const cn = await createIamUser(tb, { userName: 'smoke-cn', policy: noTokenPolicy, region: 'cn-north-1' });
    assert(cn.arn === 'arn:aws-cn:iam::123456789012:user/smoke-cn', cn.arn);
    const err = await sdkError(asUser(cn, 'cn-north-1').send(new GetAuthorizationTokenCommand({})));
    assert(err.name === 'AccessDeniedException' && err.message.includes(cn.arn), `${err.name}: ${err.message}`);
  });

  await check('setIamEnforcement(true): test key refused (UnrecognizedClientException), allowed user gets its region\'s token; false: back', async () => {
    const allowed = await createIamUser(tb, {
      userName: 'smoke-token',
      policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' }] },
    });
    await setIamEnforcement(tb, true);
    try {
      const err = await sdkError(token());
      assert(err.name === 'UnrecognizedClientException', `${err.name}: ${err.message}`);
      const t = await token(asUser(allowed, 'eu-west-1'));
      assert(t.password === '123456789012-eu-west-1-auth-token', 'unexpected password shape');
      assert(denied, 'no user');
      const d = await sdkError(asUser(denied).send(new GetAuthorizationTokenCommand({})));
      assert(d.name === 'AccessDeniedException', d.name);
    } finally {
      await setIamEnforcement(tb, false);
    }
    assert((await token()).password === '123456789012-us-east-1-auth-token', 'default key still refused');
  });

  await check('ECR CreateRepository and STS GetCallerIdentity', async () => {
    const repo = await ecr.send(new CreateRepositoryCommand({ repositoryName: 'smoke/app' }));
    assert(repo.repository?.repositoryUri === '123456789012.dkr.ecr.us-east-1.amazonaws.com/smoke/app', JSON.stringify(repo.repository));
    const id = await new STSClient({}).send(new GetCallerIdentityCommand({}));
    assert(id.Account === '123456789012', JSON.stringify(id));
  });

  // The registries (absent where docker-registry is missing or 443 is taken: the log said why).
  const reg = tb.registry;
  const status = (host: string, auth?: string): number => {
    const r = spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', tb.caFile, ...(auth ? ['-K', '-'] : []), `https://${host}/v2/`], {
      encoding: 'utf8',
      input: auth ? `user = "${auth}"\n` : '', // through stdin: no password on a command line
    });
    return Number(r.stdout);
  };
  await check(reg ? `registries: ${reg.hosts.length} hosts in /etc/hosts as 127.0.0.1` : 'registries (SKIPPED: not started, see the log)', async () => {
    if (!reg) return;
    const { lookup } = await import('node:dns/promises');
    for (const h of reg.hosts) assert((await lookup(h, { family: 4 })).address === '127.0.0.1', h);
    assert(reg.caFile === tb.caFile && tb.env().NODE_EXTRA_CA_CERTS === tb.caFile, 'caFile');
  });
  if (reg) {
    await check('registries: curl GET /v2/ -> 401 none, 200 AWS:<its region\'s moto password>, 401 wrong or another region\'s', async () => {
      for (const h of reg.hosts) {
        const region = reg.regionOf[h];
        const t = await token(new ECRClient({ region }));
        const other = await token(new ECRClient({ region: region === 'us-east-1' ? 'eu-west-1' : 'us-east-1' }));
        const got = [status(h), status(h, `AWS:${t.password}`), status(h, 'AWS:wrong'), status(h, `AWS:${other.password}`)];
        assert(got.join() === '401,200,401,401', `${h}: ${got.join()}`);
      }
    });
    await check('registries: Node fetch with NODE_EXTRA_CA_CERTS (tb.env()) 401/200; without it, a TLS error', () => {
      const h = reg.hosts[0];
      const script = `const u='https://${h}/v2/';const b='Basic '+Buffer.from(process.env.P).toString('base64');` +
        `Promise.all([fetch(u),fetch(u,{headers:{authorization:b}})]).then(r=>console.log(r.map(x=>x.status).join()),e=>console.log(e.cause?.code??e.message))`;
      const pw = `AWS:123456789012-${reg.regionOf[h]}-auth-token`;
      const withCa = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: tb.env({ P: pw }) });
      assert(withCa.stdout.trim() === '401,200', withCa.stdout + withCa.stderr);
      const { NODE_EXTRA_CA_CERTS: _, ...noCa } = tb.env({ P: pw });
      const without = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: noCa });
      assert(without.stdout.trim() === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', without.stdout + without.stderr);
    });
    await check('registries: setRegistryPassword(other) -> moto password refused; null -> accepted again', async () => {
      const h = reg.hosts[0];
      const right = `AWS:123456789012-${reg.regionOf[h]}-auth-token`;
      await setRegistryPassword(reg, h, 'replaced');
      const during = [status(h, right), status(h, 'AWS:replaced')];
      await setRegistryPassword(reg, h, null);
      const after = status(h, right);
      assert(during.join() === '401,200' && after === 200, `${during.join()} then ${after}`);
    });
  }

  await check('nothing listens outside 127.0.0.1', () => {
    const ss = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
    const ours = ss.split('\n').filter((l) => /"(etcd|kube-apiserver|kube-controller|python3?|docker-registry)"/.test(l));
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
    assert(!readFileSync('/etc/hosts', 'utf8').includes(`# kubectl-ecr testbed registry, pid ${process.pid}`), '/etc/hosts still has our lines');
  });
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}
