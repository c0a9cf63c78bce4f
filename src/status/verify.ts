// --verify: do the stored credentials really work? A registry's /v2/ answers 200 to good basic
// auth and 401 to bad, as ECR does. Only loopback-safe reads: nothing is pulled or pushed.
import type { SecretState, VerifyResult } from './model.js';
import { isEcrHost } from './judge.js';

// SHORTCOMING: these requests use Node's fetch, which ignores HTTPS_PROXY; behind a proxy that is
// the only way out, --verify reports "unreachable" until it goes through net/proxy's agents.
export async function verifySecrets(secrets: SecretState[], timeoutMs = 10_000): Promise<VerifyResult[]> {
  const checks = secrets.filter((s) => s.present).flatMap((s) => s.hosts.filter(isEcrHost).map((host) => ({ s, host })));
  return Promise.all(
    checks.map(async ({ s, host }) => {
      const c = s.credentials[host];
      const base = { namespace: s.namespace, secret: s.name, host };
      try {
        const res = await fetch(`https://${host}/v2/`, {
          headers: { authorization: `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` },
          signal: AbortSignal.timeout(timeoutMs),
        });
        await res.body?.cancel();
        if (res.status === 200) return { ...base, result: 'accepted' as const };
        if (res.status === 401 || res.status === 403) return { ...base, result: 'rejected' as const, detail: `HTTP ${res.status}` };
        return { ...base, result: 'unreachable' as const, detail: `HTTP ${res.status}` };
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
        return { ...base, result: 'unreachable' as const, detail: cause };
      }
    }),
  );
}
