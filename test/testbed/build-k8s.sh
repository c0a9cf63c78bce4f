#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kubectl and etcd from the Go module proxy into a
# cache outside the work tree, keyed by version, so only the first run on a machine pays (10-25 min
# on 2 cores). Prints the cache's bin directory on stdout; progress goes to stderr.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.8}" # the version k8s.io/apiserver of that release requires
CACHE="${KUBECTL_ECR_CACHE:-$HOME/.cache/kubectl-ecr}/k8s-$K8S_VERSION"
BIN="$CACHE/bin"
TOOLS=(kube-apiserver kube-controller-manager kubectl etcd)

have_all() { for t in "${TOOLS[@]}"; do [ -x "$BIN/$t" ] || return 1; done; }
if have_all; then echo "$BIN"; exit 0; fi

# One build at a time per version (parallel test processes on a fresh machine): wait for the other.
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if have_all; then echo "$BIN"; exit 0; fi

command -v go >/dev/null || { echo "error: go is not installed; install Go 1.26 or newer" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
log() { printf '[testbed] %s\n' "$*" >&2; }

work="$CACHE/src"
rm -rf "$work" && mkdir -p "$work" "$BIN"
cd "$work"

log "resolving k8s.io/kubernetes $K8S_VERSION"
modfile=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$modfile")
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
staging_version="v0.${K8S_VERSION#v1.}"

{
  echo "module kubectl-ecr/testbed"
  echo
  echo "go 1.26.0"
  echo
  for m in $staging; do
    # The sample modules are imported by no binary built here and are not always served: a local
    # empty module stands in for them.
    case "$m" in
      k8s.io/sample-*)
        mkdir -p "stub/${m#k8s.io/}"
        echo "module $m" >"stub/${m#k8s.io/}/go.mod"
        echo "replace $m => ./stub/${m#k8s.io/}"
        ;;
      *) echo "replace $m => $m $staging_version" ;;
    esac
  done
} >go.mod
cat >tools.go <<'GO'
//go:build tools

package tools
GO

log "resolving dependencies (downloads ~170 modules the first time; log in $work/go-get.log)"
go get "k8s.io/kubernetes@$K8S_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >"$work/go-get.log" 2>&1 ||
  { tail -n 30 "$work/go-get.log" >&2; log "go get failed"; exit 1; }

log "compiling ${TOOLS[*]} (a cold build takes 10-25 minutes on 2 cores; a line a minute)"
vpkg() { echo "-X $1.gitVersion=$K8S_VERSION -X $1.gitMajor=1 -X $1.gitMinor=$minor -X $1.gitTreeState=clean"; }
ldflags="-s -w $(vpkg k8s.io/component-base/version) $(vpkg k8s.io/client-go/pkg/version)"
(
  while sleep 60; do log "still compiling... ($(find "$(go env GOCACHE)" -newer go.mod -type f 2>/dev/null | wc -l) objects built)"; done
) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
go build -trimpath -ldflags "$ldflags" -o "$BIN/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl \
  go.etcd.io/etcd/server/v3 >&2
# go names the binary of go.etcd.io/etcd/server/v3 after the element before /v3: "server".
mv "$BIN/server" "$BIN/etcd"
have_all || { log "build finished but binaries are missing in $BIN"; exit 1; }
log "built into $BIN"
echo "$BIN"
