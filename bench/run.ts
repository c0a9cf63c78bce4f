// `npm run bench`: how long kubectl-ecr takes and how much memory it peaks at, on the local test
// bed (real API server, moto). Whole processes, several runs, median and max; results are printed
// and written to bench/results.json. Never asserted in tests: numbers vary with the machine.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { startTestbed } from '../test/testbed/testbed.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const NAMESPACES = Number(process.env.BENCH_NAMESPACES ?? 100);
const hasTime = existsSync('/usr/bin/time');

interface Sample {
  ms: number;
  maxRssKb?: number;
}

function measure(args: string[], env: NodeJS.ProcessEnv): Sample {
  const cmd = hasTime ? '/usr/bin/time' : process.execPath;
  const argv = hasTime ? ['-f', '%M', process.execPath, `${root}/bin/kubectl-ecr`, ...args] : [`${root}/bin/kubectl-ecr`, ...args];
  const t0 = process.hrtime.bigint();
  const res = spawnSync(cmd, argv, { env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (res.status !== 0) throw new Error(`kubectl-ecr ${args.join(' ')} failed: ${res.stderr.split('\n').slice(-3).join(' ')}`);
  const rss = hasTime ? Number(res.stderr.trim().split('\n').pop()) : undefined;
  return { ms, maxRssKb: rss };
}

function summarize(name: string, samples: Sample[]) {
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const rss = samples.map((s) => s.maxRssKb ?? 0).sort((a, b) => a - b);
  const row = { name, runs: samples.length, medianMs: Math.round(ms[ms.length >> 1]), maxMs: Math.round(ms[ms.length - 1]), medianRssMb: +(rss[rss.length >> 1] / 1024).toFixed(1) };
  process.stdout.write(`${name.padEnd(40)} median ${String(row.medianMs).padStart(6)} ms   max ${String(row.maxMs).padStart(6)} ms   peak RSS ${row.medianRssMb} MB\n`);
  return row;
}

const tb = await startTestbed({ log: () => {} });
try {
  const env = { ...tb.env(), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  const kc = new KubeConfig();
  kc.loadFromFile(tb.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const names = Array.from({ length: NAMESPACES }, (_, i) => `bench-${i}`);
  await Promise.all(names.map((name) => core.createNamespace({ body: { metadata: { name, labels: { bench: 'yes' } } } })));

  const rows: Array<ReturnType<typeof summarize>> = [];
  const run = (name: string, args: string[]) => rows.push(summarize(name, Array.from({ length: RUNS }, () => measure(args, env))));
  run('start-up: --help', ['--help']);
  run('login, 1 namespace', ['login', '-n', 'bench-0', '--no-service-account']);
  run(`login, ${NAMESPACES} namespaces by selector`, ['login', '--namespace-selector', 'bench=yes', '--no-service-account']);
  run('install-cron --dry-run=client -o yaml', ['install-cron', '--auth', 'node', '--registry', '123456789012.dkr.ecr.us-east-1.amazonaws.com', '-n', 'a', '--dry-run=client', '-o', 'yaml']);
  writeFileSync(`${root}/bench/results.json`, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, runs: RUNS, namespaces: NAMESPACES, rows }, null, 2)}\n`);
} finally {
  await tb.stop();
}
