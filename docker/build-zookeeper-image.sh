#!/usr/bin/env bash
# Build the ZooKeeper image (docker/Dockerfile.zookeeper) from a built Spark image: the agent, roles
# and templates come from it. Tagged by a content hash of both images' inputs, so an unchanged tree is
# never rebuilt.
#
# Usage: docker/build-zookeeper-image.sh [SPARK_IMAGE]   (default: docker/build-image.sh's output)
# Env:   SPARKVISOR_ZK_IMAGE    also tag the result with this name (default sparkvisor-zookeeper:latest)
#        SPARKVISOR_BASE_IMAGE  base image (default sparkvisor-base:bookworm)
# Prints only the image name (name:content-hash) on stdout; progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 3>&1 1>&2

spark_image="${1:-$(docker/build-image.sh)}"
image="${SPARKVISOR_ZK_IMAGE:-sparkvisor-zookeeper:latest}"
repo="${image%%:*}"
base="${SPARKVISOR_BASE_IMAGE:-sparkvisor-base:bookworm}"

hash="$( (docker image inspect --format '{{.Id}}' "$spark_image" "$base"
          sha256sum docker/Dockerfile.zookeeper) | sha256sum | cut -c1-12)"
tagged="$repo:h-$hash"
if docker image inspect "$tagged" >/dev/null 2>&1; then
    echo "build-zookeeper-image: $tagged is up to date"
else
    echo "build-zookeeper-image: docker build -> $tagged"
    ctx="$(mktemp -d)"
    trap 'rm -rf "$ctx"' EXIT
    DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}" docker build \
        --build-arg "BASE_IMAGE=$base" --build-arg "SPARK_IMAGE=$spark_image" \
        -f docker/Dockerfile.zookeeper -t "$tagged" "$ctx"
fi
docker tag "$tagged" "$image"
echo "build-zookeeper-image: tagged $image"
echo "$tagged" >&3
