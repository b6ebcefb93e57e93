#!/bin/sh
# bitnami/spark's ENTRYPOINT path, for compose files, Dockerfiles and Helm values that name it
# (docs/migrating.md). What bitnami's script did, under sparkvisor:
#   run.sh            start the role SPARK_MODE names (run.sh execs the agent in role mode);
#   driver ARGS...    the Spark-on-Kubernetes driver (`sparkvisor driver`), with bitnami's
#                     spark.jars.ivy=/tmp/.ivy before Spark's arguments (a later --conf wins);
#   executor          the Spark-on-Kubernetes executor (`sparkvisor executor`);
#   anything else     runs as given (bitnami's `exec "$@"`).
# As PID 1 it hands PID 1 to sparkvisor, which reaps, forwards signals and prepares a passwd entry
# for an arbitrary uid; under sparkvisor already (the image's ENTRYPOINT) it only execs.
set -e
sparkvisor=/usr/local/bin/sparkvisor
case "${1-}" in
    /opt/bitnami/scripts/spark/run.sh)
        exec "$@" ;;
    driver)
        shift
        exec "$sparkvisor" driver --conf spark.jars.ivy=/tmp/.ivy "$@" ;;
    executor)
        exec "$sparkvisor" "$@" ;;
esac
if [ "$$" -eq 1 ]; then
    if [ "$#" -eq 0 ]; then
        # bitnami's script had nothing to exec; the image's default is role mode.
        exec "$sparkvisor"
    fi
    exec "$sparkvisor" -- "$@"
fi
if [ "$#" -eq 0 ]; then
    echo "entrypoint.sh: no command to run (give one, or /opt/bitnami/scripts/spark/run.sh)" >&2
    exit 78
fi
exec "$@"
