// Judging what status gathered: is each install, secret and workload fit to pull from ECR now, and
// until when? Pure, so every state can be tested without a cluster.
import type { InstallState, PodSource, SecretState } from './model.js';

export type Severity = 'ok' | 'warning' | 'error';

export interface Finding {
  kind: 'install' | 'secret' | 'workload';
  namespace: string;
  subject: string;
  severity: Severity;
  message: string;
}

export const WARN_BEFORE_EXPIRY_MS = 2 * 3600_000;
const ECR_HOST = /^\d{12}\.dkr[.-]ecr(-fips)?\.[a-z0-9-]+\.[a-z0-9.]+$/;

export function isEcrHost(host: string): boolean {
  return ECR_HOST.test(host);
}

/** The registry host an image reference names (Docker Hub has none). */
export function imageHost(image: string): string | undefined {
  const slash = image.indexOf('/');
  const first = slash > 0 ? image.slice(0, slash) : '';
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : undefined;
}

export function judgeInstall(i: InstallState): Finding {
  const f = (severity: Severity, message: string): Finding => ({ kind: 'install', namespace: i.namespace, subject: i.name, severity, message });
  if (i.lastRun?.state === 'failed') return f('error', `the last run (job/${i.lastRun.job}) failed: ${i.lastRun.reason ?? 'unknown reason'}`);
  if (i.suspended) return f('warning', 'the CronJob is suspended: tokens will expire');
  if (!i.lastSuccess && !i.lastRun) return f('warning', 'no run has succeeded yet');
  return f('ok', i.lastRun?.state === 'running' ? 'a run is in progress' : 'the last run succeeded');
}

export function judgeSecret(s: SecretState, now: number): Finding {
  const f = (severity: Severity, message: string): Finding => ({ kind: 'secret', namespace: s.namespace, subject: s.name, severity, message });
  if (!s.present) return f('error', `secret/${s.name} is missing: run kubectl ecr login -n ${s.namespace}`);
  const expiry = expiryProblem(s, now);
  if (expiry?.severity === 'error') return f('error', expiry.message);
  const missing = s.expectedOn.filter((sa) => !s.referencedBy.includes(sa));
  if (missing.length) return f('error', `${missing.map((n) => `serviceaccount/${n}`).join(', ')} does not reference it`);
  if (expiry) return f('warning', expiry.message);
  return f('ok', s.expiresAt ? `valid for ${formatDuration(Date.parse(s.expiresAt) - now)}` : 'present');
}

function expiryProblem(s: SecretState, now: number): { severity: Severity; message: string } | undefined {
  if (!s.expiresAt) return undefined;
  const left = Date.parse(s.expiresAt) - now;
  if (left <= 0) return { severity: 'error', message: `the token expired ${formatDuration(-left)} ago` };
  if (left < WARN_BEFORE_EXPIRY_MS) return { severity: 'warning', message: `the token expires in ${formatDuration(left)}` };
  return undefined;
}

/**
 * Can this pod (or template) pull each of its ECR images? Follows what Kubernetes does: the pod's
 * own imagePullSecrets, or its service account's only when its own list is empty; then an `auths`
 * entry for exactly the image's host; then a token that has not expired.
 */
export function judgeWorkload(w: PodSource, secrets: Map<string, SecretState>, now: number): Finding {
  const subject = `${w.kind.toLowerCase()}/${w.name}`;
  const f = (severity: Severity, message: string): Finding => ({ kind: 'workload', namespace: w.namespace, subject, severity, message });
  const problems: Finding[] = [];
  const effective = w.ownSecrets.length > 0 ? w.ownSecrets : w.serviceAccountSecrets;
  const from = w.ownSecrets.length > 0 ? 'its own imagePullSecrets' : `serviceaccount/${w.serviceAccount}`;
  for (const host of [...new Set(w.images.map(imageHost).filter((h): h is string => Boolean(h && isEcrHost(h))))]) {
    const holding = effective.map((n) => secrets.get(`${w.namespace}/${n}`)).filter((s): s is SecretState => Boolean(s?.present));
    const match = holding.find((s) => s.hosts.includes(host));
    if (effective.length === 0) {
      problems.push(f('error', `pulls from ${host} with no pull secret (none in the template, none on serviceaccount/${w.serviceAccount})`));
    } else if (!match) {
      const hidden = w.ownSecrets.length > 0 && w.serviceAccountSecrets.some((n) => secrets.get(`${w.namespace}/${n}`)?.hosts.includes(host));
      const otherRegion = holding.flatMap((s) => s.hosts).find((h) => isEcrHost(h) && h.split('.')[0] === host.split('.')[0]);
      problems.push(
        f(
          'error',
          hidden
            ? `its own imagePullSecrets (${w.ownSecrets.join(', ')}) hide serviceaccount/${w.serviceAccount}'s, which has ${host}: add it to the template (kubectl ecr patch-deployment)`
            : otherRegion
              ? `needs ${host}, but ${from} only has ${otherRegion} (another region's host)`
              : `no pull secret from ${from} (${effective.join(', ')}) has an entry for ${host}`,
        ),
      );
    } else {
      const expiry = expiryProblem(match, now);
      if (expiry) problems.push(f(expiry.severity, `secret/${match.name} for ${host}: ${expiry.message}`));
    }
  }
  const worst = problems.find((p) => p.severity === 'error') ?? problems[0];
  if (w.waiting) {
    // What the kubelet said outranks a guess; a warning (a token still valid) cannot be the cause.
    const refused = /401|403|unauthori[sz]ed|forbidden|no basic auth credentials/i.test(w.waiting.message ?? '');
    const error = problems.find((p) => p.severity === 'error');
    const cause = error
      ? error.message
      : refused
        ? 'the registry refused the credentials: the token may be stale or the identity may lack ecr:BatchGetImage on the repository'
        : 'the pull secret looks right: check the repository and tag exist, and the identity\'s ECR permissions';
    return f('error', `${w.waiting.reason}: ${cause}`);
  }
  return worst ?? f('ok', `can pull (via ${from})`);
}

export function formatDuration(ms: number): string {
  const m = Math.round(ms / 60_000);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
}

export function overall(findings: Finding[]): Severity {
  if (findings.some((f) => f.severity === 'error')) return 'error';
  return findings.some((f) => f.severity === 'warning') ? 'warning' : 'ok';
}
