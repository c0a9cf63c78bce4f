// From install-cron's flags to an InstallPlan: every check that needs no cluster and no AWS call,
// so a bad combination is refused before anything is applied.
import { UserError, usageError } from '../cli/errors.js';
import { validateRoleArn } from '../aws/session.js';
import { excludeMatcher, validateSelector } from '../kube/namespaces.js';
import type { AuthMode } from './manifests.js';
import { checkSchedule } from './schedule.js';

export interface InstallFlags {
  name: string;
  auth: AuthMode;
  'irsa-role-arn'?: string;
  'host-network'?: boolean;
  'role-arn'?: string;
  schedule: string;
  'exclude-namespace'?: string[];
  namespace?: string[];
  'all-namespaces'?: boolean;
  'namespace-selector'?: string;
  'job-namespace': string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Returns warnings; throws for what cannot work. */
export function validateInstall(f: InstallFlags): string[] {
  if (!DNS_LABEL.test(f.name) || f.name.length > 40) throw usageError(`--name "${f.name}" is not a valid name`, 'use up to 40 lower-case letters, digits and "-"');
  if (!DNS_LABEL.test(f['job-namespace'])) throw usageError(`--job-namespace "${f['job-namespace']}" is not a valid namespace name`);
  if (f.auth === 'irsa' && !f['irsa-role-arn']) throw usageError('--auth irsa needs --irsa-role-arn', 'the role the job\'s service account maps to');
  if (f['irsa-role-arn'] && f.auth !== 'irsa') throw usageError(`--irsa-role-arn only applies to --auth irsa (not ${f.auth})`);
  if (f['host-network'] && f.auth !== 'node') throw usageError(`--host-network only applies to --auth node (not ${f.auth})`);
  if (f['irsa-role-arn']) validateRoleArn(f['irsa-role-arn']);
  if (f['role-arn']) validateRoleArn(f['role-arn']);
  excludeMatcher(f['exclude-namespace']);
  validateSelector('--namespace-selector', f['namespace-selector']);
  const warnings = [...checkSchedule(f.schedule).warnings];
  if (f['host-network']) {
    warnings.push('--host-network puts the job on the node\'s network: it cannot meet the restricted (or baseline) Pod Security Standard, so its namespace must allow privileged pods');
  }
  return warnings;
}

/** Keys for --auth keys must outlive the job: session credentials expire within hours. */
export function checkLongLived(creds: { sessionToken?: string; expiration?: Date }): void {
  if (creds.sessionToken || creds.expiration) {
    throw new UserError(
      'TemporaryCredentials',
      '--auth keys found temporary (session) credentials, which would expire and break the job',
      'use an IAM user\'s access key (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --profile), or --auth irsa / pod-identity',
    );
  }
}
