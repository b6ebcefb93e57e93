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
# name==version words (the Spark Connect client's dependencies).
read -r -a connect_deps <<<"$(sed -n 's/^ARG CONNECT_DEPS="\(.*\)"$/\1/p' docker/Dockerfile)"
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
#    whose CA only the host trusts). Resolved for the base image's Python (not the host's), cached:
#    rebuilt only when the pinned wheels are missing.
base_python="$(docker run --rm --entrypoint python3 "$base" -c 'import platform; print(platform.python_version())')"
wheels="target/docker/wheels-py$base_python"
mkdir -p "$wheels"
have_wheels() {
    ls "$wheels"/pyspark-"$pyspark_version"-*.whl "$wheels"/notebook-"$notebook_version"-*.whl >/dev/null 2>&1 || return 1
    local dep name
    for dep in "${connect_deps[@]}"; do
        name="${dep%%==*}"
        ls "$wheels"/"${name//-/_}"-"${dep#*==}"-*.whl >/dev/null 2>&1 || return 1
    done
}
pip_no_index=
if [ "$wheels_mode" = auto ]; then
    if ! have_wheels; then
        echo "build-image: building wheelhouse for Python $base_python (pyspark $pyspark_version, notebook $notebook_version)"
        # pyspark is published as an sdist only: build its wheel here (pure Python, no deps pulled),
        # then download binary wheels of everything else for the base's interpreter.
        ls "$wheels"/pyspark-"$pyspark_version"-*.whl >/dev/null 2>&1 ||
            python3 -m pip wheel --quiet --no-deps --wheel-dir "$wheels" "pyspark==$pyspark_version" || true
        python3 -m pip download --quiet --dest "$wheels" --only-binary=:all: \
            --python-version "$base_python" --implementation cp --abi "cp$(echo "$base_python" | cut -d. -f1,2 | tr -d .)" \
            --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any \
            "py4j" "notebook==$notebook_version" "${connect_deps[@]}" || rm -f "$wheels"/notebook-*.whl
    fi
    if have_wheels; then
        pip_no_index=1
    else
        echo "build-image: no complete wheelhouse; the build installs from PyPI"
    fi
fi

# 4. The build context, staged (hard links: the wheelhouse is large).
ctx=target/docker/context
rm -rf "$ctx"
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc/sparkvisor/roles" \
    "$ctx/rootfs/etc/sparkvisor/templates" "$ctx/wheels"
cp docker/Dockerfile "$ctx/Dockerfile"
cp docker/slim-venv.py "$ctx/slim-venv.py"
cp "$bin" "$ctx/rootfs/usr/local/bin/sparkvisor"
[ -d roles ] && cp -r roles/. "$ctx/rootfs/etc/sparkvisor/roles/"
[ -d templates ] && cp -r templates/. "$ctx/rootfs/etc/sparkvisor/templates/"
# The compatibility files: bitnami's and the official image's entry points, /opt/decom.sh,
# install_packages (docs/migrating.md).
cp -a docker/rootfs/. "$ctx/rootfs/"
# KubeDirector's config package (kubedirector/spark-app.yaml names it with a file:// URL), packed
# reproducibly so that an unchanged tree keeps its content hash.
mkdir -p "$ctx/rootfs/opt/sparkvisor/kubedirector" target/docker/appconfig
rm -rf target/docker/appconfig/sparkvisor-spark
cp -r kubedirector/appconfig target/docker/appconfig/sparkvisor-spark
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C target/docker/appconfig \
    -cf - sparkvisor-spark | gzip -n > "$ctx/rootfs/opt/sparkvisor/kubedirector/appconfig.tgz"
[ -n "$pip_no_index" ] && cp -al "$wheels"/. "$ctx/wheels/"

# 5. Content hash: context files (the wheelhouse by name) + the base image id.
hash="$( (cd "$ctx" && find . -path ./wheels -prune -o -type f -print0 | sort -z | xargs -0 sha256sum
         ls wheels; docker image inspect --format '{{.Id}}' "$base") | sha256sum | cut -c1-12)"
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
