# shellcheck shell=bash
# tier.sh - the skeleton of a test tier (scripts/test-*.sh), on lib/host.sh:
# set up and build QEMU, boot L1 with a guest script, cut the console's
# sections into files, fail with the run's status, compare snapshots. A
# tier script states only what is its own: images, guest script, sections,
# snapshot test.

# shellcheck source=scripts/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/host.sh"

# tier_begin NAME DEVICE: the tier's messages say "test-NAME", its files go
# to target/NAME ($OUT); L1 gets -device $DEVICE (VGPU_DEVICE overrides).
# Sets up the host and builds QEMU; the working directory is the repository.
tier_begin() {
    LOG_TAG="test-$1"
    OUT="$REPO/target/$1"
    DEVICE="${VGPU_DEVICE:-$2}"
    cd "$REPO" || exit
    mkdir -p "$OUT"
    ensure_setup
    scripts/build-qemu.sh >/dev/null
}

# tier_boot_l1 CONSOLE RUN [VAR=VALUE...] [-- QEMU ARGS...]: boot L1 from
# $IMAGES with -device $DEVICE (and QEMU ARGS) and run RUN in it (run-l1.sh,
# with VARs). The console goes to $OUT/CONSOLE, run-l1.sh's messages to
# stderr and to $OUT/CONSOLE with console.log replaced by run-l1.log. Sets
# TIER_STATUS to the run's status.
tier_boot_l1() {
    local console=$1 run=$2 vars=()
    shift 2
    while (($#)) && [[ $1 != -- ]]; do
        vars+=("$1")
        shift
    done
    (($#)) && shift
    log "booting L1 with -device $DEVICE${*:+ $*}, running $run"
    TIER_STATUS=0
    # (QUIET: run-l1.sh's stdout is empty. PIPESTATUS must be read in the
    # same command: `|| true` would reset it.)
    env "${vars[@]}" IMAGES="$IMAGES" RUN="$run" LOG="$OUT/$console" QUIET=1 \
        scripts/run-l1.sh -device "$DEVICE" "$@" 2>&1 |
        tee "$OUT/${console%console.log}run-l1.log" >&2 || TIER_STATUS=${PIPESTATUS[0]}
}

# tier_sections CONSOLE NAME=FILE...: section NAME of $OUT/CONSOLE into $OUT/FILE.
tier_sections() {
    local console=$1 spec
    shift
    for spec in "$@"; do
        section "${spec%%=*}" "$OUT/$console" >"$OUT/${spec#*=}"
    done
}

# tier_check_run WHAT CONSOLE: stop with the run's status if it failed.
tier_check_run() {
    if ((TIER_STATUS != 0)); then
        log "$1 failed (status $TIER_STATUS); console log: $OUT/$2"
        exit "$TIER_STATUS"
    fi
}

# tier_snapshots PACKAGE TEST VAR=FILE...: the insta snapshot test TEST of
# PACKAGE, told where the tier's files in $OUT are; then the tier passed.
tier_snapshots() {
    local package=$1 test=$2 vars=() spec
    shift 2
    for spec in "$@"; do
        vars+=("${spec%%=*}=$OUT/${spec#*=}")
    done
    env "${vars[@]}" cargo test --quiet -p "$package" --test "$test" -- --include-ignored
    log "passed"
}
