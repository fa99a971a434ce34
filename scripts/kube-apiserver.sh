#!/usr/bin/env bash
# Build the real Kubernetes API server (and etcd) the integration tests start on loopback, with Go from
# the Go module proxy: scripts/kube-apiserver/ is a tiny module whose main runs app.NewAPIServerCommand().
# Cached under .cache/kube/bin/: a second run only checks. The first build took 8 min here (7 of them
# kube-apiserver, on 2 shared cores) and left ~3 GB of Go module and build caches,
# so it runs once, with two compile jobs. Without Go this prints why and leaves the tests to skip
# (they fail instead when CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
KUBE_VERSION=v1.34.4   # keep equal to the require line in scripts/kube-apiserver/go.mod
ETCD_VERSION=v3.6.16   # keep equal to scripts/etcd/go.mod
# etcd is built rather than taken from Debian: bookworm's etcd-server is 3.4.23, below the 3.5.24 that
# kubeadm 1.34 requires of an external etcd (it ships 3.6.5); the Knative backend suite did pass on it.
bin=.cache/kube/bin
mkdir -p "$bin"

if ! command -v go >/dev/null 2>&1; then
  [ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null 2>&1; then
  echo "==> kube-apiserver: Go is not installed; tests that need a real API server will skip (fail under CI=true)"
  exit 0
fi

export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false -trimpath"
export CGO_ENABLED=0

build() {  # build NAME VERSION DIR LDFLAGS PACKAGE
  local name=$1 version=$2 dir=$3 ldflags=$4 package=$5
  local out="$PWD/$bin/$name" stamp="$PWD/$bin/$name.version"
  if [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  echo "==> building $name $version with $(go env GOVERSION) (once; cached in $bin)"
  local start=$SECONDS
  (cd "$dir" && go mod download && go build -p 2 -ldflags "$ldflags" -o "$out.tmp" "$package") &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    kill -0 "$pid" 2>/dev/null && echo "    ... still compiling $name ($((SECONDS - start)) s)"
  done
  wait "$pid"
  mv "$out.tmp" "$out"
  echo "$version" >"$stamp"
  echo "    $name built in $((SECONDS - start)) s"
}

vpkg=k8s.io/component-base/version
major=${KUBE_VERSION#v}; minor=${major#*.}; major=${major%%.*}; minor=${minor%%.*}
build kube-apiserver "$KUBE_VERSION" scripts/kube-apiserver \
  "-s -w -X $vpkg.gitVersion=$KUBE_VERSION -X $vpkg.gitMajor=$major -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean" .

# etcd from its own module: scripts/etcd/go.mod lists go.etcd.io/etcd/server/v3 as a tool at ETCD_VERSION.
build etcd "$ETCD_VERSION" scripts/etcd "-s -w" go.etcd.io/etcd/server/v3
