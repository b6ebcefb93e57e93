#!/bin/sh
# The executor's preStop hook Spark sets when spark.decommission.enabled=true
# (spark.kubernetes.decommission.script, default /opt/decom.sh; it replaces any lifecycle of the
# pod template). As the official script: SIGPWR to the executor JVM, which stops taking tasks,
# migrates its blocks when spark.storage.decommission.* allow and exits; back once it has exited.
# A note goes to /dev/termination-log when it can be written, as the official script writes one.
log=/dev/termination-log
{ echo "decom.sh: decommissioning the executor ($(date -u +%Y-%m-%dT%H:%M:%SZ))" >"$log"; } 2>/dev/null || true
exec /usr/local/bin/sparkvisor decommission "$@"
