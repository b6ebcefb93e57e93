#!/bin/sh
# bitnami/spark's ENTRYPOINT path, for compose files, Dockerfiles and Helm values that name it
# (docs/migrating.md). What bitnami's script did, under sparkvisor:
#   run.sh            start the role SPARK_MODE names (run.sh execs the agent in role mode);
#   driver ARGS...    the Spark-on-Kubernetes driver (`sparkvisor driver`), with bitnami's
#                     spark.jars.ivy=/tmp/.ivy before Spark's arguments (a later --conf wins);
#   anything else     as the official image's entry point, which this hands over to (same PID):
#                     `executor`, or the command run as given (bitnami's `exec "$@"`), with PID 1
#                     handed to sparkvisor when this script is PID 1.
set -e
case "${1-}" in
    /opt/bitnami/scripts/spark/run.sh)
        exec "$@" ;;
    driver)
        shift
        exec /usr/local/bin/sparkvisor driver --conf spark.jars.ivy=/tmp/.ivy "$@" ;;
esac
exec /opt/entrypoint.sh "$@"
