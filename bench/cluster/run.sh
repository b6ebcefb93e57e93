#!/usr/bin/env bash
# bench/cluster: container start -> all workers ALIVE, sparkvisor's image vs the same image with a
# bitnami-style shell entrypoint, in one run. Usage: bench/cluster/run.sh [ROUNDS] (default 3).
set -euo pipefail
cd "$(dirname "$0")/../.."
image="$(docker/build-image.sh)"
exec python3 bench/cluster/bench.py "$image" "$image" "${1:-3}"
