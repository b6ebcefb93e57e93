#!/bin/bash
# A plain shell entrypoint in the style of bitnami/spark's run.sh (reference: spark-containers.md §1.1):
# bash stays PID 1 and runs the daemon in the foreground without exec, as spark-daemon.sh does with
# SPARK_NO_DAEMONIZE. No sizing, no privilege drop, no supervision: the comparison point for bench.py.
set -e
export SPARK_NO_DAEMONIZE=true
if [ "$SPARK_MODE" = master ]; then
    "$SPARK_HOME"/bin/spark-class org.apache.spark.deploy.master.Master \
        --host "$(hostname)" --port 7077 --webui-port 8080
else
    "$SPARK_HOME"/bin/spark-class org.apache.spark.deploy.worker.Worker \
        --webui-port 8081 "$SPARK_MASTER_URL"
fi
