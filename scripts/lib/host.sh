# shellcheck shell=bash
# host.sh - sourced by every host script (bash): where the repository and
# the cache are, logging, exit codes, cache keys and pruning, the static
# guest binaries, and (through common.sh) the guests' kernel command line,
# console markers and dmesg check. A sourcing script may set LOG_TAG (its
# name in messages; default its file name) and DIE_STATUS (die's exit code).

# shellcheck disable=SC2034 # used by the scripts that source this file
SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO=$(cd "$SCRIPTS_DIR/.." && pwd)
# shellcheck source=scripts/lib/common.sh
. "$SCRIPTS_DIR/lib/common.sh"

# Heavy outputs (QEMU, kernels, images, modules), keyed by their inputs.
CACHE_DIR="${VGPU_DEV_CACHE:-$HOME/.cache/vgpu-dev}"

# Exit codes of an L1 run (run-l1.sh), beside the guest command's own.
EXIT_QEMU_EARLY=121 # QEMU failed or crashed before the guest reached /init
EXIT_QEMU_DIED=122  # QEMU crashed after /init (while or after the command ran)
EXIT_DMESG=123      # the command passed but the guest's dmesg has problems
EXIT_TIMEOUT=124    # the run (or the boot to /init) timed out
EXIT_NO_MARKER=125  # QEMU exited normally without an exit marker: a kernel
#                     panic, or the guest powered off before /init finished

log() {
    printf '%s: %s\n' "${LOG_TAG:-$(basename "$0" .sh)}" "$*" >&2
}

die() {
    log "error: $*"
    exit "${DIE_STATUS:-1}"
}

# print_header FILE: FILE's header comment (after the #! line, up to the
# first line that is not a comment), without the "# ": a script's --help.
print_header() {
    sed -n '1{/^#!/d}; /^#/!q; s/^# \{0,1\}//p' "$1"
}

# Every host script answers -h/--help with its header comment (a sourced
# file sees the sourcing script's arguments).
if [[ ${1:-} == --help || ${1:-} == -h ]]; then
    print_header "$0"
    exit 0
fi

# short_hash: 16 hex digits of the SHA-256 of stdin (cache keys).
short_hash() {
    sha256sum | cut -c1-16
}

# prune_cache GLOB KEEP: keep the KEEP newest cache entries named GLOB.
prune_cache() {
    find "$CACHE_DIR" -maxdepth 1 -name "$1" -printf '%T@ %p\n' | sort -rn |
        tail -n "+$(($2 + 1))" | cut -d' ' -f2- | xargs -r -d '\n' rm -rf
}

# ensure_setup: the host setup (scripts/setup-host.sh), once: make's
# targets run it as their `setup` prerequisite and export VGPU_SETUP_DONE.
ensure_setup() {
    if [[ ${VGPU_SETUP_DONE:-} != 1 ]]; then
        "$SCRIPTS_DIR/setup-host.sh"
        export VGPU_SETUP_DONE=1
    fi
}

# The programs that run in the guests: static, so they run in busybox
# initramfs images without libraries.
GUEST_TARGET=x86_64-unknown-linux-gnu
GUEST_BIN="$REPO/target/$GUEST_TARGET/release"
build_guest_bins() {
    (cd "$REPO" && RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --quiet --release --target "$GUEST_TARGET" \
        -p vgpu-guest-tests -p vgpuctl)
}

# build_first_driver DIR: the example driver of SPEC section 14
# (examples/first-driver), built from the generated register header alone,
# to DIR/first-driver; prints that path.
build_first_driver() {
    mkdir -p "$1"
    gcc -static -O2 -Wall -Wextra -Werror -I "$REPO/host-driver/include" \
        -o "$1/first-driver" "$REPO/examples/first-driver/first_driver.c"
    printf '%s\n' "$1/first-driver"
}

# The L1 machine where PCI Express is needed (SR-IOV): q35 without its AHCI
# controller. L1 boots from -kernel/-initrd and has no disk, and SeaBIOS
# probing the AHCI ports took 32 s of every q35 boot under TCG (37.3 s to
# /init against 4.8 s with sata=off, one boot each).
# shellcheck disable=SC2034 # used by the scripts that source this
L1_Q35="q35,sata=off"

# host_driver_extras MODULES_DIR: set HOST_DRIVER_EXTRAS to build-images.sh
# arguments that put the host driver (build-modules.sh's output) where
# lib/guest.sh loads it from.
host_driver_extras() {
    local ko
    HOST_DRIVER_EXTRAS=()
    for ko in vgpu_rm vgpu_vfio vgpu_vfio_pci; do
        [[ -f $1/$ko.ko ]] || die "no $ko.ko in $1"
        HOST_DRIVER_EXTRAS+=("$1/$ko.ko:$VGPU_MODULES_DIR/$ko.ko")
    done
}
