// Which cluster and namespace, by kubectl's rules: --kubeconfig, else $KUBECONFIG (a list of files,
// missing ones skipped), else ~/.kube/config, else the in-cluster service account. The namespace is
// the flag, else the context's, else `default`.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { UserError } from '../cli/errors.js';
import { debug } from '../cli/log.js';

const log = debug('kube');
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeOptions {
  kubeconfig?: string;
  context?: string;
}

export interface LoadedConfig {
  kc: KubeConfig;
  /** The namespace the context names, or `default`. */
  namespace: string;
  /** Where the config came from, for messages. */
  source: string;
}

export async function loadKubeConfig(opts: KubeOptions, env = process.env): Promise<LoadedConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  const files = configFiles(opts, env);

  if (files.length > 0) {
    for (const [i, file] of files.entries()) {
      const one = new KubeConfig();
      try {
        one.loadFromFile(file);
      } catch (err) {
        throw new UserError('InvalidKubeconfig', `cannot read kubeconfig ${file}: ${firstLine(err)}`, 'check the file is valid YAML');
      }
      if (i === 0) kc.loadFromString(one.exportConfig());
      else kc.mergeConfig(one, true);
    }
  } else if (env.KUBERNETES_SERVICE_HOST && existsSync(join(SA_DIR, 'token'))) {
    kc.loadFromCluster();
    const ns = readFileSync(join(SA_DIR, 'namespace'), 'utf8').trim();
    log(`in-cluster config, namespace ${ns}`);
    return { kc, namespace: ns || 'default', source: 'in-cluster service account' };
  } else {
    throw new UserError(
      'NoKubeconfig',
      'no kubeconfig found (looked at $KUBECONFIG and ~/.kube/config)',
      'pass --kubeconfig FILE or set KUBECONFIG',
    );
  }

  if (opts.context) {
    if (!kc.getContextObject(opts.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new UserError(
        'ContextNotFound',
        `context "${opts.context}" not found in ${files.join(', ')}`,
        known.length ? `known contexts: ${known.join(', ')}` : 'the kubeconfig has no contexts',
      );
    }
    kc.setCurrentContext(opts.context);
  }
  const context = kc.getContextObject(kc.getCurrentContext());
  if (!context) {
    throw new UserError('NoContext', `no current context in ${files.join(', ')}`, 'pass --context NAME');
  }
  if (!kc.getCurrentCluster()) {
    throw new UserError('ClusterNotFound', `context "${context.name}" names cluster "${context.cluster}", which is not in the kubeconfig`);
  }
  log(`kubeconfig ${files.join(delimiter)} context ${context.name}`);
  return { kc, namespace: context.namespace || 'default', source: files.join(', ') };
}

function configFiles(opts: KubeOptions, env: NodeJS.ProcessEnv): string[] {
  if (opts.kubeconfig) {
    if (!existsSync(opts.kubeconfig)) {
      throw new UserError('KubeconfigNotFound', `kubeconfig ${opts.kubeconfig} does not exist`, 'check the --kubeconfig path');
    }
    return [opts.kubeconfig];
  }
  if (env.KUBECONFIG) {
    const files = env.KUBECONFIG.split(delimiter).filter((f) => f && existsSync(f));
    if (files.length === 0) {
      throw new UserError('KubeconfigNotFound', `no file named in KUBECONFIG exists (${env.KUBECONFIG})`, 'fix KUBECONFIG or pass --kubeconfig');
    }
    return files;
  }
  const home = join(env.HOME || homedir(), '.kube', 'config');
  return existsSync(home) ? [home] : [];
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}
