#!/usr/bin/env bash
# bench/terasort: a TeraSort-style PySpark job (terasort.py) on a master and two workers
#   (a) bare:          plain processes on the host (the image's Spark version, installed in a venv)
#   (b) sparkvisor:    the sparkvisor image, containers with docker/compose.yaml's limits
#   (c) bitnami-style: the same image with a bash entrypoint and stock Spark defaults, same limits
# alternating, the driver on the host in every case. Prints job time, executor peak memory against
# the container limit, OOM kills, and as its last line
#   terasort: containers/bare X.XX, ours/bitnami-style Y.YY
# Usage: bench/terasort/run.sh [--stock-job] [RECORDS] [ROUNDS]   (default 1000000 records = 100 MB,
#        1 round); --stock-job: the two container setups only, the job without executor memory and
#        cores (Spark's defaults), to show what each setup's workers offer under the same limits
set -euo pipefail
cd "$(dirname "$0")/../.."
image="$(docker/build-image.sh)"
version="$(sed -n 's/^ARG PYSPARK_VERSION=//p' docker/Dockerfile)"
venv="target/bench/spark-$version"
if [ ! -x "$venv/bin/spark-submit" ]; then
    echo "terasort: installing pyspark $version for the bare-metal run into $venv" >&2
    python3 -m venv "$venv"
    # From the image's wheelhouse when it has the wheel (no network needed), else from PyPI.
    wheel="$(ls target/docker/wheels-py*/pyspark-"$version"-*.whl 2>/dev/null | head -1 || true)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        ${wheel:+--find-links "$(dirname "$wheel")"} "pyspark==$version"
fi
stock=()
[ "${1:-}" = --stock-job ] && { stock=(--stock-job); shift; }
exec "$venv/bin/python" bench/terasort/bench.py "$image" "$venv" "${1:-1000000}" "${2:-1}" "${stock[@]}"
