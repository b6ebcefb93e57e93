#!/bin/sh
# bitnami's shell libraries other than liblog.sh (libspark.sh, libbitnami.sh, libos.sh, libfs.sh,
# spark-env.sh) link here. Their functions configured bitnami's own image (spark_conf_set,
# ensure_user_exists, ...); in this image sparkvisor does that work at start, from the same
# variables, so a script sourcing them stops here with the reason, rather than half-working
# (docs/migrating.md "bitnami's shell libraries").
echo "this image has no bitnami shell libraries except /opt/bitnami/scripts/liblog.sh: sparkvisor configures Spark at start from the same variables; see docs/migrating.md" >&2
exit 78
