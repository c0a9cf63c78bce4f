// How a refresh reads to a person: one line per namespace and a summary, on stderr.
import { paint } from '../cli/output.js';
import type { DryRun, NamespaceResult } from './engine.js';

export function renderResult(r: NamespaceResult, secretName: string, dryRun: DryRun): string {
  const suffix = dryRun === 'none' ? '' : ` (dry run: ${dryRun})`;
  const head = `namespace/${r.namespace}:`;
  if (r.secret === 'failed') return `${head} ${paint('red', 'failed')}: ${r.error?.message ?? 'unknown error'}${suffix}`;

  const parts = [`secret/${secretName} ${r.secret}`];
  if (r.replacedType) parts[0] += ` (the ${r.replacedType} secret of that name was deleted and recreated with the new type)`;
  if (r.attached.length) parts.push(`added to ${r.attached.map((n) => `serviceaccount/${n}`).join(', ')}`);
  if (r.error) parts.push(`${paint('red', 'failed')}: ${r.error.message}`);
  return `${head} ${parts.join('; ')}${suffix}`;
}

export interface Summary {
  line: string;
  failed: number;
}

export function summarize(results: NamespaceResult[], dryRun: DryRun): Summary {
  const count = (pred: (r: NamespaceResult) => boolean) => results.filter(pred).length;
  const failed = count((r) => Boolean(r.error));
  const parts = [
    `${count((r) => r.secret === 'created' && !r.error)} created`,
    `${count((r) => r.secret === 'updated' && !r.error)} updated`,
    `${count((r) => r.secret === 'unchanged' && !r.error)} unchanged`,
    `${failed} failed`,
  ];
  const n = results.length;
  const what = dryRun === 'none' ? '' : ` (dry run: ${dryRun}, nothing saved)`;
  return { line: `${n} namespace${n === 1 ? '' : 's'}: ${parts.join(', ')}${what}`, failed };
}
