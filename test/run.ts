// `npm test`: starts the test bed (real kube-apiserver, etcd, controller manager, moto) when
// integration tests are to run, runs every test file with node's test runner, and stops it.
// `--unit` runs only the pure tests, with nothing started.
import { spawn } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const unitOnly = process.argv.includes('--unit');
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith('.test.ts') ? [relative(root, path)] : [];
  });
}

let files = testFiles(join(root, 'test', 'unit'));
if (!unitOnly) files.push(...testFiles(join(root, 'test', 'integration')));
if (only.length > 0) files = files.filter((f) => only.some((o) => f.includes(o)));

// The SDK's Node 20 end-of-support notice would repeat in every test process's output; bin/run.js
// silences it for users the same way.
const env: NodeJS.ProcessEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
let stop: (() => Promise<void>) | undefined;
if (files.some((f) => f.includes('integration'))) {
  const { startTestbed } = await import('./testbed/testbed.js');
  const started = Date.now();
  const tb = await startTestbed({ log: (s) => process.stderr.write(`[testbed] ${s}\n`) });
  process.stderr.write(`[testbed] up in ${((Date.now() - started) / 1000).toFixed(1)}s at ${tb.server}\n`);
  const state = join(tb.dir, 'state.json');
  const { stop: _stop, ...data } = tb;
  writeFileSync(state, JSON.stringify(data));
  env.KUBECTL_ECR_TESTBED = state;
  stop = () => tb.stop();
}

const code = await new Promise<number>((resolve) => {
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', ...files], { cwd: root, env, stdio: 'inherit' });
  child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
});
await stop?.();
process.exit(code);
