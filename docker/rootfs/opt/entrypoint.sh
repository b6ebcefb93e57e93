#!/bin/sh
# The official apache/spark image's ENTRYPOINT path, for pod specs and Dockerfiles that name it
# (docs/migrating.md, docs/kubernetes.md). Its three cases, under sparkvisor:
#   driver ARGS...    `sparkvisor driver`: spark-submit --deploy-mode client, bound to
#                     SPARK_DRIVER_BIND_ADDRESS, as the official script builds it;
#   executor          `sparkvisor executor`: the KubernetesExecutorBackend JVM from the pod's
#                     environment (SPARK_JAVA_OPT_n, classpath, -Xms/-Xmx) as the official script;
#   anything else     runs as given (the official `exec "$@"`).
# Where the official script put driver and executor under `tini -s` and a passwd entry under
# nss_wrapper, sparkvisor is PID 1 and does both. Under sparkvisor already (the image's
# ENTRYPOINT), a plain command is only exec'd.
set -e
sparkvisor=/usr/local/bin/sparkvisor
case "${1-}" in
    driver | executor)
        exec "$sparkvisor" "$@" ;;
esac
if [ "$$" -eq 1 ]; then
    if [ "$#" -eq 0 ]; then
        exec "$sparkvisor"
    fi
    exec "$sparkvisor" -- "$@"
fi
if [ "$#" -eq 0 ]; then
    echo "entrypoint.sh: no command to run" >&2
    exit 78
fi
exec "$@"
