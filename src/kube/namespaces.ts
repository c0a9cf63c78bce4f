// Which namespaces a command acts in: the -n list, every namespace (-A), or the current one.
import type { CoreV1Api } from '@kubernetes/client-node';
import { call } from './api.js';

export interface NamespaceChoice {
  namespaces?: string[];
  all?: boolean;
  /** The context's namespace (or `default`): used when nothing else is chosen. */
  current: string;
}

export async function resolveNamespaces(core: CoreV1Api, choice: NamespaceChoice): Promise<string[]> {
  if (choice.all) {
    const list = await call('list namespaces', () => core.listNamespace());
    return list.items.map((ns) => ns.metadata!.name!).sort();
  }
  const named = (choice.namespaces ?? []).flatMap((n) => n.split(',')).map((n) => n.trim()).filter(Boolean);
  return named.length > 0 ? [...new Set(named)] : [choice.current];
}
