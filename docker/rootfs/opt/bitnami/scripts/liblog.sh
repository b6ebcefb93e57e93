#!/bin/sh
# bitnami's logging helpers, for init scripts and derived images that source this file:
# info, warn, error and debug (shown only when BITNAMI_DEBUG is true/yes/1) print
# "<module> <time> <LEVEL> ==> message" on stderr. Our own, small and POSIX sh (docs/migrating.md).
_bitnami_log() {
    printf '%s %s %s ==> %s\n' "${MODULE:-spark}" "$(date '+%H:%M:%S.%2N' 2>/dev/null || date '+%H:%M:%S')" "$1" "$2" >&2
}
info() { _bitnami_log INFO "$*"; }
warn() { _bitnami_log WARN "$*"; }
error() { _bitnami_log ERROR "$*"; }
debug() {
    case "${BITNAMI_DEBUG:-false}" in
        true | yes | 1) _bitnami_log DEBUG "$*" ;;
    esac
}
