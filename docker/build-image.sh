#!/usr/bin/env bash
# Build the sparkvisor Spark image from this checkout: the agent binary (static musl when the target is
# installed, else the glibc build), the base image (cached by tag), a pyspark/notebook wheelhouse
# (cached), then `docker build` tagged by a content hash so an unchanged tree is never rebuilt.
#
# Usage: docker/build-image.sh [--rebuild-base] [--pyspark-version 4.X.Y]
#        --pyspark-version      the Spark release to install (default: the Dockerfile's PYSPARK_VERSION;
#                               any 4.x on PyPI); passed to the build as PYSPARK_VERSION
# Env:   SPARKVISOR_IMAGE       also tag the result with this name (default sparkvisor-spark:latest)
#        SPARKVISOR_PYSPARK_VERSION  the same as --pyspark-version
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
pyspark_version="${SPARKVISOR_PYSPARK_VERSION:-$(sed -n 's/^ARG PYSPARK_VERSION=//p' docker/Dockerfile)}"
notebook_version="$(sed -n 's/^ARG NOTEBOOK_VERSION=//p' docker/Dockerfile)"
# name==version words (the Spark Connect client's dependencies).
read -r -a connect_deps <<<"$(sed -n 's/^ARG CONNECT_DEPS="\(.*\)"$/\1/p' docker/Dockerfile)"
base_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --rebuild-base) base_args+=(--rebuild) ;;
        --pyspark-version) pyspark_version="${2:-}"; shift ;;
        --pyspark-version=*) pyspark_version="${1#*=}" ;;
        *) echo "build-image: unknown argument '$1' (usage: $0 [--rebuild-base] [--pyspark-version 4.X.Y])"; exit 64 ;;
    esac
    shift
done
# The image's layout (a venv from the pyspark package, Java 17, the launcher's 4.x module options)
# is Spark 4's: an earlier or later major release is refused before anything is built.
if ! [[ "$pyspark_version" =~ ^4\.[0-9]+\.[0-9]+$ ]]; then
    echo "build-image: pyspark version '$pyspark_version' is not a Spark 4.x release (4.MINOR.PATCH)"
    exit 78
fi

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
#    filled only when the pinned wheels are missing. One pool per Python holds the wheels of every
#    pyspark version built so far side by side; the build context gets only the closure of this
#    build's requirements (resolved offline from the pool, below).
base_python="$(docker run --rm --entrypoint python3 "$base" -c 'import platform; print(platform.python_version())')"
wheels="target/docker/wheels-py$base_python"
mkdir -p "$wheels"
# pip's view of the base image's interpreter (its version, ABI and platforms), not the host's.
target_python=(--only-binary=:all: --python-version "$base_python" --implementation cp
    --abi "cp$(echo "$base_python" | cut -d. -f1,2 | tr -d .)"
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any)
requirements=("pyspark==$pyspark_version" "notebook==$notebook_version" "${connect_deps[@]}")
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
        # then download binary wheels of everything else for the base's interpreter (pyspark's own
        # wheel is named so that its py4j bound applies).
        ls "$wheels"/pyspark-"$pyspark_version"-*.whl >/dev/null 2>&1 ||
            python3 -m pip wheel --quiet --no-deps --wheel-dir "$wheels" "pyspark==$pyspark_version" || true
        pyspark_wheel="$(ls "$wheels"/pyspark-"$pyspark_version"-*.whl 2>/dev/null | head -n 1)"
        python3 -m pip download --quiet --dest "$wheels" "${target_python[@]}" \
            ${pyspark_wheel:+"$pyspark_wheel"} "notebook==$notebook_version" "${connect_deps[@]}" ||
            rm -f "$wheels"/notebook-"$notebook_version"-*.whl
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
# Only this build's closure goes into the context (hard links): pip resolves the requirements
# offline against the pool, as the build will, and reports the wheels it would install.
if [ -n "$pip_no_index" ]; then
    report="$(mktemp)"
    python3 -m pip install --quiet --disable-pip-version-check --dry-run --ignore-installed \
        --no-index --find-links "$wheels" "${target_python[@]}" --target "$ctx/no-such-dir" \
        --report "$report" "${requirements[@]}"
    python3 -c 'import json, sys, urllib.parse
for item in json.load(open(sys.argv[1]))["install"]:
    print(urllib.parse.unquote(item["download_info"]["url"].removeprefix("file://")))' "$report" |
        while IFS= read -r wheel; do ln "$wheel" "$ctx/wheels/"; done
    rm -f "$report"
fi

# 5. Content hash: context files (the wheelhouse by name), the pyspark version (a build argument)
#    and the base image id.
hash="$( (cd "$ctx" && find . -path ./wheels -prune -o -type f -print0 | sort -z | xargs -0 sha256sum
         ls wheels; echo "pyspark $pyspark_version"
         docker image inspect --format '{{.Id}}' "$base") | sha256sum | cut -c1-12)"
tagged="$repo:h-$hash"
if docker image inspect "$tagged" >/dev/null 2>&1; then
    echo "build-image: $tagged is up to date"
else
    echo "build-image: docker build -> $tagged"
    DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}" docker build \
        --build-arg "BASE_IMAGE=$base" --build-arg "PIP_NO_INDEX=$pip_no_index" \
        --build-arg "PYSPARK_VERSION=$pyspark_version" \
        -t "$tagged" "$ctx"
fi
docker tag "$tagged" "$image"
echo "build-image: tagged $image"
echo "$tagged" >&3
