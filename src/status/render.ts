// status as a person reads it: kubectl-style tables (upper-case headers, columns padded apart),
// one per kind of thing, and a verdict line.
import { paint } from '../cli/output.js';
import { formatDuration, type Finding } from './judge.js';
import type { InstallState, SecretState, VerifyResult } from './model.js';

/** Columns as kubectl prints them: left-aligned, three spaces apart, no borders. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i] - visible(c).length + 3))).join('').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

const visible = (s: string) => s.replace(/\u001b\[\d+m/g, '');

function status(f: Finding | undefined): string {
  if (!f) return '';
  const word = f.severity === 'ok' ? 'OK' : f.severity === 'warning' ? 'Warning' : 'Error';
  return paint(f.severity === 'ok' ? 'green' : f.severity === 'warning' ? 'yellow' : 'red', word, process.stdout);
}

const ago = (iso: string | undefined, now: number) => (iso ? `${formatDuration(now - Date.parse(iso))} ago` : '<none>');

export function renderStatus(
  data: { installs: InstallState[]; secrets: SecretState[] },
  findings: Finding[],
  verified: VerifyResult[] | undefined,
  wide: boolean,
  now: number,
): string {
  const find = (kind: Finding['kind'], ns: string, subject: string) => findings.find((f) => f.kind === kind && f.namespace === ns && f.subject === subject);
  const out: string[] = [];
  if (data.installs.length) {
    out.push(
      table(
        ['INSTALL', 'NAMESPACE', 'SCHEDULE', 'SUSPENDED', 'LAST SCHEDULE', 'LAST SUCCESS', 'ACTIVE', 'FAILED JOBS', 'STATUS', ...(wide ? ['MESSAGE'] : [])],
        data.installs.map((i) => {
          const f = find('install', i.namespace, i.name);
          return [i.name, i.namespace, i.schedule, String(i.suspended), ago(i.lastSchedule, now), ago(i.lastSuccess, now), String(i.active), String(i.failedJobs), status(f), ...(wide ? [f?.message ?? ''] : [])];
        }),
      ),
    );
  }
  const secrets = data.secrets.filter((s) => s.expectedOn.length > 0 || !s.present || s.managed);
  if (secrets.length) {
    out.push(
      table(
        ['NAMESPACE', 'SECRET', 'REGISTRIES', 'EXPIRES IN', 'SERVICE ACCOUNTS', 'STATUS', ...(wide ? ['MESSAGE'] : [])],
        secrets.map((s) => {
          const f = find('secret', s.namespace, s.name);
          const left = s.expiresAt ? Date.parse(s.expiresAt) - now : undefined;
          const expires = left === undefined ? '<unknown>' : left <= 0 ? 'expired' : formatDuration(left) + (s.expirySource === 'derived' ? ' (derived)' : '');
          const hosts = wide ? s.hosts.join(',') : s.hosts.length > 1 ? `${s.hosts[0]} +${s.hosts.length - 1}` : (s.hosts[0] ?? '<none>');
          return [s.namespace, s.present ? s.name : `${s.name} (missing)`, s.present ? hosts : '<none>', s.present ? expires : '<none>', s.referencedBy.join(',') || '<none>', status(f), ...(wide ? [f?.message ?? ''] : [])];
        }),
      ),
    );
  }
  const workloads = findings.filter((f) => f.kind === 'workload');
  if (workloads.length) {
    out.push(table(['NAMESPACE', 'WORKLOAD', 'STATUS', 'MESSAGE'], workloads.map((f) => [f.namespace, f.subject, status(f), f.message])));
  }
  if (verified?.length) {
    out.push(table(['NAMESPACE', 'SECRET', 'REGISTRY', 'VERIFY'], verified.map((v) => [v.namespace, v.secret, v.host, v.result + (v.detail ? ` (${v.detail})` : '')])));
  }
  return out.join('\n');
}
