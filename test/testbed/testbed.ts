// The test bed: a real etcd + kube-apiserver (+ kube-controller-manager) and a moto server (AWS ECR/STS/IAM
// protocol), all on 127.0.0.1 with ports picked at run time, for integration tests and the sandbox; and,
// where Debian's docker-registry is installed, real container registries that check credentials, served
// under ECR host names on 127.0.0.1:443 (see TestbedRegistry).
//
//   const tb = await startTestbed();            // ~seconds with cached binaries
//   spawnSync('kubectl', [...], { env: tb.env() });
//   await tb.stop();
//
// Binaries come from build-k8s.sh and the moto venv from setup-moto.sh (both instant once cached; on a
// fresh machine the first call builds, which takes minutes: CI runs both scripts before the tests).
// Every process logs to a file in tb.dir (etcd.log, kube-apiserver.log, kube-controller-manager.log,
// moto.log, registry-<region>.log, registry-front.log); a failed start throws with the tail of the log
// concerned. Set KUBECTL_ECR_TESTBED_KEEP=1 to keep tb.dir after stop() for a look at the logs.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants as fsConstants, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import dns from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';

export interface Testbed {
  /** Temp dir with certs, kubeconfigs, logs; removed by stop(). */
  dir: string;
  /** Admin kubeconfig (CA and client cert embedded): context "testbed", cluster "testbed", user "admin" (system:masters). */
  kubeconfig: string;
  /** Kubeconfig for the non-admin user "tester" (bearer token embedded): context "testbed", cluster "testbed", user "tester". No RBAC grants beyond the defaults for system:authenticated. */
  testerKubeconfig: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** Where kube-apiserver, kube-controller-manager, kubectl and etcd live. */
  binDir: string;
  /** AWS_ENDPOINT_URL (moto), AWS_REGION/AWS_DEFAULT_REGION=us-east-1, test keys, AWS_EC2_METADATA_DISABLED=true, AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE (empty files in dir). */
  awsEnv: Record<string, string>;
  /** http://127.0.0.1:MOTOPORT */
  motoUrl: string;
  /** File holding the bearer token (no newline) of the non-admin user "tester" (uid "tester", groups: system:authenticated only). */
  tokenFile: string;
  /** CA certificate (PEM file) that signed the API server's serving cert and the client certs (and the registries' cert). */
  caFile: string;
  /**
   * The registries under ECR host names (see TestbedRegistry); absent when they were not started (option
   * `registry`: docker-registry or htpasswd not installed, 127.0.0.1:443 taken, not root; the log says why).
   */
  registry?: TestbedRegistry;
  /**
   * process.env without any AWS_* variable and without KUBECONFIG, plus KUBECONFIG=admin kubeconfig, awsEnv,
   * binDir first on PATH, NODE_EXTRA_CA_CERTS=caFile when the registries run, and `extra`. Use it for child
   * processes: a user's AWS_PROFILE would otherwise make the SDK skip the test keys.
   */
  env(extra?: Record<string, string>): Record<string, string>;
  /**
   * Lifetime of the tokens that moto's ecr:GetAuthorizationToken hands out from now on, in seconds from
   * the moment of each call (negative: already expired). With accessKeyId, only for callers signing with
   * that access key id (so parallel tests that each use their own AWS_ACCESS_KEY_ID don't interfere).
   * null restores the default, 12 hours, for everyone. Same as POST/DELETE {motoUrl}/testbed/token-ttl
   * (see moto_server.py), which is what a test process without this object uses.
   */
  setEcrTokenTtl(seconds: number | null, opts?: { accessKeyId?: string }): Promise<void>;
  /**
   * Stops controller-manager, apiserver, etcd (in that order) and, meanwhile, moto and the registries (their
   * /etc/hosts entries first); SIGTERM, SIGKILL after 3 s; removes dir. Idempotent.
   */
  stop(): Promise<void>;
}

export interface TestbedOptions {
  /** Run kube-controller-manager (default true): default ServiceAccounts, kube-root-ca.crt, Job/CronJob controllers, GC. */
  controllerManager?: boolean;
  /** Progress lines (phases and timings). Nothing secret is ever passed here. */
  log?: (s: string) => void;
  /**
   * Extra environment for the moto server, e.g. { INITIAL_NO_AUTH_ACTION_COUNT: '0' } to check IAM
   * policies on every request (then awsEnv's test keys are refused too: use createIamUser's keys),
   * { MOTO_ACCOUNT_ID: '111122223333' }, { TESTBED_ECR_TOKEN_TTL_SECONDS: '-60' }. A test that wants one
   * restricted user needs none of it: keys from createIamUser are checked against their policy anyway.
   */
  motoEnv?: Record<string, string>;
  /**
   * The registries under ECR host names (TestbedRegistry). 'auto' (the default): start them where
   * possible, else go on without (Testbed.registry absent) and log why in one line. true: a test bed
   * without them is an error. false: don't. The default can be set with the environment variable
   * KUBECTL_ECR_TESTBED_REGISTRY=required|auto|off (.ci/run says required).
   */
  registry?: boolean | 'auto';
  /** The regions that get a registry host (default us-east-1, eu-west-1, cn-north-1). */
  registryRegions?: string[];
}

/**
 * Real container registries (Debian's docker-registry, i.e. the CNCF distribution registry 2.8, with
 * htpasswd basic auth) reachable as https://<ECR host>/ from this machine, for checking that a pull
 * secret really authenticates: `GET https://<host>/v2/` answers 401 without credentials or with a wrong
 * password, 200 with user "AWS" and the password moto's ecr:GetAuthorizationToken hands out for that
 * host's region ("<registryId>-<region>-auth-token", see moto_server.py), so a pull secret written by
 * `kubectl ecr login` against the test bed works for real.
 *
 * How: each host name is in /etc/hosts as 127.0.0.1 (lines marked "# kubectl-ecr testbed registry, pid
 * N", added at start, removed by stop() or at exit; stale ones of dead processes are dropped at the next
 * start), one registry per host on 127.0.0.1:<free port> (plain HTTP: backends), and a TLS front on
 * 127.0.0.1:443 (registry-front.mjs) with one certificate for all the names, signed by the test bed's CA,
 * that passes each connection to the registry of the name asked for (SNI). A client must trust caFile:
 * NODE_EXTRA_CA_CERTS=<caFile> for Node (Testbed.env() sets it), --cacert for curl. Only one test bed per
 * machine can have them (port 443); another one started meanwhile goes on without (option 'auto').
 * All data, no functions: it is in the state handed to test processes as is.
 */
export interface TestbedRegistry {
  /** The ECR host names served, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com (registry id = moto's account). */
  hosts: string[];
  /** host -> its region, whose moto password that host accepts (until setRegistryPassword says otherwise). */
  regionOf: Record<string, string>;
  /** The user every registry accepts: "AWS", as ECR. */
  username: string;
  /** PEM file of the CA that signed the registries' certificate (the test bed's CA, = Testbed.caFile). */
  caFile: string;
  /** host -> http://127.0.0.1:PORT, that host's registry itself (no TLS, same credentials). */
  backends: Record<string, string>;
  /** host -> the htpasswd file its registry reads (re-read when it changes; see setRegistryPassword). */
  htpasswdFiles: Record<string, string>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const STOP_GRACE_MS = 3000;
const START_TIMEOUT_MS = Number(process.env.KUBECTL_ECR_TESTBED_TIMEOUT_MS ?? 90_000);

// ---------------------------------------------------------------- process bookkeeping

interface Proc {
  name: string;
  child: ChildProcess;
  logFile: string;
  exited: Promise<void>;
  exitInfo?: string;
}

const live = new Set<Proc>();
const liveDirs = new Set<string>();
const liveBeds = new Set<{ stop(): Promise<void> }>();
/** Synchronous undo steps for Node's exit (the /etc/hosts entries). */
const exitCleanups = new Set<() => void>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // Last resort, synchronous: whatever is still running when Node exits gets SIGKILL.
  process.on('exit', () => {
    for (const c of exitCleanups) c();
    for (const p of live) killGroup(p, 'SIGKILL');
    if (!process.env.KUBECTL_ECR_TESTBED_KEEP) for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      process.removeListener(sig, onSignal);
      void Promise.allSettled([...liveBeds].map((b) => b.stop())).then(() => {
        // Someone else (the sandbox CLI, a test runner) handles this signal: let them decide. Otherwise do
        // what the signal would have done without us.
        if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
      });
    };
    process.on(sig, onSignal);
  }
}

function killGroup(p: Proc, sig: NodeJS.Signals): void {
  if (p.child.pid === undefined || p.exitInfo !== undefined) return;
  try {
    process.kill(-p.child.pid, sig); // detached: the child leads its own process group
  } catch {
    try {
      p.child.kill(sig);
    } catch {
      /* already gone */
    }
  }
}

/** SIGTERM, then SIGKILL after STOP_GRACE_MS; resolves once the process has exited (and been reaped). */
async function stopProc(p: Proc | undefined): Promise<void> {
  if (!p) return;
  // The children are unref'd: without a ref'd handle of our own, Node could exit while we wait.
  const keepAlive = setInterval(() => {}, 1000);
  try {
    killGroup(p, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      p.exited.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), STOP_GRACE_MS))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      killGroup(p, 'SIGKILL');
      await p.exited;
    }
  } finally {
    clearInterval(keepAlive);
    live.delete(p);
  }
}

function startProc(name: string, cmd: string, args: string[], dir: string, env?: NodeJS.ProcessEnv): Proc {
  const logFile = path.join(dir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, { stdio: ['ignore', fd, fd], detached: true, env: env ?? process.env, cwd: dir });
  } finally {
    closeSync(fd);
  }
  child.unref(); // a forgotten stop() must not keep a test process alive; the exit handler kills it
  const p: Proc = { name, child, logFile, exited: Promise.resolve() };
  p.exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      p.exitInfo = signal ? `killed by ${signal}` : `exited with code ${code}`;
      live.delete(p);
      resolve();
    });
    child.once('error', (err) => {
      p.exitInfo = `failed to start: ${err.message}`;
      live.delete(p);
      resolve();
    });
  });
  live.add(p);
  return p;
}

async function logTail(file: string, lines = 40): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function startError(p: Proc, what: string): Promise<Error> {
  const state = p.exitInfo ? ` (${p.name} ${p.exitInfo})` : '';
  return new Error(`testbed: ${what}${state}. Last lines of ${p.logFile}:\n${await logTail(p.logFile)}`);
}

/** Polls check() until it returns true; fails early if the process exits. */
async function waitFor(p: Proc, what: string, check: () => Promise<boolean>, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (p.exitInfo !== undefined) throw await startError(p, `${p.name} stopped before ${what}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw await startError(p, `timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---------------------------------------------------------------- small helpers

function run(cmd: string, args: string[], opts: { cwd?: string; stderrToLog?: (s: string) => void } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { cwd: opts.cwd, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`testbed: ${cmd} ${args.join(' ')} failed: ${err.message}\n${String(stderr).trimEnd()}`));
      else resolve(String(stdout));
    });
    if (opts.stderrToLog) {
      const sink = opts.stderrToLog;
      child.stderr?.on('data', (d: Buffer) => {
        for (const line of d.toString().split('\n')) if (line.trim()) sink(line);
      });
    }
  });
}

async function freePorts(n: number): Promise<number[]> {
  // Hold all listeners open until every port is known, so the n ports differ.
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function httpGet(url: string, tls?: https.RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, { ...tls, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function httpSend(url: string, method: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, timeout: 5000, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const b64 = async (file: string): Promise<string> => (await readFile(file)).toString('base64');

// ---------------------------------------------------------------- certificates

async function makeCerts(dir: string): Promise<void> {
  const o = (args: string[]): Promise<string> => run('openssl', args, { cwd: dir });
  // EC P-256 for the CA and TLS certs (an RSA-2048 key costs ~0.3 s of CPU; these take ~5 ms); the
  // service-account token key is RSA (RS256 tokens, as most clusters issue).
  const ecKey = (name: string): Promise<string> =>
    o(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
  const saKey = o(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key']);
  saKey.catch(() => {}); // awaited below; this only keeps an early failure elsewhere from leaving it unhandled
  await Promise.all([ecKey('ca'), ecKey('apiserver'), ecKey('admin'), ecKey('kcm')]);
  await o([
    'req', '-x509', '-new', '-key', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', '/CN=kubectl-ecr-testbed-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
  ]);
  const sign = async (name: string, subj: string, ext: string[]): Promise<void> => {
    await o(['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', subj]);
    await writeFile(path.join(dir, `${name}.ext`), ext.join('\n') + '\n');
    await o([
      'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
      '-out', `${name}.crt`, '-days', '30', '-sha256', '-extfile', `${name}.ext`,
    ]);
  };
  const client = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth'];
  // Serially: -CAcreateserial writes ca.srl, which parallel signings would race on.
  await sign('apiserver', '/CN=kube-apiserver', [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.0.0.1',
  ]);
  await sign('admin', '/O=system:masters/CN=admin', client);
  await sign('kcm', '/CN=system:kube-controller-manager', client);
  await saKey;
  await o(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
}

interface KubeUser {
  name: string;
  user: Record<string, string>;
}

async function writeKubeconfig(file: string, server: string, caFile: string, u: KubeUser): Promise<void> {
  const cfg = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'testbed', cluster: { server, 'certificate-authority-data': await b64(caFile) } }],
    users: [{ name: u.name, user: u.user }],
    contexts: [{ name: 'testbed', context: { cluster: 'testbed', user: u.name, namespace: 'default' } }],
    'current-context': 'testbed',
    preferences: {},
  };
  await writeFile(file, toYaml(cfg), { mode: 0o600 });
}

// ---------------------------------------------------------------- IAM users in moto

export interface IamUser {
  userName: string;
  /** arn:aws:iam::<account>:user/<userName> (arn:aws-cn:... for a user made for an aws-cn region). */
  arn: string;
  accessKeyId: string;
  /** A secret: never print it. */
  secretAccessKey: string;
}

/**
 * Creates an IAM user in moto with `policy` (an IAM policy document) as its only, inline, policy (none:
 * the user may do nothing) and an access key, through the test bed's own POST {motoUrl}/testbed/iam-user
 * (moto_server.py): no IAM API call, no package beyond Node's. Requests signed with the returned key are
 * checked against the policy whatever else the server does (every other key stays unchecked unless
 * IAM enforcement is on for everyone): a denied ECR call answers AccessDeniedException, as real ECR
 * does. Works with just the motoUrl, so a test process without the Testbed object can use it. Users
 * live per partition: pass `region` (default us-east-1) in the partition the key will sign for, e.g.
 * 'cn-north-1' for the China regions. Fails if the user exists.
 *
 *   const u = await createIamUser(tb, { userName: uniqueName('no-ecr'), policy: {
 *     Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecr:DescribeRepositories', Resource: '*' }] } });
 *   runCli([...], { env: { AWS_ACCESS_KEY_ID: u.accessKeyId, AWS_SECRET_ACCESS_KEY: u.secretAccessKey } });
 */
export async function createIamUser(
  tb: { motoUrl: string },
  user: { userName: string; policy?: object | string; region?: string },
): Promise<IamUser> {
  const r = await httpSend(`${tb.motoUrl}/testbed/iam-user`, 'POST', JSON.stringify(user));
  if (r.status !== 200) throw new Error(`testbed: creating IAM user ${user.userName} failed: ${r.status} ${r.body}`);
  return JSON.parse(r.body) as IamUser;
}

/**
 * Turns moto's IAM checks on or off for every request from now on (moto's POST /moto-api/reset-auth).
 * On: only keys of IAM users moto knows are accepted (awsEnv's "testing" key is refused:
 * UnrecognizedClientException from ECR), which disturbs every other test using the same server; a
 * single restricted user (createIamUser) does not need it. Off: no request is checked, except those
 * signed with createIamUser keys (whatever motoEnv's INITIAL_NO_AUTH_ACTION_COUNT said).
 */
export async function setIamEnforcement(tb: { motoUrl: string }, on: boolean): Promise<void> {
  const r = await httpSend(`${tb.motoUrl}/moto-api/reset-auth`, 'POST', on ? '0' : 'inf');
  if (r.status !== 200) throw new Error(`testbed: setting IAM enforcement failed: ${r.status} ${r.body}`);
}

// ---------------------------------------------------------------- registries under ECR host names

const HOSTS_FILE = '/etc/hosts';
const HOSTS_MARK = '# kubectl-ecr testbed registry, pid ';
const REGISTRY_USER = 'AWS';
const DEFAULT_REGISTRY_REGIONS = ['us-east-1', 'eu-west-1', 'cn-north-1'];

/** The ECR password moto_server.py hands out for a registry id (account) and region. */
const motoEcrPassword = (registryId: string, region: string): string => `${registryId}-${region}-auth-token`;

const ecrHost = (registryId: string, region: string): string =>
  `${registryId}.dkr.ecr.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`;

/** Why the registries can't run on this machine (option 'auto': go on without them). */
class RegistryUnavailable extends Error {}

function findOnPath(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const d of dirs.filter(Boolean)) {
    try {
      accessSync(path.join(d, name), fsConstants.X_OK);
      return path.join(d, name);
    } catch {
      /* not here */
    }
  }
  return undefined;
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Rewrites /etc/hosts without the test bed's lines of `pid` or of processes that are gone, plus `add`
 * (each marked with pid). Synchronous: the exit handler uses it too. Through a temp file renamed over the
 * old one, so that no lookup elsewhere sees a half-written file; in place where the file can't be
 * replaced (a bind mount in a container).
 */
function rewriteHosts(pid: number, add: string[]): void {
  const old = readFileSync(HOSTS_FILE, 'utf8');
  const kept = old.split('\n').filter((line) => {
    const i = line.indexOf(HOSTS_MARK);
    if (i < 0) return true;
    const owner = Number.parseInt(line.slice(i + HOSTS_MARK.length), 10);
    return owner !== pid && pidAlive(owner);
  });
  let text = kept.join('\n');
  if (add.length > 0) {
    if (text !== '' && !text.endsWith('\n')) text += '\n';
    text += add.map((l) => `${l}\t${HOSTS_MARK}${pid}\n`).join('');
  }
  if (text === old) return;
  const tmp = `${HOSTS_FILE}.kubectl-ecr-testbed-${pid}`;
  try {
    writeFileSync(tmp, text, { mode: statSync(HOSTS_FILE).mode & 0o777 });
    renameSync(tmp, HOSTS_FILE);
  } catch {
    rmSync(tmp, { force: true });
    writeFileSync(HOSTS_FILE, text);
  }
}

/** One htpasswd line (bcrypt) for user and password; the password goes through stdin, never argv. */
function htpasswdLine(user: string, password: string): Promise<string> {
  const bin = findOnPath('htpasswd');
  if (!bin) return Promise.reject(new RegistryUnavailable('htpasswd is not installed (Debian: apt-get install apache2-utils)'));
  return new Promise((resolve, reject) => {
    const child = execFile(bin, ['-niB', user], (err, stdout, stderr) => {
      if (err) reject(new Error(`testbed: htpasswd -niB ${user} failed: ${String(stderr).trim() || err.message}`));
      else resolve(`${String(stdout).trim()}\n`);
    });
    child.stdin?.end(password);
  });
}

/** Writes a file whole for its readers: temp file, then rename. */
async function replaceFile(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, file);
}

/**
 * Makes the registry of `host` accept `password` (user "AWS") instead of its region's moto password, or
 * that one again with null; e.g. any other string to play ECR refusing a token that has expired or
 * was replaced. Effective from the registry's next request (it re-reads its htpasswd file when that
 * changes). Needs only the data (the state a test process gets has it as tb.registry).
 */
export async function setRegistryPassword(reg: TestbedRegistry, host: string, password: string | null): Promise<void> {
  const file = reg.htpasswdFiles[host];
  const region = reg.regionOf[host];
  if (!file || !region) throw new Error(`testbed: no registry for ${host}; there are: ${reg.hosts.join(', ')}`);
  await replaceFile(file, await htpasswdLine(reg.username, password ?? motoEcrPassword(host.split('.')[0] ?? '', region)));
}

interface RegistryContext {
  dir: string;
  log: (s: string) => void;
  since: () => string;
  /** Resolves once ca.crt, ca.key and ca.srl exist (makeCerts is done). */
  certs: Promise<unknown>;
  accountId: string;
  regions: string[];
  /** Every process started goes here at once, for stop(). */
  procs: Proc[];
  /** Called right before /etc/hosts gets our lines. */
  addingHosts: () => void;
}

async function startRegistries(c: RegistryContext): Promise<TestbedRegistry> {
  const registryBin = findOnPath('docker-registry');
  if (!registryBin) throw new RegistryUnavailable('docker-registry is not installed (Debian: apt-get install docker-registry)');
  if (!findOnPath('htpasswd')) throw new RegistryUnavailable('htpasswd is not installed (Debian: apt-get install apache2-utils)');
  try {
    accessSync(HOSTS_FILE, fsConstants.W_OK);
  } catch {
    throw new RegistryUnavailable(`${HOSTS_FILE} is not writable (not root?)`);
  }
  const f = (name: string): string => path.join(c.dir, name);
  const hosts = c.regions.map((r) => ecrHost(c.accountId, r));
  // Only the registries' own PATH: no REGISTRY_* variable of the caller's overrides their config.
  const regEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

  // One registry per host, each on a port of its own choosing (it logs which).
  const htpasswdFiles: Record<string, string> = {};
  const regionOf: Record<string, string> = {};
  const backendList = Promise.all(
    hosts.map(async (host, i) => {
      const region = c.regions[i] as string;
      regionOf[host] = region;
      const rdir = f(`registry-${region}`);
      await mkdir(path.join(rdir, 'data'), { recursive: true });
      const htfile = path.join(rdir, 'htpasswd');
      htpasswdFiles[host] = htfile;
      await writeFile(htfile, await htpasswdLine(REGISTRY_USER, motoEcrPassword(c.accountId, region)), { mode: 0o600 });
      const config = path.join(rdir, 'config.yml');
      await writeFile(
        config,
        toYaml({
          version: '0.1',
          log: { level: 'info', formatter: 'text' },
          storage: { filesystem: { rootdirectory: path.join(rdir, 'data') }, delete: { enabled: true } },
          http: {
            addr: '127.0.0.1:0',
            secret: randomBytes(16).toString('hex'),
            relativeurls: true, // behind the TLS front: no absolute http:// Location headers
            headers: { 'X-Content-Type-Options': ['nosniff'] },
          },
          auth: { htpasswd: { realm: `https://${host}/`, path: htfile } },
          health: { storagedriver: { enabled: false } },
        }),
      );
      const p = startProc(`registry-${region}`, registryBin, ['serve', config], c.dir, regEnv);
      c.procs.push(p);
      let url = '';
      await waitFor(p, `the registry for ${host} to listen`, async () => {
        const m = /listening on (127\.0\.0\.1:\d+)/.exec(await readFile(p.logFile, 'utf8'));
        if (m?.[1]) url = `http://${m[1]}`;
        return url !== '' && (await httpGet(`${url}/v2/`)).status === 401;
      });
      return url;
    }),
  );
  backendList.catch(() => {}); // awaited below

  // One certificate for every host name, from the test bed's CA (after makeCerts: ca.srl).
  const o = (args: string[]): Promise<string> => run('openssl', args, { cwd: c.dir });
  await o(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'registry.key']);
  await c.certs;
  await o(['req', '-new', '-key', 'registry.key', '-out', 'registry.csr', '-subj', `/CN=${hosts[0]}`]);
  await writeFile(
    f('registry.ext'),
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${hosts.map((h) => `DNS:${h}`).join(',')}`,
    ].join('\n') + '\n',
  );
  await o([
    'x509', '-req', '-in', 'registry.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAserial', 'ca.srl',
    '-out', 'registry.crt', '-days', '30', '-sha256', '-extfile', 'registry.ext',
  ]);

  const backends: Record<string, string> = {};
  (await backendList).forEach((url, i) => (backends[hosts[i] as string] = url));

  // The TLS front on 127.0.0.1:443.
  await writeFile(
    f('registry-front.json'),
    JSON.stringify({
      host: '127.0.0.1',
      port: 443,
      cert: f('registry.crt'),
      key: f('registry.key'),
      routes: Object.fromEntries(hosts.map((h) => [h, Number(new URL(backends[h] as string).port)])),
    }),
  );
  const front = startProc('registry-front', process.execPath, [path.join(here, 'registry-front.mjs'), f('registry-front.json')], c.dir, regEnv);
  c.procs.push(front);
  try {
    await waitFor(front, 'the registry front to listen on 127.0.0.1:443', async () =>
      /registry front listening on/.test(await readFile(front.logFile, 'utf8')),
    );
  } catch (err) {
    const text = await readFile(front.logFile, 'utf8').catch(() => '');
    if (/EADDRINUSE/.test(text)) throw new RegistryUnavailable('something already listens on 127.0.0.1:443 (another test bed?)');
    if (/EACCES/.test(text)) throw new RegistryUnavailable('may not listen on 127.0.0.1:443 (not root?)');
    throw err;
  }

  // The host names, then the whole way a client goes: name -> 127.0.0.1 -> TLS (our CA) -> registry.
  c.addingHosts();
  rewriteHosts(process.pid, [`127.0.0.1\t${hosts.join(' ')}`]);
  const ca = await readFile(f('ca.crt'));
  await Promise.all(
    hosts.map(async (host) => {
      const { address } = await dns.lookup(host, { family: 4 }).catch(() => ({ address: 'nothing' }));
      if (address !== '127.0.0.1') {
        throw new RegistryUnavailable(`${host} resolves to ${address}, not to 127.0.0.1, despite ${HOSTS_FILE}`);
      }
      const r = await httpGet(`https://${host}/v2/`, { ca });
      if (r.status !== 401) throw new Error(`testbed: GET https://${host}/v2/ without credentials answered ${r.status}, not 401: ${r.body}`);
    }),
  );
  c.log(`testbed: registries ready at ${hosts.map((h) => `https://${h}`).join(', ')} (${c.since()})`);
  return { hosts, regionOf, username: REGISTRY_USER, caFile: f('ca.crt'), backends, htpasswdFiles };
}

// ---------------------------------------------------------------- the test bed

export async function startTestbed(opts: TestbedOptions = {}): Promise<Testbed> {
  const log = opts.log ?? ((): void => {});
  const withKcm = opts.controllerManager ?? true;
  const t0 = Date.now();
  const since = (): string => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  installExitHandlers();

  const dir = await mkdtemp(path.join(tmpdir(), 'kubectl-ecr-testbed-'));
  liveDirs.add(dir);
  const f = (name: string): string => path.join(dir, name);
  const procs: { apiserver?: Proc; kcm?: Proc; etcd?: Proc; moto?: Proc; registries: Proc[] } = { registries: [] };
  const envMode = (process.env.KUBECTL_ECR_TESTBED_REGISTRY ?? '').toLowerCase();
  const registryMode: boolean | 'auto' =
    opts.registry ?? (['required', '1', 'true'].includes(envMode) ? true : ['off', '0', 'false'].includes(envMode) ? false : 'auto');
  let hostsAdded = false;
  const removeHosts = (): void => {
    if (!hostsAdded) return;
    hostsAdded = false;
    exitCleanups.delete(removeHosts);
    try {
      rewriteHosts(process.pid, []);
    } catch (err) {
      log(`testbed: could not remove the registry lines from ${HOSTS_FILE}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const stopRegistries = async (): Promise<void> => {
    removeHosts();
    await Promise.all(procs.registries.map((p) => stopProc(p)));
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      const s0 = Date.now();
      const timings: string[] = [];
      // The controller-manager first: the apiserver's graceful shutdown waits for its watch clients, so
      // with the controller-manager still connected it would sit out the whole grace period.
      const timed = async (p: Proc | undefined): Promise<void> => {
        const t = Date.now();
        await stopProc(p);
        if (p) timings.push(`${p.name} ${Date.now() - t}ms`);
      };
      const motoStopped = timed(procs.moto); // independent of the rest
      const registriesStopped = (async (): Promise<void> => {
        const t = Date.now();
        const n = procs.registries.length;
        await stopRegistries();
        if (n > 0) timings.push(`registries ${Date.now() - t}ms`);
      })();
      for (const p of [procs.kcm, procs.apiserver, procs.etcd]) await timed(p);
      await Promise.all([motoStopped, registriesStopped]);
      log(`testbed: stopped in ${Date.now() - s0}ms (${timings.join(', ')})`);
      if (process.env.KUBECTL_ECR_TESTBED_KEEP) log(`testbed: kept ${dir}`);
      else await rm(dir, { recursive: true, force: true });
      liveDirs.delete(dir);
      liveBeds.delete(handle);
    })());
  const handle = { stop };
  liveBeds.add(handle);

  try {
    // Binaries and venv (instant when cached), ports, certificates.
    // The scripts say nothing when cached; a cold build's progress must be seen even without opts.log.
    const progress = opts.log ?? ((s: string): void => void process.stderr.write(`${s}\n`));
    const [binOut, pyOut, ports] = await Promise.all([
      run('bash', [path.join(here, 'build-k8s.sh')], { stderrToLog: progress }),
      run('bash', [path.join(here, 'setup-moto.sh')], { stderrToLog: progress }),
      freePorts(4),
    ]);
    const binDir = binOut.trim().split('\n').pop() ?? '';
    const python = pyOut.trim().split('\n').pop() ?? '';
    const [etcdPort, etcdPeerPort, apiPort, kcmPort] = ports as [number, number, number, number];
    const bin = (name: string): string => path.join(binDir, name);

    // moto: port 0, it prints the one it got.
    procs.moto = startProc('moto', python, ['-u', path.join(here, 'moto_server.py'), '0'], dir, {
      ...process.env,
      PYTHONUNBUFFERED: '1',
      ...opts.motoEnv,
    });
    const motoReady = (async (): Promise<string> => {
      let url = '';
      const moto = procs.moto as Proc;
      await waitFor(moto, 'moto to listen', async () => {
        const m = /moto listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(await readFile(moto.logFile, 'utf8'));
        if (m?.[1]) url = m[1];
        return url !== '' && (await httpGet(`${url}/testbed/health`)).status === 200;
      });
      log(`testbed: moto ready at ${url} (${since()})`);
      return url;
    })();
    motoReady.catch(() => {}); // awaited at the end; if another part fails first, stop() ends moto and this rejects

    // etcd, certificates in parallel.
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    procs.etcd = startProc('etcd', bin('etcd'), [
      '--name=testbed',
      `--data-dir=${f('etcd-data')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=testbed=${peerUrl}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ], dir);
    const etcd = procs.etcd;
    const etcdReady = waitFor(etcd, 'etcd /health', async () => {
      const r = await httpGet(`${etcdUrl}/health`);
      return r.status === 200 && /"health":\s*"true"/.test(r.body);
    }).then(() => log(`testbed: etcd ready (${since()})`));
    const certs = makeCerts(dir).then(() => log(`testbed: certificates made (${since()})`));
    certs.catch(() => {}); // awaited right below

    // The registries, meanwhile (they need the CA only for their front).
    const registryReady = (async (): Promise<TestbedRegistry | undefined> => {
      if (registryMode === false) return undefined;
      try {
        return await startRegistries({
          dir,
          log,
          since,
          certs,
          accountId: opts.motoEnv?.MOTO_ACCOUNT_ID ?? process.env.MOTO_ACCOUNT_ID ?? '123456789012',
          regions: opts.registryRegions ?? DEFAULT_REGISTRY_REGIONS,
          procs: procs.registries,
          addingHosts: () => {
            hostsAdded = true;
            exitCleanups.add(removeHosts);
          },
        });
      } catch (err) {
        if (!(err instanceof RegistryUnavailable) || registryMode === true) {
          throw err instanceof RegistryUnavailable ? new Error(`testbed: no registries: ${err.message}`) : err;
        }
        await stopRegistries();
        log(`testbed: registries not started: ${err.message}; tests that need them will fail or skip`);
        return undefined;
      }
    })();
    registryReady.catch(() => {}); // awaited at the end

    await Promise.all([certs, etcdReady]);

    const testerToken = randomBytes(24).toString('hex');
    const tokenFile = f('tester.token');
    await writeFile(tokenFile, testerToken, { mode: 0o600 });
    await writeFile(f('tokens.csv'), `${testerToken},tester,tester\n`, { mode: 0o600 });

    // kube-apiserver.
    const server = `https://127.0.0.1:${apiPort}`;
    await mkdir(f('apiserver-certs'));
    procs.apiserver = startProc('kube-apiserver', bin('kube-apiserver'), [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      '--advertise-address=127.0.0.1',
      '--endpoint-reconciler-type=none',
      `--cert-dir=${f('apiserver-certs')}`,
      `--tls-cert-file=${f('apiserver.crt')}`,
      `--tls-private-key-file=${f('apiserver.key')}`,
      `--client-ca-file=${f('ca.crt')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${f('sa.pub')}`,
      `--service-account-signing-key-file=${f('sa.key')}`,
      '--authorization-mode=Node,RBAC',
      '--service-cluster-ip-range=10.0.0.0/24',
      `--token-auth-file=${f('tokens.csv')}`,
      '--profiling=false',
    ], dir);
    const api = procs.apiserver;
    const tls: https.RequestOptions = {
      ca: await readFile(f('ca.crt')),
      cert: await readFile(f('admin.crt')),
      key: await readFile(f('admin.key')),
    };
    const kubeconfig = f('kubeconfig');
    const testerKubeconfig = f('tester.kubeconfig');
    await writeKubeconfig(kubeconfig, server, f('ca.crt'), {
      name: 'admin',
      user: { 'client-certificate-data': await b64(f('admin.crt')), 'client-key-data': await b64(f('admin.key')) },
    });
    await writeKubeconfig(testerKubeconfig, server, f('ca.crt'), { name: 'tester', user: { token: testerToken } });
    await waitFor(api, 'kube-apiserver /readyz', async () => (await httpGet(`${server}/readyz`, tls)).status === 200);
    log(`testbed: kube-apiserver ready at ${server} (${since()})`);

    // kube-controller-manager.
    if (withKcm) {
      const kcmKubeconfig = f('kcm.kubeconfig');
      await writeKubeconfig(kcmKubeconfig, server, f('ca.crt'), {
        name: 'kube-controller-manager',
        user: { 'client-certificate-data': await b64(f('kcm.crt')), 'client-key-data': await b64(f('kcm.key')) },
      });
      await mkdir(f('kcm-certs'));
      procs.kcm = startProc('kube-controller-manager', bin('kube-controller-manager'), [
        `--kubeconfig=${kcmKubeconfig}`,
        `--authentication-kubeconfig=${kcmKubeconfig}`,
        `--authorization-kubeconfig=${kcmKubeconfig}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${kcmPort}`,
        `--cert-dir=${f('kcm-certs')}`,
        `--service-account-private-key-file=${f('sa.key')}`,
        `--root-ca-file=${f('ca.crt')}`,
        '--use-service-account-credentials=true',
        `--cluster-signing-cert-file=${f('ca.crt')}`,
        `--cluster-signing-key-file=${f('ca.key')}`,
        '--controllers=*',
        '--leader-elect=false',
        '--kube-api-qps=100',
        '--kube-api-burst=200',
        '--profiling=false',
      ], dir);
      const kcm = procs.kcm;
      await waitFor(kcm, 'the default ServiceAccount in namespace default', async () =>
        (await httpGet(`${server}/api/v1/namespaces/default/serviceaccounts/default`, tls)).status === 200,
      );
      log(`testbed: kube-controller-manager ready (${since()})`);
    }

    const motoUrl = await motoReady;
    const registry = await registryReady;
    const awsConfig = f('aws-config');
    const awsCredentials = f('aws-credentials');
    await writeFile(awsConfig, '');
    await writeFile(awsCredentials, '');
    const awsEnv: Record<string, string> = {
      AWS_ENDPOINT_URL: motoUrl,
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: awsConfig,
      AWS_SHARED_CREDENTIALS_FILE: awsCredentials,
    };

    const env = (extra: Record<string, string> = {}): Record<string, string> => {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env)) {
        if (v !== undefined && !k.startsWith('AWS_') && k !== 'KUBECONFIG') out[k] = v;
      }
      return {
        ...out,
        PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ''}`,
        KUBECONFIG: kubeconfig,
        ...awsEnv,
        ...(registry ? { NODE_EXTRA_CA_CERTS: registry.caFile } : {}),
        ...extra,
      };
    };

    const setEcrTokenTtl = async (seconds: number | null, o: { accessKeyId?: string } = {}): Promise<void> => {
      if (seconds !== null && !Number.isInteger(seconds)) throw new Error('testbed: setEcrTokenTtl wants an integer');
      const r =
        seconds === null
          ? await httpSend(`${motoUrl}/testbed/token-ttl`, 'DELETE', '')
          : await httpSend(`${motoUrl}/testbed/token-ttl`, 'POST', JSON.stringify({ seconds, accessKeyId: o.accessKeyId }));
      if (r.status !== 200) throw new Error(`testbed: setting the ECR token TTL failed: ${r.status} ${r.body}`);
    };

    log(`testbed: up in ${since()} (${dir})`);
    return {
      dir,
      kubeconfig,
      testerKubeconfig,
      server,
      binDir,
      awsEnv,
      motoUrl,
      tokenFile,
      caFile: f('ca.crt'),
      ...(registry ? { registry } : {}),
      env,
      setEcrTokenTtl,
      stop,
    };
  } catch (err) {
    await stop().catch(() => {}); // the error message already carries the log tail
    throw err;
  }
}
