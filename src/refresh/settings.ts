// The refresher's settings: what install-cron stores in a ConfigMap and `login --settings FILE`
// reads, so that the in-cluster job runs the very same login. Flags given on the command line win
// over the file. Pure: parse and validate, no I/O.
import { parse, stringify } from 'yaml';
import { EXIT, UserError } from '../cli/errors.js';

export interface Settings {
  /** The install's name; recorded as a label on the secrets it writes. */
  install?: string;
  registries?: string[];
  namespaces?: string[];
  allNamespaces?: boolean;
  namespaceSelector?: string;
  excludeNamespaces?: string[];
  secretName?: string;
  /** Service accounts to attach the secret to; an empty list means none. */
  serviceAccounts?: string[];
  region?: string;
  roleArn?: string;
  roleSessionName?: string;
  externalId?: string;
}

const LISTS = ['registries', 'namespaces', 'excludeNamespaces', 'serviceAccounts'] as const;
const STRINGS = ['install', 'namespaceSelector', 'secretName', 'region', 'roleArn', 'roleSessionName', 'externalId'] as const;

const invalid = (message: string, hint?: string) => new UserError('InvalidSettings', message, hint, EXIT.usage);

/** A bad settings file is a usage error (exit 2): retrying the job will not fix it. */
export function parseSettings(text: string, source: string): Settings {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw invalid(`${source} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalid(`${source} must be a YAML mapping`);
  const out: Settings = {};
  const known = new Set<string>([...LISTS, ...STRINGS, 'allNamespaces']);
  for (const [key, value] of Object.entries(raw)) {
    if (!known.has(key)) throw invalid(`${source}: unknown setting "${key}"`, `known: ${[...known].join(', ')}`);
    if ((LISTS as readonly string[]).includes(key)) {
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw invalid(`${source}: ${key} must be a list of strings`);
      (out as Record<string, unknown>)[key] = value;
    } else if (key === 'allNamespaces') {
      if (typeof value !== 'boolean') throw invalid(`${source}: allNamespaces must be true or false`);
      out.allNamespaces = value;
    } else {
      if (typeof value !== 'string') throw invalid(`${source}: ${key} must be a string`);
      (out as Record<string, unknown>)[key] = value;
    }
  }
  return out;
}

export function renderSettings(settings: Settings): string {
  const clean = Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined && v !== '' && !(v === false)));
  return `# Settings of the kubectl-ecr refresher, read by \`kubectl-ecr login --settings\`.\n${stringify(clean)}`;
}
