// Debug lines on stderr, off unless --debug or DEBUG=kubectl-ecr (or DEBUG=kubectl-ecr:MODULE,
// DEBUG=*) is set. Callers pass names and counts, never tokens, passwords or keys.

let forced = false;

export function enableDebug(): void {
  forced = true;
}

function enabled(module: string): boolean {
  if (forced) return true;
  const spec = process.env.DEBUG ?? '';
  return spec.split(/[\s,]+/).some((p) => {
    if (!p) return false;
    if (p === '*' || p === 'kubectl-ecr' || p === 'kubectl-ecr:*') return true;
    return p === `kubectl-ecr:${module}`;
  });
}

export function debugEnabled(): boolean {
  return enabled('*');
}

export function debug(module: string): (message: string) => void {
  return (message) => {
    if (enabled(module)) process.stderr.write(`debug ${module}: ${message}\n`);
  };
}
