// The refresh engine: the one piece of code that writes pull secrets, run by `kubectl ecr login` on a
// laptop and by the in-cluster CronJob alike. Per namespace: write the Secret (read, merge, write
// with the read's resourceVersion, never delete-then-create), then add it to service accounts
// (append only). Each namespace succeeds or fails on its own.
import { PatchStrategy, setHeaderOptions, type CoreV1Api, type V1Secret, type V1ServiceAccount } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import type { RegistryToken } from '../aws/tokens.js';
import { UserError } from '../cli/errors.js';
import { debug } from '../cli/log.js';
import { apiFailure, call, describeFailure, isConflict, isNotFound } from '../kube/api.js';
import { ANNOTATIONS, FIELD_MANAGER, LABEL_INSTALL, LABEL_MANAGED_BY, MANAGED_BY, isManaged, splitList } from '../names.js';
import { DOCKER_CONFIG_KEY, encodeDockerConfig, mergeDockerConfig, parseDockerConfig } from './dockerconfig.js';

const log = debug('refresh');
const SECRET_TYPE = 'kubernetes.io/dockerconfigjson';
const MAX_CONFLICT_RETRIES = 5;

export type DryRun = 'none' | 'client' | 'server';
export type SecretOutcome = 'created' | 'updated' | 'unchanged' | 'failed';

export interface RefreshRequest {
  secretName: string;
  namespaces: string[];
  tokens: RegistryToken[];
  serviceAccounts: string[];
  /** ARN of the AWS principal, recorded on the Secret. */
  identity?: string;
  /** install-cron's --name, recorded as a label. */
  install?: string;
  /** Take over a same-named Secret kubectl-ecr does not manage. */
  force?: boolean;
  dryRun?: DryRun;
  concurrency?: number;
}

export interface NamespaceResult {
  namespace: string;
  secret: SecretOutcome;
  /** Service accounts this run added the secret to. */
  attached: string[];
  /** Service accounts that already referenced it. */
  alreadyAttached: string[];
  /** Set when the Secret was replaced because its type could not change in place (--force). */
  replacedType?: string;
  error?: { code: string; message: string };
  /** The Secret as written (or as it would be, for --dry-run=client), token redacted. */
  object?: V1Secret;
}

export async function refresh(
  core: CoreV1Api,
  req: RefreshRequest,
  onResult?: (r: NamespaceResult) => void,
): Promise<NamespaceResult[]> {
  const limit = pLimit(req.concurrency ?? 8);
  const known = await prefetch(core, req);
  // Results are reported in the order the namespaces were given, each as soon as it and every one
  // before it are done, so output is stable however the concurrent writes finish.
  const done: Array<NamespaceResult | undefined> = [];
  let reported = 0;
  return Promise.all(
    req.namespaces.map((ns, i) =>
      limit(async () => {
        const result = await refreshNamespace(core, req, ns, known);
        done[i] = result;
        while (done[reported]) onResult?.(done[reported++]!);
        return result;
      }),
    ),
  );
}

/**
 * What exists, read in one list per kind across namespaces instead of a get per namespace. An
 * identity that may not list cluster-wide (the refresher with per-namespace Roles) reads per
 * namespace instead. null marks an object known to be absent.
 */
interface Known {
  secrets?: Map<string, V1Secret | null>;
  accounts?: Map<string, V1ServiceAccount | null>;
}

async function prefetch(core: CoreV1Api, req: RefreshRequest): Promise<Known> {
  if (req.namespaces.length < 2) return {};
  // Every (namespace, name) we will look at starts as absent; what a list returns fills it in.
  const index = <T extends { metadata?: { namespace?: string; name?: string } }>(names: string[], items: T[]) => {
    const map = new Map<string, T | null>();
    for (const ns of req.namespaces) for (const name of names) map.set(`${ns}/${name}`, null);
    for (const item of items) map.set(`${item.metadata?.namespace}/${item.metadata?.name}`, item);
    return map;
  };
  try {
    const byName = `metadata.name=${req.secretName}`;
    const secrets = await call('list secrets', () => core.listSecretForAllNamespaces({ fieldSelector: byName }));
    const accounts: V1ServiceAccount[] = [];
    for (const name of req.serviceAccounts) {
      const list = await call('list serviceaccounts', () => core.listServiceAccountForAllNamespaces({ fieldSelector: `metadata.name=${name}` }));
      accounts.push(...list.items);
    }
    log(`listed ${secrets.items.length} secret(s) and ${accounts.length} service account(s) in ${1 + req.serviceAccounts.length} call(s)`);
    return { secrets: index([req.secretName], secrets.items), accounts: index(req.serviceAccounts, accounts) };
  } catch (err) {
    if (apiFailure(err)?.code !== 403) throw err;
    log('not allowed to list across namespaces; reading per namespace');
    return {};
  }
}

async function refreshNamespace(core: CoreV1Api, req: RefreshRequest, namespace: string, known: Known): Promise<NamespaceResult> {
  const result: NamespaceResult = { namespace, secret: 'failed', attached: [], alreadyAttached: [] };
  try {
    const { accounts, missing } = await readServiceAccounts(core, namespace, req.serviceAccounts, known);
    const needs = accounts.filter((sa) => !references(sa, req.secretName)).map((sa) => sa.metadata!.name!);
    result.alreadyAttached = accounts.map((sa) => sa.metadata!.name!).filter((n) => !needs.includes(n));

    const written = await writeSecret(core, req, namespace, needs, known);
    Object.assign(result, written);
    if (missing.length > 0) {
      // Checked after the write: in a namespace that does not exist, the write says so plainly.
      result.error = {
        code: 'ServiceAccountNotFound',
        message: `${missing.map((n) => `serviceaccount/${n}`).join(', ')} not found; create it, or choose with --service-account or --no-service-account`,
      };
    }

    const failedAttach: string[] = [];
    for (const name of needs) {
      try {
        const read = accounts.find((sa) => sa.metadata?.name === name);
        if (await attach(core, namespace, name, req.secretName, req.dryRun ?? 'none', read)) result.attached.push(name);
        else result.alreadyAttached.push(name);
      } catch (err) {
        failedAttach.push(name);
        result.error = { code: 'AttachFailed', message: `cannot add the secret to serviceaccount/${name}: ${describeFailure(err)}` };
      }
    }
    // The Secret recorded every account it was about to be added to; take back those that failed,
    // so that `uninstall --purge` detaches exactly what kubectl-ecr attached.
    if (failedAttach.length > 0 && (req.dryRun ?? 'none') === 'none') {
      await forgetAttachments(core, namespace, req.secretName, failedAttach).catch(() => undefined);
    }
  } catch (err) {
    result.error = namespaceError(err, namespace);
  }
  log(`${namespace}: secret ${result.secret}${result.error ? ` (${result.error.code})` : ''}`);
  return result;
}

async function readServiceAccounts(
  core: CoreV1Api,
  namespace: string,
  names: string[],
  known: Known,
): Promise<{ accounts: V1ServiceAccount[]; missing: string[] }> {
  const accounts: V1ServiceAccount[] = [];
  const missing: string[] = [];
  for (const name of names) {
    const listed = known.accounts?.get(`${namespace}/${name}`);
    if (listed !== undefined) {
      if (listed) accounts.push(listed);
      else missing.push(name);
      continue;
    }
    try {
      accounts.push(await call('read serviceaccount', () => core.readNamespacedServiceAccount({ name, namespace })));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      missing.push(name);
    }
  }
  return { accounts, missing };
}

function references(sa: V1ServiceAccount, secretName: string): boolean {
  return (sa.imagePullSecrets ?? []).some((ref) => ref.name === secretName);
}

/** The Secret we want, given what exists (or undefined). Labels, annotations and other auths kept. */
export function desiredSecret(req: RefreshRequest, namespace: string, existing: V1Secret | undefined, attaching: string[]): V1Secret {
  const redact = req.dryRun === 'client';
  const merged = mergeDockerConfig(parseDockerConfig(existing?.data?.[DOCKER_CONFIG_KEY]), req.tokens, redact);
  const previous = existing?.metadata?.annotations ?? {};
  const hosts = new Set([...splitList(previous[ANNOTATIONS.registries]), ...req.tokens.map((t) => t.registry.host)]);
  const expiries = req.tokens.map((t) => t.expiresAt.getTime());
  // Registries recorded earlier but not refreshed now keep their tokens, so the secret's earliest
  // expiry may still be the one recorded before.
  const refreshed = new Set(req.tokens.map((t) => t.registry.host));
  const previousExpiry = Date.parse(previous[ANNOTATIONS.expiresAt] ?? '');
  if (splitList(previous[ANNOTATIONS.registries]).some((h) => !refreshed.has(h)) && Number.isFinite(previousExpiry)) {
    expiries.push(previousExpiry);
  }
  const attached = new Set([...splitList(previous[ANNOTATIONS.attachedTo]), ...attaching]);

  const annotations: Record<string, string> = {
    ...previous,
    [ANNOTATIONS.registries]: [...hosts].sort().join(','),
    [ANNOTATIONS.issuedAt]: new Date().toISOString(),
    [ANNOTATIONS.expiresAt]: new Date(Math.min(...expiries)).toISOString(),
  };
  if (attached.size > 0) annotations[ANNOTATIONS.attachedTo] = [...attached].sort().join(',');
  if (req.identity) annotations[ANNOTATIONS.identity] = req.identity;

  const sameType = existing?.type === SECRET_TYPE;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: req.secretName,
      namespace,
      labels: {
        ...existing?.metadata?.labels,
        [LABEL_MANAGED_BY]: MANAGED_BY,
        ...(req.install ? { [LABEL_INSTALL]: req.install } : {}),
      },
      annotations,
      ...(existing && sameType ? { resourceVersion: existing.metadata?.resourceVersion } : {}),
    },
    type: SECRET_TYPE,
    data: { ...(sameType ? existing?.data : {}), [DOCKER_CONFIG_KEY]: encodeDockerConfig(merged) },
  };
}

async function writeSecret(
  core: CoreV1Api,
  req: RefreshRequest,
  namespace: string,
  attaching: string[],
  known: Known,
): Promise<Pick<NamespaceResult, 'secret' | 'object' | 'replacedType'>> {
  const name = req.secretName;
  const dryRun = req.dryRun ?? 'none';
  const serverDryRun = dryRun === 'server' ? 'All' : undefined;

  for (let attempt = 0; ; attempt++) {
    // The listed copy serves the first attempt; after a conflict, only a fresh read will do.
    const listed = attempt === 0 ? known.secrets?.get(`${namespace}/${name}`) : undefined;
    const existing = listed !== undefined ? (listed ?? undefined) : await readSecret(core, namespace, name);
    if (existing && !isManaged(existing.metadata?.labels) && !req.force) {
      throw new UserError(
        'SecretNotManaged',
        `secret/${name} exists and is not managed by kubectl-ecr`,
        existing.type === SECRET_TYPE
          ? 'pass --force to take it over (its other registries are kept), or choose another --secret-name'
          : `it is of type ${existing.type}; pass --force to replace it (a Secret's type cannot change in place, so it is deleted and recreated), or choose another --secret-name`,
      );
    }
    const body = desiredSecret(req, namespace, existing, attaching);
    const shown = redacted(req, namespace, existing, attaching, body);
    try {
      if (!existing) {
        if (dryRun !== 'client') await create(core, body, serverDryRun);
        return { secret: 'created', object: shown };
      }
      if (existing.type !== SECRET_TYPE) {
        // Only reached with --force: the type is immutable, so this is the one delete, and it is
        // followed at once by the create. The user asked for it and is told.
        if (dryRun !== 'client') {
          await call('delete secret', () => core.deleteNamespacedSecret({ name, namespace, dryRun: serverDryRun, body: { preconditions: { resourceVersion: existing.metadata?.resourceVersion } } }));
          if (dryRun === 'none') await create(core, body, undefined);
        }
        return { secret: 'created', object: shown, replacedType: existing.type };
      }
      if (unchanged(existing, body)) return { secret: 'unchanged', object: shown };
      if (dryRun !== 'client') await call('replace secret', () => core.replaceNamespacedSecret({ name, namespace, body, fieldManager: FIELD_MANAGER, dryRun: serverDryRun }));
      return { secret: 'updated', object: shown };
    } catch (err) {
      const f = apiFailure(err);
      const raced = isConflict(err) || (f?.code === 404 && f.kind === 'secrets');
      if (!raced || attempt >= MAX_CONFLICT_RETRIES) throw err;
      log(`${namespace}: secret changed while writing (${f?.reason}), retrying`);
    }
  }
}

/**
 * Create through server-side apply rather than POST: an apply names the object in its URL, so the
 * in-cluster refresher's Role can limit even creation to the one secret name.
 */
async function create(core: CoreV1Api, body: V1Secret, dryRun: string | undefined): Promise<void> {
  const { name, namespace } = body.metadata as { name: string; namespace: string };
  await call('create secret', () =>
    core.patchNamespacedSecret(
      { name, namespace, body, fieldManager: FIELD_MANAGER, dryRun },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    ),
  );
}

function redacted(req: RefreshRequest, ns: string, existing: V1Secret | undefined, attaching: string[], body: V1Secret): V1Secret {
  const shown = req.dryRun === 'client' ? body : desiredSecret({ ...req, dryRun: 'client' }, ns, existing, attaching);
  shown.metadata!.annotations![ANNOTATIONS.issuedAt] = body.metadata!.annotations![ANNOTATIONS.issuedAt];
  delete shown.metadata!.resourceVersion;
  return shown;
}

function unchanged(existing: V1Secret, body: V1Secret): boolean {
  const strip = (a: Record<string, string> | undefined) => {
    const { [ANNOTATIONS.issuedAt]: _issued, ...rest } = a ?? {};
    return JSON.stringify(Object.entries(rest).sort());
  };
  return (
    existing.data?.[DOCKER_CONFIG_KEY] === body.data?.[DOCKER_CONFIG_KEY] &&
    strip(existing.metadata?.annotations) === strip(body.metadata?.annotations) &&
    JSON.stringify(Object.entries(existing.metadata?.labels ?? {}).sort()) === JSON.stringify(Object.entries(body.metadata?.labels ?? {}).sort())
  );
}

async function readSecret(core: CoreV1Api, namespace: string, name: string): Promise<V1Secret | undefined> {
  try {
    return await call('read secret', () => core.readNamespacedSecret({ name, namespace }));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * Add the secret to a service account's imagePullSecrets. The list is atomic (a strategic-merge
 * patch would replace it), so: read, append, replace with the read's resourceVersion, retry on
 * conflict. Returns false when it was already there.
 */
async function attach(
  core: CoreV1Api,
  namespace: string,
  name: string,
  secretName: string,
  dryRun: DryRun,
  read?: V1ServiceAccount,
): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    const sa = attempt === 0 && read ? structuredClone(read) : await call('read serviceaccount', () => core.readNamespacedServiceAccount({ name, namespace }));
    if (references(sa, secretName)) return false;
    if (dryRun === 'client') return true;
    sa.imagePullSecrets = [...(sa.imagePullSecrets ?? []), { name: secretName }];
    try {
      await call('replace serviceaccount', () =>
        core.replaceNamespacedServiceAccount({ name, namespace, body: sa, fieldManager: FIELD_MANAGER, dryRun: dryRun === 'server' ? 'All' : undefined }),
      );
      return true;
    } catch (err) {
      if (!isConflict(err) || attempt >= MAX_CONFLICT_RETRIES) throw err;
    }
  }
}

async function forgetAttachments(core: CoreV1Api, namespace: string, secretName: string, names: string[]): Promise<void> {
  const secret = await call('read secret', () => core.readNamespacedSecret({ name: secretName, namespace }));
  const annotations = secret.metadata?.annotations ?? {};
  const kept = splitList(annotations[ANNOTATIONS.attachedTo]).filter((n) => !names.includes(n));
  if (kept.length > 0) annotations[ANNOTATIONS.attachedTo] = kept.join(',');
  else delete annotations[ANNOTATIONS.attachedTo];
  await call('replace secret', () => core.replaceNamespacedSecret({ name: secretName, namespace, body: secret, fieldManager: FIELD_MANAGER }));
}

function namespaceError(err: unknown, namespace: string): { code: string; message: string } {
  if (err instanceof UserError) return { code: err.code, message: err.line() };
  const f = apiFailure(err);
  if (f?.code === 404 && f.kind === 'namespaces') {
    return { code: 'NamespaceNotFound', message: `namespace "${namespace}" does not exist` };
  }
  if (f?.code === 403) return { code: 'Forbidden', message: f.message };
  return { code: f ? f.reason || `HTTP${f.code}` : 'Error', message: describeFailure(err) };
}
