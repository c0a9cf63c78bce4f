#!/usr/bin/env node
// Writes oclif.manifest.json from the built commands (dist/), the way the oclif CLI does, without
// its publishing toolchain. `--check` writes nothing and exits 1 when the committed file is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Plugin } from '@oclif/core';

const root = fileURLToPath(new URL('..', import.meta.url));
const file = `${root}/oclif.manifest.json`;

const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true, respectNoCacheDefault: true });
await plugin.load();
const fresh = `${JSON.stringify(plugin.manifest, null, 2)}\n`;

if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(file, 'utf8');
  } catch {}
  if (committed !== fresh) {
    process.stderr.write('oclif.manifest.json is stale: run `npm run manifest` and commit it\n');
    process.exit(1);
  }
} else {
  writeFileSync(file, fresh);
  process.stderr.write(`wrote ${file}\n`);
}
