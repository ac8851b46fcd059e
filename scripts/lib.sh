# shellcheck shell=bash disable=SC2034
# Shell helpers sourced by the commands in scripts/. Not a command itself.

# Folders shared by the scripts and by the tests (tests/backends.py reads the same paths).
SIMPLESTACK_STATE_DIR=/run/simplestack-test
SIMPLESTACK_DATA_DIR=/var/lib/simplestack-test
SIMPLESTACK_IMAGE_DIR=$SIMPLESTACK_DATA_DIR/images
SIMPLESTACK_LXC_ROOTFS=$SIMPLESTACK_DATA_DIR/lxc-rootfs

# Name prefix of every libvirt object and image file that the tests create.
# `scripts/libvirtd clean` removes everything with this prefix, so give it to nothing you keep.
SIMPLESTACK_TEST_PREFIX=sstest-

log() {
    printf '%s: %s\n' "${0##*/}" "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

require_root() {
    if [[ $(id -u) -ne 0 ]]; then
        die "must run as root ($1)"
    fi
}

# Print the seconds elapsed since the EPOCHREALTIME value $1, with one decimal.
seconds_since() {
    local now=$EPOCHREALTIME
    awk -v start="$1" -v now="$now" 'BEGIN { printf "%.1f", now - start }'
}
