#!/bin/sh
# bitnami/spark's CMD: start the Spark role SPARK_MODE names (master or worker, and every other
# role of this image) under sparkvisor's supervision (docs/migrating.md). bitnami's run.sh took no
# arguments and dropped any it was given; here they are refused, so none is lost without a word.
if [ "$#" -gt 0 ]; then
    echo "run.sh: takes no arguments (the role comes from SPARK_MODE); got: $*" >&2
    exit 78
fi
exec /usr/local/bin/sparkvisor run
