// Container image references, as the distribution spec writes them: [REGISTRY/]PATH[:TAG][@DIGEST].
// Only as much parsing as moving an image between registries needs. Pure.
import { UserError } from '../cli/errors.js';

const invalid = (message: string, hint?: string) => new UserError('InvalidImage', message, hint);

export interface ImageRef {
  /** Registry host (with port), or undefined when the reference names none (Docker Hub). */
  registry?: string;
  path: string;
  tag?: string;
  digest?: string;
}

const PATH = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$/;

export function parseImage(ref: string): ImageRef | undefined {
  let rest = ref.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) return undefined;
  }
  let registry: string | undefined;
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  // The first component is a registry when it looks like a host: a dot, a port, or localhost.
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first;
    rest = rest.slice(slash + 1);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return undefined;
  }
  if (!PATH.test(rest)) return undefined;
  return { registry, path: rest, tag, digest };
}

export function formatImage(r: ImageRef): string {
  return `${r.registry ? `${r.registry}/` : ''}${r.path}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

const DOCKER_HUB = new Set([undefined, 'docker.io', 'index.docker.io', 'registry-1.docker.io']);

/**
 * The same repository path, tag and digest, from another registry. Docker Hub's spellings of one
 * image (nginx, library/nginx, docker.io/library/nginx) all become REGISTRY/nginx: official images
 * lose the implied "library/", as a mirror names them.
 */
export function moveImage(ref: string, registry: string): string {
  const parsed = parseImage(ref);
  if (!parsed) throw invalid(`"${ref}" is not an image reference kubectl-ecr can move`);
  const path = DOCKER_HUB.has(parsed.registry) ? parsed.path.replace(/^library\//, '') : parsed.path;
  return formatImage({ ...parsed, path, registry });
}

export interface ImageOverride {
  container: string;
  image: string;
}

/** --image CONTAINER=REPOSITORY[:TAG|@DIGEST]; a reference without a registry takes --registry's. */
export function parseImageOverride(value: string, registry?: string): ImageOverride {
  const eq = value.indexOf('=');
  const container = eq > 0 ? value.slice(0, eq) : '';
  const image = eq > 0 ? value.slice(eq + 1) : '';
  const ref = parseImage(image);
  if (!container || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(container) || !ref) {
    throw invalid(`--image "${value}" is not CONTAINER=REPOSITORY:TAG`, 'e.g. --image app=123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.4.2');
  }
  if (!ref.tag && !ref.digest) {
    throw invalid(`--image "${value}" names no tag or digest`, 'pin it, e.g. app=REPOSITORY:1.4.2 or app=REPOSITORY@sha256:...');
  }
  return { container, image: formatImage({ ...ref, registry: ref.registry ?? registry }) };
}
