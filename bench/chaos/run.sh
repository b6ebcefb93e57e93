#!/usr/bin/env bash
# bench/chaos: a seeded, bounded chaos run on the HA cluster (docker/compose.ha.yaml): a job with an
# exact checksum runs while workers' JVMs are killed, worker containers are stopped and started and
# the active master is killed; prints what was injected and the recovery times, checks the result
# and that no zombie is left in any container. See docs/ha.md.
#
# Usage: bench/chaos/run.sh [--seed N] [--faults N] [--partitions N] [--task-seconds S] [--project NAME]
#   (defaults: seed 1, 4 faults, 48 partitions of 2 s each: a job of about two minutes)
set -euo pipefail
cd "$(dirname "$0")/../.."
image="$(docker/build-image.sh)"
zk="$(docker/build-zookeeper-image.sh "$image")"
exec python3 bench/chaos/chaos.py --image "$image" --zk-image "$zk" "$@"
