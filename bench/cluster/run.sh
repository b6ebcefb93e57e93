#!/usr/bin/env bash
# bench/cluster: container start -> all workers ALIVE, sparkvisor's image vs the same image with a
# bitnami-style shell entrypoint, in one run. Usage: bench/cluster/run.sh [ROUNDS] (default 3).
# bench/cluster/run.sh --compose [ROUNDS]: compose up of a master and two workers at once, for
# sparkvisor, a bitnami-style and an official-style (tini -s -- spark-class) entrypoint (compose.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
image="$(docker/build-image.sh)"
if [ "${1:-}" = --compose ]; then
    exec python3 bench/cluster/compose.py "$image" "${2:-3}"
fi
exec python3 bench/cluster/bench.py "$image" "$image" "${1:-3}"
