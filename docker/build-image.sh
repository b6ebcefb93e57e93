#!/usr/bin/env bash
# Build the sparkvisor Spark image from this checkout: the agent binary (static musl when the target is
# installed, else the glibc build), the base image (cached by tag), a pyspark/notebook wheelhouse
# (cached), then `docker build` tagged by a content hash so an unchanged tree is never rebuilt.
#
# Usage: docker/build-image.sh [--rebuild-base]
# Env:   SPARKVISOR_IMAGE       also tag the result with this name (default sparkvisor-spark:latest)
#        SPARKVISOR_BASE_IMAGE  base image (default sparkvisor-base:bookworm, built when missing)
#        SPARKVISOR_WHEELS      auto (default: build a wheelhouse with the host's pip, fall back to
#                               PyPI inside the build) | none (always install from PyPI in the build)
# Prints only the image name (name:content-hash) on stdout; progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 3>&1 1>&2

image="${SPARKVISOR_IMAGE:-sparkvisor-spark:latest}"
repo="${image%%:*}"
base="${SPARKVISOR_BASE_IMAGE:-sparkvisor-base:bookworm}"
wheels_mode="${SPARKVISOR_WHEELS:-auto}"
pyspark_version="$(sed -n 's/^ARG PYSPARK_VERSION=//p' docker/Dockerfile)"
notebook_version="$(sed -n 's/^ARG NOTEBOOK_VERSION=//p' docker/Dockerfile)"
base_args=()
[ "${1:-}" = "--rebuild-base" ] && base_args+=(--rebuild)

# 1. The agent binary.
musl=x86_64-unknown-linux-musl
if rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
    echo "build-image: cargo build --release --target $musl"
    cargo build --quiet --release --bins --target "$musl"
    bin="target/$musl/release/sparkvisor"
else
    echo "build-image: musl target not installed, using the glibc build (base is bookworm too)"
    cargo build --quiet --release --bins
    bin="target/release/sparkvisor"
fi

# 2. The base image (cached by tag).
SPARKVISOR_BASE_IMAGE="$base" docker/build-base-image.sh "${base_args[@]}"

# 3. The wheelhouse: lets build containers install without reaching PyPI (e.g. behind a TLS proxy
#    whose CA only the host trusts). Cached: rebuilt only when the pinned wheels are missing.
wheels=target/docker/wheels
mkdir -p "$wheels"
pip_no_index=
if [ "$wheels_mode" = auto ]; then
    if ! ls "$wheels"/pyspark-"$pyspark_version"-*.whl "$wheels"/notebook-"$notebook_version"-*.whl >/dev/null 2>&1; then
        echo "build-image: building wheelhouse (pyspark $pyspark_version, notebook $notebook_version)"
        python3 -m pip wheel --quiet --wheel-dir "$wheels" \
            "pyspark==$pyspark_version" "notebook==$notebook_version" || true
    fi
    if ls "$wheels"/pyspark-"$pyspark_version"-*.whl "$wheels"/notebook-"$notebook_version"-*.whl >/dev/null 2>&1; then
        pip_no_index=1
    else
        echo "build-image: no complete wheelhouse; the build installs from PyPI"
    fi
fi

# 4. The build context, staged (hard links: the wheelhouse is large).
ctx=target/docker/context
rm -rf "$ctx"
mkdir -p "$ctx/roles" "$ctx/templates" "$ctx/wheels"
cp docker/Dockerfile "$ctx/Dockerfile"
cp "$bin" "$ctx/sparkvisor"
[ -d roles ] && cp -r roles/. "$ctx/roles/"
[ -d templates ] && cp -r templates/. "$ctx/templates/"
[ -n "$pip_no_index" ] && cp -al "$wheels"/. "$ctx/wheels/"

# 5. Content hash: context files (the wheelhouse by name) + the base image id.
hash="$( (cd "$ctx" && find . -path ./wheels -prune -o -type f -print0 | sort -z | xargs -0 sha256sum
         ls "$ctx/wheels"; docker image inspect --format '{{.Id}}' "$base") | sha256sum | cut -c1-12)"
tagged="$repo:h-$hash"
if docker image inspect "$tagged" >/dev/null 2>&1; then
    echo "build-image: $tagged is up to date"
else
    echo "build-image: docker build -> $tagged"
    DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}" docker build \
        --build-arg "BASE_IMAGE=$base" --build-arg "PIP_NO_INDEX=$pip_no_index" \
        -t "$tagged" "$ctx"
fi
docker tag "$tagged" "$image"
echo "build-image: tagged $image"
echo "$tagged" >&3
