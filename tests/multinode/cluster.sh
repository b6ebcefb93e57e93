#!/usr/bin/env bash
# Three Docker hosts on one machine, as a Swarm, for the multi-host tests and benchmarks
# (docs/cluster.md, "Several hosts on one machine"). No registry: the images are copied into every
# node with `docker save | docker load`. Everything it makes is labelled and named after NAME, and
# `down` removes all of it: the nodes, their Docker storage volumes, the network and the cgroups
# that the nodes' containers leave on the host when a node is killed.
#
# Usage:
#   cluster.sh up NAME [IMAGE...]  build the node image (docker/node, cached by content hash), start
#                                  NAME-n1..n3 on the network NAME-net, form the swarm (n1 manager,
#                                  n2 and n3 workers) and load IMAGEs into every node
#   cluster.sh down NAME           remove everything NAME made (also what a killed run left)
#   cluster.sh guard NAME          wait until stdin closes, then `down NAME`: a test keeps the write
#                                  end open, so the cluster goes when the test ends, however it ends
#   cluster.sh sweep               `down` every cluster whose owner process is gone
#   cluster.sh kill NAME N         lose node N's host: SIGKILL to its dockerd and every container in it
#   cluster.sh start NAME N        bring node N back (its storage and swarm state are kept)
#
# Env: MULTINODE_OWNER      pid of the process the cluster belongs to (default: the caller); `sweep`
#                           and every `up` remove the clusters whose owner is gone
#      MULTINODE_HEARTBEAT  the swarm's dispatcher heartbeat (default 5s, Docker's own): how often
#                           nodes report, so how soon a lost host is noticed (about 3 periods)
#      SPARKVISOR_BASE_IMAGE  the node image's base (default sparkvisor-base:bookworm)
# Progress goes to stderr; stdout stays empty.
set -Eeuo pipefail
cd "$(dirname "$0")/../.."
exec 3>&1 1>&2

label=sparkvisor.multinode
nodes=3
# Owners are pids: only this machine's clusters are judged by them (an engine can be shared).
here="$(uname -n)"
base="${SPARKVISOR_BASE_IMAGE:-sparkvisor-base:bookworm}"

log() { echo "multinode: $*" >&2; }

# Waits until `docker info` answers inside node $1 (at most $2 seconds).
wait_dockerd() {
    local node="$1" deadline=$((SECONDS + $2))
    until docker exec "$node" docker info >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "dockerd in $node did not answer within $2 s; its log:"
            docker logs --tail 20 "$node" || true
            return 1
        fi
        sleep 0.5
    done
}

# The node image, tagged by a hash of its inputs so an unchanged tree is never rebuilt.
node_image() {
    local hash tagged
    hash="$( (docker image inspect --format '{{.Id}}' "$base"; cat docker/node/Dockerfile docker/node/entrypoint.sh) \
             | sha256sum | cut -c1-12)"
    tagged="sparkvisor-node:h-$hash"
    if ! docker image inspect "$tagged" >/dev/null 2>&1; then
        log "docker build -> $tagged (Debian's docker.io on $base)"
        DOCKER_BUILDKIT=0 docker build -q 2>/dev/null --build-arg "BASE_IMAGE=$base" -t "$tagged" docker/node >/dev/null
    fi
    echo "$tagged"
}

# A node must run dockerd and containers in it. `--privileged` is the usual way; an engine that
# itself lacks a capability (here CAP_SYS_RESOURCE) cannot grant the full set and fails with
# "unable to apply caps". Then the node gets every classic capability but that one, seccomp
# unconfined (runc in the node creates session keyrings, which Docker's default profile refuses),
# AppArmor unconfined (where the host has it), /proc and /sys unmasked (dockerd sets sysctls) and
# the host's cgroup tree read-write (runc in the node creates the containers' cgroups there).
node_privileges() {
    local caps=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
        LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER
        SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE
        SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE
        MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ)
    if docker run --rm --privileged --entrypoint true "$1" >/dev/null 2>&1; then
        echo --privileged
        return
    fi
    log "the engine refuses --privileged: giving the nodes every capability but SYS_RESOURCE"
    printf -- '--cap-add=%s\n' "${caps[@]}"
    printf -- '%s\n' --security-opt=seccomp=unconfined --security-opt=apparmor=unconfined \
        --security-opt=systempaths=unconfined --volume=/sys/fs/cgroup:/sys/fs/cgroup:rw
}

# The node network with a fixed subnet: a node started again must get its old address back (the
# swarm knows it by that address). Docker picks a free subnet, which is then made explicit.
create_network() {
    local name="$1" subnet gateway
    docker network create --label "$label=$2" --label "$label.owner=$3" --label "$label.host=$here" \
        "$name" >/dev/null
    subnet="$(docker network inspect --format '{{(index .IPAM.Config 0).Subnet}}' "$name")"
    gateway="$(docker network inspect --format '{{(index .IPAM.Config 0).Gateway}}' "$name")"
    docker network rm "$name" >/dev/null
    docker network create --label "$label=$2" --label "$label.owner=$3" --label "$label.host=$here" \
        --subnet "$subnet" --gateway "$gateway" "$name" >/dev/null
    echo "$subnet"
}

# The address of host number $2 (from 10) in subnet $1 (an IPv4 /16 or /24 as Docker picks them).
node_ip() {
    local prefix="${1%/*}"
    echo "${prefix%.*}.$((10 + $2))"
}

up() {
    local name="$1"; shift
    local owner="${MULTINODE_OWNER:-$PPID}" image subnet i node ip token
    local -a privileges
    sweep
    image="$(node_image)"
    mapfile -t privileges < <(node_privileges "$image")
    # From here on a failure removes what was made.
    trap 'log "up failed: removing $name"; down "$name"' ERR
    subnet="$(create_network "$name-net" "$name" "$owner")"
    log "network $name-net ($subnet)"
    for i in $(seq 1 "$nodes"); do
        node="$name-n$i"
        docker volume create --label "$label=$name" --label "$label.owner=$owner" \
            --label "$label.host=$here" "$node-docker" >/dev/null
        docker run -d --name "$node" --hostname "$node" \
            --label "$label=$name" --label "$label.owner=$owner" --label "$label.host=$here" \
            --network "$name-net" --ip "$(node_ip "$subnet" "$i")" \
            "${privileges[@]}" \
            --volume "$node-docker:/var/lib/docker" \
            --env "NODE_CGROUP_PARENT=/$node" \
            "$image" >/dev/null
    done
    for i in $(seq 1 "$nodes"); do wait_dockerd "$name-n$i" 60; done
    ip="$(node_ip "$subnet" 1)"
    docker exec "$name-n1" docker swarm init --advertise-addr "$ip" \
        --dispatcher-heartbeat "${MULTINODE_HEARTBEAT:-5s}" >/dev/null
    token="$(docker exec "$name-n1" docker swarm join-token -q worker)"
    for i in $(seq 2 "$nodes"); do
        docker exec "$name-n$i" docker swarm join --advertise-addr "$(node_ip "$subnet" "$i")" \
            --token "$token" "$ip:2377" >/dev/null
    done
    log "swarm formed: $name-n1 manager, $name-n2..n$nodes workers"
    if [ "$#" -gt 0 ]; then load_images "$name" "$@"; fi
    trap - ERR
    log "up: $name"
}

# One `docker save`, loaded into every node at once.
load_images() {
    local name="$1"; shift
    local tar status=0 i
    local -a pids=()
    tar="$(mktemp "${TMPDIR:-/tmp}/$name-images.XXXXXX")"
    log "loading $* into $nodes nodes"
    docker save -o "$tar" "$@" || { rm -f "$tar"; return 1; }
    for i in $(seq 1 "$nodes"); do
        docker exec -i "$name-n$i" docker load -q <"$tar" >/dev/null &
        pids+=("$!")
    done
    for i in "${pids[@]}"; do wait "$i" || status=1; done
    rm -f "$tar"
    return "$status"
}

down() {
    local name="$1" node dir left=0 deadline
    local -a containers
    mapfile -t containers < <(docker ps -aq --filter "label=$label=$name")
    if [ "${#containers[@]}" -gt 0 ]; then docker rm -f -v "${containers[@]}" >/dev/null || true; fi
    docker volume ls -q --filter "label=$label=$name" | xargs -r docker volume rm >/dev/null || true
    docker network ls -q --filter "label=$label=$name" | xargs -r docker network rm >/dev/null || true
    # The cgroups the nodes' containers had (the nodes' dockerd put them under /NAME-nI): a node that
    # was killed never removed them. Deepest first; a cgroup whose last process is still exiting is
    # busy for a moment.
    deadline=$((SECONDS + 20))
    for node in $(seq 1 "$nodes"); do
        for dir in /sys/fs/cgroup/*/"$name-n$node" /sys/fs/cgroup/"$name-n$node"; do
            [ -d "$dir" ] || continue
            until find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null && [ ! -d "$dir" ]; do
                if [ "$SECONDS" -ge "$deadline" ]; then
                    log "cannot remove cgroup $dir"
                    left=1
                    break
                fi
                sleep 0.2
            done
        done
    done
    log "down: $name"
    return "$left"
}

guard() {
    # The owner's signals (Ctrl-C in its terminal) must not end the guard before it cleans up.
    trap '' INT TERM HUP
    cat >/dev/null || true
    down "$1"
}

sweep() {
    local name owner host
    while read -r name owner host; do
        [ -n "$name" ] && [ "$host" = "$here" ] || continue
        if [ -z "$owner" ] || ! kill -0 "$owner" 2>/dev/null; then
            log "removing $name (its owner $owner is gone)"
            down "$name" || true
        fi
    done < <( { docker network ls --filter "label=$label" \
                    --format "{{.Label \"$label\"}} {{.Label \"$label.owner\"}} {{.Label \"$label.host\"}}"
                docker ps -a --filter "label=$label" \
                    --format "{{.Label \"$label\"}} {{.Label \"$label.owner\"}} {{.Label \"$label.host\"}}"
                docker volume ls --filter "label=$label" \
                    --format "{{.Label \"$label\"}} {{.Label \"$label.owner\"}} {{.Label \"$label.host\"}}"; } | sort -u)
}

# The whole file is read before anything runs (main, then exit): a run is not thrown off when the
# file changes under it, as a checkout does.
main() {
    case "${1:-}" in
        up) [ "$#" -ge 2 ] || { echo "usage: $0 up NAME [IMAGE...]" >&2; exit 2; }; shift; up "$@" ;;
        down) [ "$#" -eq 2 ] || { echo "usage: $0 down NAME" >&2; exit 2; }; down "$2" ;;
        guard) [ "$#" -eq 2 ] || { echo "usage: $0 guard NAME" >&2; exit 2; }; guard "$2" ;;
        sweep) sweep ;;
        kill) [ "$#" -eq 3 ] || { echo "usage: $0 kill NAME N" >&2; exit 2; }; docker kill "$2-n$3" >/dev/null ;;
        start)
            [ "$#" -eq 3 ] || { echo "usage: $0 start NAME N" >&2; exit 2; }
            docker start "$2-n$3" >/dev/null
            wait_dockerd "$2-n$3" 60 ;;
        *) sed -n '2,/^set -Eeuo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    esac
}

main "$@"; exit
