#!/usr/bin/env bash
# bench/launch: Spark daemon start -> ready and restart -> ready in the sparkvisor image, the agent
# launching the JVM directly (`launch: java`, the built-in roles' default) against the same roles
# with `launch: spark-class`, alternating, in one run. Prints medians, spread and the ratios.
# Usage: bench/launch/run.sh [--cds | --jit] [ROUNDS] (default 5); --cds: direct launch with and
# without an AppCDS archive per daemon instead (bench.py says how the archives are made); --jit: the
# master's and worker's C1-only default against SPARKVISOR_DAEMON_JIT=full. Needs Docker; builds the image when needed.
set -euo pipefail
cd "$(dirname "$0")/../.."
image="$(docker/build-image.sh)"
roles="$(mktemp -d /tmp/perf-bench-launch-roles.XXXXXX)"
trap 'rm -rf "$roles"' EXIT
cp roles/*.yaml "$roles/"
# The same roles, each spark-class service told to run the script as written.
sed -i 's/^    restart: always$/    restart: always\n    launch: spark-class/' "$roles/master.yaml" "$roles/worker.yaml"
for f in master worker; do grep -q 'launch: spark-class' "$roles/$f.yaml"; done
chmod -R a+rX "$roles"
mode=()
case "${1:-}" in --cds|--jit) mode=("$1"); shift ;; esac
exec python3 bench/launch/bench.py "$image" "$roles" "${1:-5}" "${mode[@]}"
