#!/usr/bin/env bash
# Build the local base image for the sparkvisor Spark images without a registry:
# debootstrap a minimal Debian bookworm, add a headless Java 17 runtime and Python 3,
# then `docker import` the tree. Cached by tag: skipped when the image exists, unless --rebuild.
#
# Usage: docker/build-base-image.sh [--rebuild] [--tag IMAGE] [--mirror URL]
# Env:   SPARKVISOR_BASE_IMAGE (default sparkvisor-base:bookworm),
#        DEBIAN_MIRROR (default: the first deb.debian.org-style URI in this host's apt sources).
set -euo pipefail

tag="${SPARKVISOR_BASE_IMAGE:-sparkvisor-base:bookworm}"
rebuild=0
mirror="${DEBIAN_MIRROR:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        --rebuild) rebuild=1 ;;
        --tag) tag="$2"; shift ;;
        --mirror) mirror="$2"; shift ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "build-base-image: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

if [ "$rebuild" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "build-base-image: $tag exists (use --rebuild to rebuild)"
    exit 0
fi

for tool in debootstrap docker tar; do
    command -v "$tool" >/dev/null || { echo "build-base-image: $tool not found" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "build-base-image: debootstrap needs root" >&2; exit 1; }

# Reuse the mirror this host's apt already reaches (deb822 "URIs:" or one-line "deb URL").
if [ -z "$mirror" ]; then
    mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
        2>/dev/null | awk '/^URIs:/ && $2 !~ /security/ && !m {m=$2} /^deb / && $2 !~ /security/ && !m {m=$2}
                           END {print m}' || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"
security="${mirror%/debian}/debian-security"

root="$(mktemp -d /var/tmp/sparkvisor-base.XXXXXX)"
cleanup() {
    for m in proc sys dev/pts dev; do umount -l "$root/$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$root"
}
trap cleanup EXIT

echo "build-base-image: debootstrap bookworm from $mirror into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror"

cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
SOURCES

mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --bind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"

# procps: ps/pgrep for operators; python3-venv/pip: PySpark jobs and the notebook.
chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -ec '
    apt-get update
    mkdir -p /usr/share/man/man1
    apt-get install -y --no-install-recommends \
        openjdk-17-jre-headless python3 python3-pip python3-venv procps ca-certificates
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/share/doc/* /usr/share/man/*
'
: >"$root/etc/resolv.conf"
for m in proc sys dev; do umount -l "$root/$m"; done

java_home="$(cd "$root" && ls -d usr/lib/jvm/java-17-openjdk-* | head -n1)"
echo "build-base-image: importing as $tag (JAVA_HOME=/$java_home)"
tar -C "$root" --numeric-owner -c . | docker import \
    --change "ENV JAVA_HOME=/$java_home" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$tag"
echo "build-base-image: built $tag"
