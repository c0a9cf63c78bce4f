// The `.dockerconfigjson` a kubernetes.io/dockerconfigjson Secret holds, built from ECR tokens and
// merged into what a Secret already has. Pure functions: no I/O.
import type { RegistryToken } from '../aws/tokens.js';

export interface AuthEntry {
  username?: string;
  password?: string;
  auth?: string;
  [key: string]: unknown;
}

export interface DockerConfig {
  auths: Record<string, AuthEntry>;
  [key: string]: unknown;
}

export const DOCKER_CONFIG_KEY = '.dockerconfigjson';
export const REDACTED = '[redacted]';

export function authEntry(token: RegistryToken, redact = false): AuthEntry {
  if (redact) return { username: token.username, password: REDACTED, auth: REDACTED };
  const password = token.password.reveal();
  const auth = Buffer.from(`${token.username}:${password}`).toString('base64');
  return { username: token.username, password, auth };
}

/** Parse a Secret's base64 `.dockerconfigjson`; anything unreadable counts as empty. */
export function parseDockerConfig(base64: string | undefined): DockerConfig {
  if (!base64) return { auths: {} };
  try {
    const parsed = JSON.parse(Buffer.from(base64, 'base64').toString('utf8')) as DockerConfig;
    if (parsed && typeof parsed === 'object' && parsed.auths && typeof parsed.auths === 'object') return parsed;
    return { ...parsed, auths: {} };
  } catch {
    return { auths: {} };
  }
}

/**
 * Our hosts replaced, every other registry's entry and any other top-level key kept. Redacting
 * (for printing) hides every entry's credentials, not only ours: the kept ones are secrets too.
 */
export function mergeDockerConfig(existing: DockerConfig, tokens: RegistryToken[], redact = false): DockerConfig {
  const auths = { ...existing.auths };
  if (redact) {
    for (const [host, entry] of Object.entries(auths)) {
      auths[host] = Object.fromEntries(Object.entries(entry).map(([k, v]) => [k, k === 'username' || k === 'email' ? v : REDACTED]));
    }
  }
  for (const token of tokens) auths[token.registry.host] = authEntry(token, redact);
  return { ...existing, auths };
}

export function encodeDockerConfig(config: DockerConfig): string {
  return Buffer.from(JSON.stringify(config)).toString('base64');
}
