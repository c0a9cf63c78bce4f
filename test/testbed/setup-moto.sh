#!/usr/bin/env bash
# Creates (once) a virtualenv with moto 5.2.5 and Flask for test/testbed/moto_server.py, in a cache
# outside the work tree. It is rebuilt only when moto-requirements.txt changes, so a second run is
# instant. Prints the venv's python path on stdout; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MOTO_VERSION=5.2.5
VENV="${KUBECTL_ECR_CACHE:-$HOME/.cache/kubectl-ecr}/moto-$MOTO_VERSION/venv"
PY="$VENV/bin/python"
REQS="$here/moto-requirements.txt"
want=$(sha256sum "$REQS" | cut -d' ' -f1)
log() { printf '[testbed] %s\n' "$*" >&2; }

ready() { [ -x "$PY" ] && [ "$(cat "$VENV/.testbed-stamp" 2>/dev/null)" = "$want" ]; }
if ready; then echo "$PY"; exit 0; fi

# One install at a time (parallel test processes on a fresh machine): wait for the other.
mkdir -p "$(dirname "$VENV")"
exec 9>"$(dirname "$VENV")/.lock"
flock 9
if ready; then echo "$PY"; exit 0; fi

# The first python3 that can make a venv with pip in it (pyenv's, else Debian's with python3-venv).
base=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import venv, ensurepip' 2>/dev/null; then base=$p; break; fi
done
[ -n "$base" ] || { log "error: no python3 with the venv and ensurepip modules; install python3-venv (Debian)"; exit 1; }

log "creating $VENV with $("$base" --version 2>&1) and installing moto $MOTO_VERSION"
rm -rf "$VENV"
"$base" -m venv "$VENV"
"$PY" -m pip install --quiet --disable-pip-version-check -r "$REQS" >&2
"$PY" -c 'import moto, flask, flask_cors' >&2
echo "$want" >"$VENV/.testbed-stamp"
log "moto $MOTO_VERSION ready in $VENV"
echo "$PY"
