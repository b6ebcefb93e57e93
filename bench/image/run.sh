#!/usr/bin/env bash
# bench/image: the image's size by layer (docker history), its total on disk and compressed (a gzip
# of `docker save`, about what a registry stores and a node pulls), where the venv's bytes go, and
# the published sizes of the images users pull today, cited with their source (we pull nothing).
# Usage: bench/image/run.sh [IMAGE]   (default: build this checkout with docker/build-image.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
image="${1:-$(docker/build-image.sh)}"
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

if [ -n "${1:-}" ]; then
    echo "image $image (given on the command line)"
else
    echo "image $image (built from commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- docker || echo ', docker/ modified'))"
fi
echo
echo "size by layer (docker history, newest first; 0-byte metadata steps left out):"
docker history --no-trunc --format '{{.Size}}\t{{.CreatedBy}}' "$image" |
    awk -F '\t' '$1 != "0B" { cmd = $2; gsub(/[ \t]+/, " ", cmd); sub(/^\/bin\/sh -c (#\(nop\) )?/, "", cmd)
                             printf "  %10s  %s\n", $1, substr(cmd, 1, 100) }'
size="$(docker image inspect --format '{{.Size}}' "$image")"
echo
echo "total on disk (uncompressed): $(mb "$size")"
# The layers as a registry would store them: gzip of each layer tar, approximated by one gzip of
# the saved image (layer tars are concatenated; gzip at the registries' default level 6).
compressed="$(docker save "$image" | gzip -6 | wc -c)"
echo "compressed (gzip -6 of docker save): $(mb "$compressed")"
echo
echo "the largest parts of the image (du inside it):"
docker run --rm --user 0 --entrypoint sh "$image" -c '
    sp="$(ls -d /opt/spark-python/lib/python3*/site-packages)"
    # One du per path: a single du counts a directory inside an earlier argument only once.
    # The jars live in the Spark home /opt/spark (the pyspark package links to them).
    for p in /usr/lib/jvm /usr/lib/python3* /usr/share/locale /opt/spark-python /opt/spark /opt/spark/jars "$sp"/*; do
        du -sm "$p" 2>/dev/null
    done | sort -rn | head -n 16' | awk '{ printf "  %6s MB  %s\n", $1, $2 }'
echo
# Published figures of the peers, as their publishers or maintainers state them (see
# docs/benchmarks.md for what each number is and where it is from).
echo "peers (published, not measured here):"
echo "  apache/spark-py built by Spark 4.1.1's own Dockerfiles: 2.24 GB on disk, 818 MB content (apache/spark PR #54107)"
echo "image: $(mb "$size") on disk, $(mb "$compressed") compressed"
