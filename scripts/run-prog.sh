#!/usr/bin/env bash
# run-prog.sh - run your own program (and kernel module) in L1 on the GPU:
# `make run-l1 PROG=...`. Builds what is missing (QEMU, images), boots L1
# under QEMU with -device vgpu-pci, loads KMOD if given, runs PROG ARGS,
# prints the program's output, and exits with its status. L1's kernel log
# is shown only when something failed (or with DMESG=1). The images are
# built for this run only: the shared images-current link is left alone.
#
# Usage: PROG=path/to/binary [VAR=...] scripts/run-prog.sh
#   scripts/run-prog.sh --help   prints this text
# Environment:
#   PROG=FILE      the program (a static binary, or a dynamically linked one:
#                  its libraries are packed too; or a shell script for
#                  busybox sh). Runs as /bin/<its name>, as root
#   ARGS="..."     its arguments (split at spaces, no quoting)
#   KMOD=FILE.ko   a module built for the L1 kernel (headers: the `build`
#                  directory printed by scripts/build-images.sh), insmod'ed
#                  before PROG; without PROG only the module is loaded
#   DEVICE=...     default vgpu-pci,vram_size=256M,partitions=8,engines=2
#   TRACE=1        trace every register access (TCG only; run-l1.sh's
#                  TRACE_OUT and TRACE_ARGS apply)
#   DMESG=1        print L1's kernel log even when all went well
#   OUT=DIR        console log and images info (default target/run-prog)
#   Other run-l1.sh variables (SMP, MEM, TIMEOUT, ACCEL, ...) pass through.
# Exit status: PROG's, or run-l1.sh's codes (lib/host.sh) when the run
# itself failed (QEMU crashed, timeout, oops in dmesg, module not loaded).
set -euo pipefail
# shellcheck source=scripts/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"

(($# == 0)) || die "no arguments: set PROG=, ARGS=, KMOD= (see --help)"
[[ -n ${PROG:-} || -n ${KMOD:-} ]] || die "set PROG=path/to/binary and/or KMOD=module.ko (see --help)"
[[ -z ${PROG:-} || -f $PROG ]] || die "PROG: no file $PROG"
[[ -z ${KMOD:-} || -f $KMOD ]] || die "KMOD: no file $KMOD"
DEVICE="${DEVICE:-vgpu-pci,vram_size=256M,partitions=8,engines=2}"
OUT="${OUT:-$REPO/target/run-prog}"

ensure_setup
mkdir -p "$OUT"
"$SCRIPTS_DIR/build-qemu.sh" >/dev/null

# The guest side: load the module, run the program between markers.
guest_script="$OUT/run-prog-guest.sh"
extras=("$guest_script:/bin/run-prog-guest.sh")
{
    echo '#!/bin/sh'
    echo '. /usr/lib/vgpu/guest.sh'
    echo 'echo VGPU-PROG-BEGIN'
    if [[ -n ${KMOD:-} ]]; then
        extras+=("$KMOD:/lib/vgpu/$(basename "$KMOD")")
        echo "insmod /lib/vgpu/$(basename "$KMOD") 2>&1 || { echo 'run-prog: insmod $(basename "$KMOD") failed'; echo VGPU-PROG-END; exit 1; }"
    fi
    if [[ -n ${PROG:-} ]]; then
        extras+=("$PROG:/bin/$(basename "$PROG")")
        echo "chmod +x /bin/$(basename "$PROG")"
        echo "/bin/$(basename "$PROG") ${ARGS:-}"
        echo "status=\$?"
    else
        echo 'status=0'
    fi
    echo 'echo VGPU-PROG-END'
    echo "exit \$status"
} >"$guest_script"
chmod +x "$guest_script"

IMAGES=$(LINK_CURRENT=0 "$SCRIPTS_DIR/build-images.sh" "${extras[@]}")
log "images $IMAGES; booting L1 with -device $DEVICE"

status=0
IMAGES="$IMAGES" RUN=/bin/run-prog-guest.sh LOG="$OUT/console.log" QUIET=1 \
    "$SCRIPTS_DIR/run-l1.sh" -device "$DEVICE" || status=$?

section PROG "$OUT/console.log"
if ((status != 0)) || [[ ${DMESG:-} == 1 ]]; then
    echo "---- L1 kernel log ----"
    section DMESG "$OUT/console.log"
fi
if ((status != 0)); then
    log "status $status; console log: $OUT/console.log"
fi
exit "$status"
