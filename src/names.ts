// Names the cluster sees on everything kubectl-ecr writes. Later commands (status, uninstall) read
// these back, so they are a schema: change them only with a migration.

export const FIELD_MANAGER = 'kubectl-ecr';
export const DEFAULT_SECRET_NAME = 'ecr-registry';

export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'kubectl-ecr';
/** The install (install-cron --name) an object belongs to; absent for a plain `login`. */
export const LABEL_INSTALL = 'kubectl-ecr.io/install';

/**
 * The refresher's image: one repository, tagged with the CLI's exact version (0.1.0, no "v"), so
 * the job runs the same login code as the CLI that installed it. Built from the repository's
 * Dockerfile; install-cron --image overrides it (a mirror, a digest).
 */
export const IMAGE_REPOSITORY = 'ghcr.io/kubectl-ecr/kubectl-ecr';
export const DEFAULT_INSTALL_NAME = 'ecr-refresh';
export const DEFAULT_JOB_NAMESPACE = 'kubectl-ecr';
/** Numeric, so Kubernetes can verify runAsNonRoot without reading the image. */
export const IMAGE_UID = 65532;

const PREFIX = 'kubectl-ecr.io';
export const ANNOTATIONS = {
  /** Comma-separated registry hosts this secret holds tokens for. */
  registries: `${PREFIX}/registries`,
  /** RFC 3339 time the tokens were issued (the write that put them there). */
  issuedAt: `${PREFIX}/issued-at`,
  /** RFC 3339 time the earliest token in the secret expires. */
  expiresAt: `${PREFIX}/expires-at`,
  /** Comma-separated service accounts kubectl-ecr added this secret to; only those it added. */
  attachedTo: `${PREFIX}/attached-service-accounts`,
  /** ARN of the AWS principal whose tokens these are (not a secret; helps explain access). */
  identity: `${PREFIX}/identity`,
} as const;

/** A Secret name the API server will take (a DNS-1123 subdomain). */
export function validSecretName(name: string): boolean {
  return name.length <= 253 && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name);
}

export function isManaged(labels: Record<string, string> | undefined): boolean {
  return labels?.[LABEL_MANAGED_BY] === MANAGED_BY;
}

export function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
