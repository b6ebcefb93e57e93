#!/usr/bin/env bash
# bench/multihost: how long a lost host costs a Spark cluster on three Swarm hosts
# (docs/cluster.md, docs/benchmarks.md). Each round runs the multi-host test
# (tests/docker/multihost.rs: three Debian Docker hosts from tests/multinode/cluster.sh, the stack
# files deployed with `docker stack deploy`), which measures while it checks, and prints its
# figures: Swarm's node-down detection, the master dropping the lost worker, the replacement
# worker ALIVE, the job with a host lost against the same job undisturbed, and the HA failover
# beside its bound (ZooKeeper's session timeout). Every job's result is checked exactly; a round
# that fails prints its log's tail and stops.
#
# Usage: bench/multihost/run.sh [ROUNDS]      (default 1; about 10 minutes a round on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-1}"
mkdir -p target/bench
for round in $(seq 1 "$rounds"); do
    log="target/bench/multihost-$round.log"
    echo "== round $round (log: $log), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    if ! cargo test --quiet --test docker -- --exact multihost::spark_across_three_swarm_hosts \
            --nocapture >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "round $round failed"
        exit 1
    fi
    grep '^multihost:' "$log" | grep -v '^multihost:   '
done
