#!/bin/sh
# bitnami's setup step (validate the variables, initialise conf, run /docker-entrypoint-initdb.d)
# for custom entrypoints that call it before run.sh. sparkvisor does all of it when the role
# starts, and refuses bad values there (exit 78 before anything starts), so there is nothing to
# do here yet (docs/migrating.md).
echo "setup.sh: sparkvisor validates the configuration and runs the init scripts when the role starts (run.sh)" >&2
exit 0
