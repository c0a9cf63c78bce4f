// Reading a settings file for `login --settings` and folding it under the flags.
import { readFile } from 'node:fs/promises';
import { UserError } from '../cli/errors.js';
import { DEFAULT_SECRET_NAME } from '../names.js';
import { parseSettings, type Settings } from './settings.js';

export async function loadSettingsFile(path: string): Promise<Settings> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UserError('SettingsNotFound', `cannot read settings file ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`, 'check the --settings path');
  }
  return parseSettings(text, path);
}

interface LoginFlags {
  registry?: string[];
  namespace?: string[];
  'all-namespaces'?: boolean;
  'namespace-selector'?: string;
  'exclude-namespace'?: string[];
  'secret-name'?: string;
  'service-account'?: string[];
  'no-service-account'?: boolean;
  region?: string;
  'role-arn'?: string;
  'role-session-name'?: string;
  'external-id'?: string;
}

/** Flags win; settings fill what the flags left out; then the defaults. */
export function withSettings<F extends LoginFlags>(flags: F, s: Settings): F & { 'secret-name': string } {
  const pick = <T>(flag: T | undefined, setting: T | undefined) => flag ?? setting;
  const chooseNamespaces = !flags.namespace?.length && !flags['all-namespaces'] && !flags['namespace-selector'];
  return {
    ...flags,
    registry: flags.registry?.length ? flags.registry : s.registries,
    namespace: chooseNamespaces ? s.namespaces : flags.namespace,
    'all-namespaces': chooseNamespaces ? (s.allNamespaces ?? false) : flags['all-namespaces'],
    'namespace-selector': chooseNamespaces ? s.namespaceSelector : flags['namespace-selector'],
    'exclude-namespace': flags['exclude-namespace']?.length ? flags['exclude-namespace'] : s.excludeNamespaces,
    'secret-name': flags['secret-name'] ?? s.secretName ?? DEFAULT_SECRET_NAME,
    'service-account': flags['service-account']?.length ? flags['service-account'] : s.serviceAccounts,
    'no-service-account': flags['no-service-account'] || (s.serviceAccounts !== undefined && s.serviceAccounts.length === 0 && !flags['service-account']?.length),
    region: pick(flags.region, s.region),
    'role-arn': pick(flags['role-arn'], s.roleArn),
    'role-session-name': pick(flags['role-session-name'], s.roleSessionName),
    'external-id': pick(flags['external-id'], s.externalId),
  };
}
