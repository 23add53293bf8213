#!/usr/bin/env bash
# Builds the two images with podman, tagged as docker-compose.yml names them (make images):
#   llm-service/model-service:0.1.0-cpu   the cpu variant (the cpu and scale profiles)
#   llm-service/gateway:0.1.0
# on local base images made from Debian packages (scripts/build-base-images.sh), since these machines
# reach no container registry. BASES=official builds on the Dockerfiles' defaults (the official
# images) instead. Prints each build's time and each image's size.
#
#   scripts/build-images.sh [gateway] [model-service]     # default both
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/podman-env.sh

BASES=${BASES:-local}
# PyTorch's CPU wheel index, as docker-compose.yml's default; where it cannot be reached the cpu
# variant takes torch from PyPI (with CUDA's libraries, less triton): see the Dockerfile.
TORCH_INDEX_URL=${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}
MODEL_IMAGE=llm-service/model-service:0.1.0-cpu
GATEWAY_IMAGE=llm-service/gateway:0.1.0
mkdir -p .cache/images

model_args=(--build-arg TORCH_VARIANT=cpu)
gateway_args=()
if [ "$BASES" = local ]; then
  scripts/build-base-images.sh
  model_args+=(--build-arg PYTHON_IMAGE=localhost/llm-base/python:3.11-bookworm)
  gateway_args+=(--build-arg NODE_IMAGE=localhost/llm-base/node:18-bookworm
                 --build-arg MAVEN_IMAGE=localhost/llm-base/maven:3.8-jdk17-bookworm
                 --build-arg JRE_IMAGE=localhost/llm-base/jre:21-trixie)
fi
if [ -n "$TORCH_INDEX_URL" ]; then
  if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=15)' \
      "$TORCH_INDEX_URL" 2>/dev/null; then
    echo "==> images: CPU-only torch from $TORCH_INDEX_URL"
  else
    echo "==> images: $TORCH_INDEX_URL cannot be reached: torch from PyPI (CUDA's libraries stay in the image)"
    TORCH_INDEX_URL=
  fi
fi
model_args+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")

# A machine whose HTTPS goes through a proxy that re-signs it trusts that proxy's CA
# (/usr/local/share/ca-certificates); so must pip, npm and Maven inside the build. Its CA store is
# lent to the build steps as read-only mounts, with pip and npm pointed at it: nothing of it is
# copied into an image.
trust=()
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > .cache/images/pip.conf
  printf 'cafile=/etc/ssl/certs/ca-certificates.crt\n' > .cache/images/npmrc
  trust=(-v /etc/ssl/certs:/etc/ssl/certs:ro -v "$PWD/.cache/images/pip.conf:/etc/pip.conf:ro"
         -v "$PWD/.cache/images/npmrc:/etc/npmrc:ro" -v "$PWD/.cache/images/npmrc:/usr/etc/npmrc:ro")
  echo "==> images: the build steps trust this machine's CA certificates (mounted, not copied)"
fi

build() {  # image dockerfile args...: one timed build
  local image=$1 dockerfile=$2 start
  shift 2
  echo "==> images: building $image"
  start=$(date +%s)
  # The host's network: pip, npm and Maven reach their registries as the host does.
  podman build --format docker --network host "${trust[@]}" -f "$dockerfile" -t "$image" "$@" . >".cache/images/$(basename "${image%%:*}").log" 2>&1 \
    || { tail -n 40 ".cache/images/$(basename "${image%%:*}").log"; exit 1; }
  echo "$image built in $(( $(date +%s) - start )) s"
}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gateway model-service)
for target in "${targets[@]}"; do
  case $target in
    gateway) build "$GATEWAY_IMAGE" java-gateway/Dockerfile "${gateway_args[@]}" ;;
    model-service) build "$MODEL_IMAGE" python-model-service/Dockerfile "${model_args[@]}" ;;
    *) echo "unknown image: $target" >&2; exit 2 ;;
  esac
done
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "llm-service/|llm-base/"
