#!/bin/sh
# Main process of a test node (docker/node/Dockerfile): Debian's dockerd.
# - A node that was killed and started again keeps its container filesystem: the pid files and
#   runtime state of the dead daemons would make dockerd refuse to start ("pid file found").
# - NODE_CGROUP_PARENT puts every container of this node under one cgroup the test names, so the
#   cgroups a killed node leaves on the host can be found and removed (tests/multinode/cluster.sh).
# - overlay2: /var/lib/docker is a volume on the host's own filesystem, where overlayfs mounts.
set -eu
rm -rf /var/run/docker.pid /run/docker /run/containerd /var/run/docker.sock
exec dockerd --host unix:///var/run/docker.sock --storage-driver overlay2 \
    ${NODE_CGROUP_PARENT:+--cgroup-parent "$NODE_CGROUP_PARENT"} "$@"
