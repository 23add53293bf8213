#!/usr/bin/env bash
# Builds local stand-ins for the official base images from Debian packages, for a machine that
# reaches Debian's archive but no container registry (podman and debootstrap: make setup-containers).
#
#   scripts/build-base-images.sh            # builds what is missing
#   scripts/build-base-images.sh --force    # builds everything again
#
# debootstrap makes a minimal Debian root (bookworm, and trixie for OpenJDK 21), podman imports it,
# and deploy/bases/Containerfile adds the packages of each stand-in. The images, all under
# localhost/llm-base/ (names in BASE_IMAGES below), are what `make images` passes to the
# Dockerfiles' base-image build arguments and what `make test-images` runs PostgreSQL, Redis and
# nginx from.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/podman-env.sh

force=false
[ "${1:-}" = --force ] && force=true
work=.cache/bases
mkdir -p "$work"

exists() { podman image exists "$1" && ! $force; }

rootfs_image() {  # suite -> localhost/llm-base/debian:suite
  local suite=$1 image=localhost/llm-base/debian:$1 root=$work/rootfs-$1
  if exists "$image"; then return; fi
  echo "==> base: debootstrap $suite (minbase)"
  rm -rf "$root"
  debootstrap --variant=minbase "$suite" "$root" >"$work/debootstrap-$suite.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap-$suite.log"; exit 1; }
  # Package lists and downloaded .debs are rebuilt by apt when needed; documentation is never read.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
  tar -C "$root" --numeric-owner -c . \
    | podman import --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' - "$image" >/dev/null
  rm -rf "$root"
}

rootfs_image bookworm
rootfs_image trixie

# target -> image name; keep in step with the Makefile's image targets and tests/test_images.py.
declare -A BASE_IMAGES=(
  [python]=localhost/llm-base/python:3.11-bookworm
  [node]=localhost/llm-base/node:18-bookworm
  [maven]=localhost/llm-base/maven:3.8-jdk17-bookworm
  [jre]=localhost/llm-base/jre:21-trixie
  [postgres]=localhost/llm-base/postgres:15-bookworm
  [redis]=localhost/llm-base/redis:7.0-bookworm
  [nginx]=localhost/llm-base/nginx:1.22-bookworm
)
for target in python node maven jre postgres redis nginx; do
  image=${BASE_IMAGES[$target]}
  if exists "$image"; then continue; fi
  echo "==> base: $image"
  # The host's network: the build's apt-get reaches the archive as the host does.
  podman build -q --network host --target "$target" -t "$image" -f deploy/bases/Containerfile deploy/bases >/dev/null
done
podman images --filter reference='localhost/llm-base/*' --format '{{.Repository}}:{{.Tag}} {{.Size}}'
