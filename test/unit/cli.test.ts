// The command surface as a user meets it, with no cluster: help, usage errors, exit codes, and the
// committed manifest matching the code.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [`${root}/bin/kubectl-ecr`, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: '/nonexistent', NO_COLOR: '1' } });

describe('command surface', () => {
  it('oclif.manifest.json is current with the commands (run `npm run manifest` when this fails)', () => {
    const res = spawnSync(process.execPath, [`${root}/scripts/manifest.mjs`, '--check'], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
  });

  it('help and examples speak as a kubectl plugin', () => {
    const res = cli('login', '--help');
    assert.equal(res.status, 0);
    assert.match(res.stdout, /\$ kubectl ecr login/);
    assert.doesNotMatch(res.stdout, /\$ kubectl-ecr /);
  });

  it('a usage error is one line on stderr and exit 2', () => {
    const res = cli('login', '--no-such-flag');
    assert.equal(res.status, 2);
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.match(res.stderr, /^error: .*--no-such-flag.*kubectl ecr login --help/);
  });

  it('conflicting flags are named together, before anything is contacted', () => {
    const res = cli('login', '-A', '-n', 'x');
    assert.equal(res.status, 2);
    assert.match(res.stderr, /--namespace.*--all-namespaces|--all-namespaces.*--namespace/);
  });

  it('a malformed registry host is refused with the expected form, exit 1', () => {
    const res = cli('login', '--registry', 'index.docker.io');
    assert.equal(res.status, 1);
    assert.match(res.stderr, /^error: "index.docker.io" is not an ECR registry host; expected ACCOUNT\.dkr\.ecr\.REGION/);
  });
});
