// Which namespaces a command acts in: the -n list; or every namespace (-A), or those matching a
// label selector, less any excluded by glob; or else the current one.
import type { CoreV1Api } from '@kubernetes/client-node';
import picomatch from 'picomatch';
import { usageError } from '../cli/errors.js';
import { call } from './api.js';

export interface NamespaceChoice {
  namespaces?: string[];
  all?: boolean;
  /** A label selector, as kubectl's -l takes it; implies looking across the cluster. */
  selector?: string;
  /** Globs (`kube-*`, `*-system`) of namespaces to leave out. */
  exclude?: string[];
  /** The context's namespace (or `default`): used when nothing else is chosen. */
  current: string;
}

/** Checked before any call: a glob that can never match a namespace name is a mistake. */
export function excludeMatcher(globs: string[] = []): (name: string) => boolean {
  for (const g of globs) {
    if (!/^[a-z0-9*?[\]!{},.-]+$/.test(g)) {
      throw usageError(`--exclude-namespace "${g}" is not a namespace glob`, 'use lower-case names with * and ?, e.g. kube-*');
    }
  }
  return globs.length > 0 ? picomatch(globs) : () => false;
}

export async function resolveNamespaces(core: CoreV1Api, choice: NamespaceChoice): Promise<string[]> {
  const excluded = excludeMatcher(choice.exclude);
  if (choice.all || choice.selector) {
    const list = await call('list namespaces', () => core.listNamespace({ labelSelector: choice.selector }));
    return list.items
      .filter((ns) => ns.status?.phase !== 'Terminating') // writes there would fail; not ours to report
      .map((ns) => ns.metadata!.name!)
      .filter((name) => !excluded(name))
      .sort();
  }
  const named = (choice.namespaces ?? []).flatMap((n) => n.split(',')).map((n) => n.trim()).filter(Boolean);
  const chosen = named.length > 0 ? [...new Set(named)] : [choice.current];
  return chosen.filter((name) => !excluded(name));
}

// key, !key, key=v, key==v, key!=v, key in (a,b), key notin (a,b): kubectl's label selector forms.
const NAME = String.raw`[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?`;
const VALUE = String.raw`([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?`;
const REQUIREMENT = new RegExp(
  String.raw`^(!?${NAME}|${NAME}\s*(=|==|!=)\s*${VALUE}|${NAME}\s+(in|notin)\s+\(\s*${VALUE}(\s*,\s*${VALUE})*\s*\))$`,
);

/** Checked before any call (and before install-cron stores it for a job that would then fail). */
export function validateSelector(flag: string, selector: string | undefined): void {
  if (selector === undefined) return;
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  if (depth !== 0 || !selector.trim() || parts.some((p) => !REQUIREMENT.test(p.trim()))) {
    throw usageError(`${flag} "${selector}" is not a label selector`, 'e.g. team=web,env!=dev or tier in (web,api)');
  }
}
