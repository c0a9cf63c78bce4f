// Developer entry points to the test bed.
//   npx tsx test/testbed/cli.ts sandbox   start it, print `export` lines on stdout (also written to
//                                          .testbed/env.sh), wait for Ctrl-C, stop it
//   npx tsx test/testbed/cli.ts demo      start it, run `kubectl ecr login` into three namespaces,
//                                          show the secret (token redacted), the service account and
//                                          `status --verify`, stop it (`npm run demo` builds first)
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { startTestbed, type Testbed } from './testbed.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const envFile = path.join(repoRoot, '.testbed', 'env.sh');

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

// AWS variables of the user's shell that would steer the SDK away from the test keys and moto.
const AWS_UNSET = [
  'AWS_PROFILE',
  'AWS_DEFAULT_PROFILE',
  'AWS_SESSION_TOKEN',
  'AWS_ROLE_ARN',
  'AWS_ROLE_SESSION_NAME',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_ENDPOINT_URL_ECR',
  'AWS_ENDPOINT_URL_STS',
];

function exportLines(tb: Testbed): string[] {
  return [
    `unset ${AWS_UNSET.join(' ')}`,
    `export KUBECONFIG=${q(tb.kubeconfig)}`,
    `export PATH=${q(tb.binDir)}:"$PATH"`,
    ...Object.entries(tb.awsEnv).map(([k, v]) => `export ${k}=${q(v)}`),
    `export TESTBED_SERVER=${q(tb.server)}`,
    `export TESTBED_MOTO_URL=${q(tb.motoUrl)}`,
    `export TESTBED_TESTER_KUBECONFIG=${q(tb.testerKubeconfig)}`,
    `export TESTBED_TESTER_TOKEN_FILE=${q(tb.tokenFile)}`,
    `export TESTBED_DIR=${q(tb.dir)}`,
    ...(tb.registry
      ? [`export NODE_EXTRA_CA_CERTS=${q(tb.registry.caFile)}`, `export TESTBED_REGISTRY_HOSTS=${q(tb.registry.hosts.join(' '))}`]
      : []),
  ];
}

async function sandbox(): Promise<void> {
  const t0 = Date.now();
  process.stderr.write('Starting the kubectl-ecr sandbox (etcd, kube-apiserver, kube-controller-manager, moto, registries)...\n');
  const tb = await startTestbed({ log: (s) => process.stderr.write(`  ${s}\n`) });
  const secs = ((Date.now() - t0) / 1000).toFixed(1);

  const marker = `# kubectl-ecr sandbox, pid ${process.pid}`;
  const lines = exportLines(tb);
  await mkdir(path.dirname(envFile), { recursive: true });
  await writeFile(envFile, `${marker}, started ${new Date().toISOString()}; removed when it stops.\n${lines.join('\n')}\n`);
  const removeEnvFile = (): void => {
    try {
      if (existsSync(envFile) && readFileSync(envFile, 'utf8').startsWith(marker)) rmSync(envFile);
    } catch {
      /* best effort */
    }
  };
  process.on('exit', removeEnvFile);

  process.stdout.write(lines.join('\n') + '\n');
  process.stderr.write(
    [
      '',
      `The sandbox is up (${secs} s). Everything listens on 127.0.0.1 only:`,
      `  Kubernetes API  ${tb.server}   (admin kubeconfig ${tb.kubeconfig})`,
      `  AWS (moto)      ${tb.motoUrl}   (ECR, STS, IAM; account 123456789012, region us-east-1)`,
      ...(tb.registry
        ? [
            `  registries      https://${tb.registry.hosts.join(', https://')}`,
            '                  (/etc/hosts -> 127.0.0.1:443; user AWS and the password `kubectl ecr login` writes for that region)',
          ]
        : ['  registries      not started (see above)']),
      `  logs, certs     ${tb.dir}`,
      '',
      'In another shell:',
      `  source ${path.relative(process.cwd(), envFile) || envFile}`,
      '  kubectl get ns                              # kubectl v1.36.3 from the test bed is first on PATH',
      '  KUBECONFIG=$TESTBED_TESTER_KUBECONFIG kubectl auth whoami    # the non-admin user "tester"',
      '  curl -X POST -d -60 $TESTBED_MOTO_URL/testbed/token-ttl     # ECR tokens expired a minute ago',
      '  curl -X DELETE $TESTBED_MOTO_URL/testbed/token-ttl          # back to 12 hours',
      ...(tb.registry
        ? [`  curl --cacert $NODE_EXTRA_CA_CERTS https://${tb.registry.hosts[0]}/v2/    # 401: no credentials`]
        : []),
      '',
      'Ctrl-C stops everything and removes it.',
      '',
    ].join('\n'),
  );

  // The test bed's processes do not hold Node's event loop open, and signal listeners don't either.
  const keepAlive = setInterval(() => {}, 1 << 30);
  await new Promise<void>((resolve) => {
    let stoppingSince = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stoppingSince) {
        // A terminal's Ctrl-C reaches us twice (directly and relayed by tsx): only a later one forces.
        if (Date.now() - stoppingSince < 2000) return;
        process.stderr.write(`${sig} again: killing.\n`);
        process.exit(130); // the exit handler SIGKILLs what is left
      }
      stoppingSince = Date.now();
      process.stderr.write('\nStopping the sandbox...\n');
      void tb.stop().finally(() => {
        removeEnvFile();
        resolve();
      });
    };
    // `on`, not `once`: while a listener of ours is there, the test bed's own handler leaves the exit to us.
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
  });
  clearInterval(keepAlive);
  process.stderr.write('Stopped.\n');
  process.exit(0);
}

/** The main job end to end: what a user sees running `kubectl ecr login` against a cluster. */
async function demo(): Promise<number> {
  process.stderr.write('Starting the sandbox (real kube-apiserver, etcd, controller manager; moto for ECR/STS)...\n');
  const tb = await startTestbed({ log: (s) => process.stderr.write(`  ${s}\n`) });
  const env = { ...tb.env(), NO_COLOR: process.env.NO_COLOR ?? '' };
  const bin = path.join(repoRoot, 'bin', 'kubectl-ecr');
  const show = (title: string, cmd: string, args: string[]): number => {
    process.stdout.write(`\n### ${title}\n$ ${[cmd === bin ? 'kubectl ecr' : cmd, ...args].join(' ')}\n`);
    const res = spawnSync(cmd === bin ? process.execPath : cmd, cmd === bin ? [bin, ...args] : args, { env, stdio: 'inherit' });
    if (args.some((a) => a.startsWith('jsonpath='))) process.stdout.write('\n');
    return res.status ?? 1;
  };
  try {
    const namespaces = ['demo-a', 'demo-b', 'demo-c'];
    for (const ns of namespaces) spawnSync('kubectl', ['create', 'namespace', ns], { env, stdio: 'ignore' });
    spawnSync('kubectl', ['wait', '--for=jsonpath={.metadata.name}=default', 'serviceaccount/default', '-n', 'demo-a', '--timeout=30s'], { env, stdio: 'ignore' });
    // demo-a's default service account already pulls from another registry: that must stay.
    spawnSync('kubectl', ['patch', 'serviceaccount', 'default', '-n', 'demo-a', '-p', '{"imagePullSecrets":[{"name":"dockerhub"}]}'], { env, stdio: 'ignore' });

    const code = show('Log in: one ECR token, a pull secret in each namespace', bin, ['login', ...namespaces.flatMap((n) => ['-n', n])]);
    show('The secrets', 'kubectl', ['get', 'secrets', '-A', '-l', 'app.kubernetes.io/managed-by=kubectl-ecr']);
    show('What kubectl-ecr recorded on the secret', 'kubectl', ['get', 'secret', 'ecr-registry', '-n', 'demo-a', '-o', 'jsonpath={.metadata.annotations}']);
    const raw = spawnSync('kubectl', ['get', 'secret', 'ecr-registry', '-n', 'demo-a', '-o', 'jsonpath={.data.\\.dockerconfigjson}'], { env, encoding: 'utf8' }).stdout;
    const cfg = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as { auths: Record<string, Record<string, string>> };
    for (const entry of Object.values(cfg.auths)) for (const k of ['password', 'auth']) if (entry[k]) entry[k] = `[redacted, ${entry[k].length} chars]`;
    process.stdout.write(`\n### The .dockerconfigjson it holds (password and auth redacted here)\n${JSON.stringify(cfg, null, 2)}\n`);
    show('The service account keeps its other pull secret and gains ours', 'kubectl', ['get', 'serviceaccount', 'default', '-n', 'demo-a', '-o', 'jsonpath={.imagePullSecrets}']);
    show('A second run updates the same secrets in place', bin, ['login', ...namespaces.flatMap((n) => ['-n', n])]);
    show('Is pulling healthy? (--verify asks the registry itself when the sandbox runs one)', bin, ['status', ...namespaces.flatMap((n) => ['-n', n]), ...(tb.registry ? ['--verify'] : [])]);
    process.stdout.write('\n');
    return code;
  } finally {
    await tb.stop();
  }
}

const cmd = process.argv[2];
switch (cmd) {
  case 'sandbox':
    await sandbox();
    break;
  case 'demo':
    process.exit(await demo());
  default:
    process.stderr.write('usage: npx tsx test/testbed/cli.ts sandbox|demo\n');
    process.exit(2);
}
