#!/usr/bin/env bash
# PAR's two images (the Dockerfile's `runtime` and `platform` targets), built on this machine with
# buildah from base images made here: no image registry is needed (none is reachable here).
#
#   scripts/images.sh [build]       base images when missing, then each target whose inputs changed
#   scripts/images.sh archive DIR   build, then save both images into DIR as docker-archive tarballs
#                                   (kept when already there), for `ctr -n k8s.io images import FILE`
#   scripts/images.sh names         the image names the current inputs give (builds nothing)
#   scripts/images.sh bases         the base images only
#   scripts/images.sh prune         remove this script's runtime/platform tags other than the current
#                                   ones (`podman image prune` then reclaims their layer cache)
#
# stdout carries only NAME=VALUE lines (eval-able), e.g.
#   PYTHON_IMAGE=dev.local/par/python:3.11-bookworm-<stamp>   UV_IMAGE=dev.local/par/uv:0.13.9
#   RUNTIME_IMAGE=dev.local/par/runtime:0.1.0-<hash>          PLATFORM_IMAGE=dev.local/par/platform:0.1.0-<hash>
#   RUNTIME_ARCHIVE=DIR/par-runtime-0.1.0-<hash>.tar          PLATFORM_ARCHIVE=...   (archive only)
# stderr: progress and each image's size (uncompressed; gzipped layers, as a registry would store them).
#
# <hash> covers every build input (Dockerfile, .dockerignore, pyproject.toml, uv.lock, README.md, the
# source packages, examples/, the base images, the index build args): a target is rebuilt exactly when one changes,
# and skipped when its tag exists. `buildah bud --layers` reuses the dependency layers across rebuilds.
#
# Base images, cached under .cache/images/ by a stamp of their recipe (delete it to refresh):
#   PYTHON_IMAGE  debootstrap'd Debian bookworm (minbase, security updates) + python3.11 + ca-certificates
#   UV_IMAGE      FROM scratch, /uv from the uv wheel at the version uv.lock pins (its sha256 checked)
#
# Environment:
#   PAR_CA_BUNDLE      PEM bundle given to the build as the secret `ca` (default: $SSL_CERT_FILE, else
#                      /etc/ssl/certs/ca-certificates.crt): uv trusts only its own roots, so a network that
#                      intercepts TLS needs its CA here. PAR_CA_BUNDLE=none gives none.
#   UV_INDEX_URL, PIP_INDEX_URL   a package index (PyPI mirror or proxy), passed as build args
#   PAR_DEBIAN_MIRROR  (default http://deb.debian.org/debian), PAR_DEBIAN_SECURITY (…/debian-security)
#   PAR_IMAGES_CACHE   (default .cache/images)
# Installs buildah, podman, debootstrap and curl with apt-get when missing. Needs root.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${PAR_IMAGES_CACHE:-$ROOT/.cache/images}"
MIRROR="${PAR_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY="${PAR_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"
SUITE=bookworm
PY_PACKAGES="python3.11,python3-minimal,ca-certificates"
REPO=dev.local/par

log() { echo "==> [$(date +%T)] $*" >&2; }
die() { echo "images.sh: $*" >&2; exit 1; }

ensure_tools() {
  local missing=() tool
  for tool in buildah podman debootstrap curl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "needs ${missing[*]} (apt-get install as root)"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
}

image_exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }

lock_value() { # the locked version of a package, or the wheel URL and sha256 for this machine
  python3 - "$ROOT/uv.lock" "$@" <<'EOF'
import platform, sys, tomllib
lock = tomllib.load(open(sys.argv[1], "rb"))
(pkg,) = [p for p in lock["package"] if p["name"] == sys.argv[2]]
if sys.argv[3] == "version":
    print(pkg["version"])
else:  # the static (musl) wheel: it runs FROM scratch and in any base image
    tag = f"musllinux_1_1_{platform.machine()}"
    (wheel,) = [w for w in pkg["wheels"] if w["url"].endswith(f"-{tag}.whl")]
    print(wheel["url"], wheel["hash"].removeprefix("sha256:"))
EOF
}

# --- base images ---------------------------------------------------------------------------------

python_image_name() {
  # The recipe is make_python_image: any change to it (or to the suite/packages) is a new stamp.
  PY_STAMP=$( { declare -f make_python_image; echo "$SUITE $PY_PACKAGES"; } | sha256sum | cut -c1-10)
  PYTHON_IMAGE="$REPO/python:3.11-$SUITE-$PY_STAMP"
}

python_image() {
  python_image_name
  image_exists "$PYTHON_IMAGE" || make_python_image "$CACHE/python-$SUITE-$PY_STAMP.tar"
}

make_python_image() {
  local tarball=$1 rootfs ctr
  if [ ! -s "$tarball" ]; then
    rootfs="$CACHE/rootfs.partial"
    rm -rf "$rootfs"
    log "debootstrap $SUITE (minbase + $PY_PACKAGES) from $MIRROR"
    debootstrap --variant=minbase --include="$PY_PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >&2
    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
EOF
    log "applying $SUITE-updates and -security"
    chroot "$rootfs" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -y -qq upgrade' >&2
    chroot "$rootfs" apt-get clean
    # What an image needs no copy of: package lists, docs, man pages, translations, logs.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
      "$rootfs"/usr/share/locale/* "$rootfs"/tmp/* "$rootfs"/root/.cache
    tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    rm -rf "$rootfs"
  fi
  log "importing $tarball as $PYTHON_IMAGE"
  ctr=$(buildah from scratch)
  buildah add --quiet "$ctr" "$tarball" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd '["python3"]' \
    --label "org.opencontainers.image.description=Debian $SUITE minbase + $PY_PACKAGES" "$ctr"
  buildah commit --quiet --rm "$ctr" "$PYTHON_IMAGE" >/dev/null
}

uv_image() {
  local version url sha wheel ctr dir
  version=$(lock_value uv version)
  UV_IMAGE="$REPO/uv:$version"
  image_exists "$UV_IMAGE" && return 0
  read -r url sha < <(lock_value uv wheel)
  wheel="$CACHE/${url##*/}"
  if [ ! -s "$wheel" ] || ! echo "$sha  $wheel" | sha256sum --check --status; then
    log "downloading ${url##*/}"
    curl -fsSL --retry 3 -o "$wheel.partial" "$url"
    echo "$sha  $wheel.partial" | sha256sum --check --status || die "$url: sha256 differs from uv.lock"
    mv "$wheel.partial" "$wheel"
  fi
  dir=$(mktemp -d)
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
    "$wheel" "uv-$version.data/scripts/uv" "$dir"
  install -m 0755 "$dir/uv-$version.data/scripts/uv" "$dir/uv"
  ctr=$(buildah from scratch)
  buildah copy --quiet "$ctr" "$dir/uv" /uv >/dev/null
  buildah config --entrypoint '["/uv"]' "$ctr"
  buildah commit --quiet --rm "$ctr" "$UV_IMAGE" >/dev/null
  rm -rf "$dir"
  log "made $UV_IMAGE"
}

# --- the two targets -----------------------------------------------------------------------------

inputs_hash() {
  (
    cd "$ROOT"
    sha256sum Dockerfile .dockerignore pyproject.toml uv.lock README.md
    find runtime gateway eventing serving registry cli examples -type f \
      ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    echo "$PYTHON_IMAGE $UV_IMAGE index=${UV_INDEX_URL:-} pip-index=${PIP_INDEX_URL:-}"
  ) | sha256sum | cut -c1-12
}

names() {
  local version
  version=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
    "$ROOT/pyproject.toml")
  TAG="$version-$(inputs_hash)"
  RUNTIME_IMAGE="$REPO/runtime:$TAG"
  PLATFORM_IMAGE="$REPO/platform:$TAG"
}

ca_bundle() {
  local ca="${PAR_CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
  [ "$ca" != none ] && [ -s "$ca" ] && echo "$ca"
  return 0
}

build_target() {
  local target=$1 image=$2 ca started
  if image_exists "$image"; then
    log "$image exists (inputs unchanged)"
    return 0
  fi
  # --force-rm: buildah 1.28 otherwise leaves a working container behind for the FROM-only `uv` stage
  # of every build, and for each stage of a failed one.
  local args=(--layers --force-rm --pull=never --network=host --target "$target"
    --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" --build-arg "UV_IMAGE=$UV_IMAGE")
  [ -n "${UV_INDEX_URL:-}" ] && args+=(--build-arg "UV_INDEX_URL=$UV_INDEX_URL")
  [ -n "${PIP_INDEX_URL:-}" ] && args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
  ca=$(ca_bundle)
  [ -n "$ca" ] && args+=(--secret "id=ca,src=$ca")
  log "building $image (target $target)"
  started=$(date +%s)
  buildah bud "${args[@]}" -f "$ROOT/Dockerfile" -t "$image" "$ROOT" >&2
  log "built $image in $(($(date +%s) - started)) s"
}

report_size() { # uncompressed size, and the gzipped layers' total (cached by image ID)
  local image=$1 id bytes gz dir
  id=$(buildah inspect --type image --format '{{.FromImageID}}' "$image")
  bytes=$(podman image inspect --format '{{.Size}}' "$image")
  mkdir -p "$CACHE/sizes"
  if [ -s "$CACHE/sizes/$id" ]; then
    gz=$(cat "$CACHE/sizes/$id")
  else
    dir=$(mktemp -d)
    buildah push --quiet --compression-format gzip "$image" "oci:$dir/oci" >/dev/null
    gz=$(python3 - "$dir/oci" <<'EOF'
import json, pathlib, sys
oci = pathlib.Path(sys.argv[1])
blob = lambda d: json.loads((oci / "blobs" / d.replace(":", "/")).read_text())
(desc,) = json.loads((oci / "index.json").read_text())["manifests"]
print(sum(layer["size"] for layer in blob(desc["digest"])["layers"]))
EOF
)
    rm -rf "$dir"
    echo "$gz" >"$CACHE/sizes/$id"
  fi
  log "$(printf '%-52s %4d MB uncompressed, %4d MB gzipped' "$image" $((bytes / 1000000)) $((gz / 1000000)))"
}

archive() { # DIR: docker-archive tarballs named by tag, written once
  local dir=$1 image name file
  mkdir -p "$dir"
  for image in "$RUNTIME_IMAGE" "$PLATFORM_IMAGE"; do
    name=${image#"$REPO"/}
    file="$dir/par-${name%%:*}-${name#*:}.tar"
    if [ ! -s "$file" ]; then
      log "saving $image to $file"
      rm -f "$file.partial"
      buildah push --quiet "$image" "docker-archive:$file.partial:$image" >/dev/null
      mv "$file.partial" "$file"
    fi
    [ "$image" = "$RUNTIME_IMAGE" ] && echo "RUNTIME_ARCHIVE=$file" || echo "PLATFORM_ARCHIVE=$file"
  done
}

prune() { # every dev.local/par/{runtime,platform} tag but the current two
  local image
  buildah images --format '{{.Name}}:{{.Tag}}' | grep -E "^$REPO/(runtime|platform):" | sort -u |
    while read -r image; do
      if [ "$image" != "$RUNTIME_IMAGE" ] && [ "$image" != "$PLATFORM_IMAGE" ]; then
        log "removing $image"
        buildah rmi "$image" >/dev/null
      fi
    done
}

main() {
  local command=${1:-build}
  case "$command" in
    build | bases | names | prune) ;;
    archive) [ -n "${2:-}" ] || die "usage: scripts/images.sh archive DIR" ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; return 0 ;;
    *) die "unknown command $command (build, archive DIR, names, bases, prune)" ;;
  esac
  mkdir -p "$CACHE"
  if [ "$command" != names ]; then
    [ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, and buildah's system storage the cluster imports from)"
    ensure_tools
    exec 9>"$CACHE/lock" # one build at a time on this machine (a test session and cluster.sh)
    flock -w 3600 9 || die "another scripts/images.sh still holds $CACHE/lock after an hour"
    python_image
    uv_image
  else
    python_image_name
    UV_IMAGE="$REPO/uv:$(lock_value uv version)"
  fi
  echo "PYTHON_IMAGE=$PYTHON_IMAGE"
  echo "UV_IMAGE=$UV_IMAGE"
  [ "$command" = bases ] && return 0
  names
  echo "RUNTIME_IMAGE=$RUNTIME_IMAGE"
  echo "PLATFORM_IMAGE=$PLATFORM_IMAGE"
  [ "$command" = names ] && return 0
  [ "$command" = prune ] && { prune; return 0; }
  build_target runtime "$RUNTIME_IMAGE"
  build_target platform "$PLATFORM_IMAGE"
  report_size "$RUNTIME_IMAGE"
  report_size "$PLATFORM_IMAGE"
  [ "$command" = archive ] && archive "$2"
  return 0
}

main "$@"
