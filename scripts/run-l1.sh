#!/usr/bin/env bash
# run-l1.sh - boot the L1 guest from build-images.sh's images under QEMU, run
# one command in it and exit with that command's status; fails on a kernel
# oops/warning in the guest's dmesg.
#
# Usage: [VAR=...] scripts/run-l1.sh [QEMU ARGS...]
#   e.g. RUN=/tests/run.sh scripts/run-l1.sh -device vgpu-pci,vram_size=256M
#   scripts/run-l1.sh --help   prints this text
# Environment:
#   RUN=CMD        command for L1's /init (vgpu.run=; commas become spaces);
#                  default /run.sh in the initramfs if present. RUN=shell gives
#                  an interactive shell (no timeout, no checks).
#   APPEND=...     more kernel command line
#   QEMU=PATH      default $CACHE/qemu-current/bin/qemu-system-x86_64
#   QEMU_DATA=DIR  -L firmware dir; default $CACHE/qemu-current/share for the
#                  default QEMU, none for QEMU=...
#   IMAGES=DIR     default $CACHE/images-current (the last build-images.sh)
#   KERNEL=FILE    default IMAGES/vmlinux (PVH entry) or else IMAGES/vmlinuz
#   INITRD=FILE    default IMAGES/initramfs.img (e.g. a distribution's
#                  initramfs that mounts a root disk given in QEMU ARGS)
#   REBOOT=1       a guest reboot resets the machine and boots the same
#                  kernel again (default: QEMU exits, -no-reboot); the
#                  markers may then span several boots
#   ACCEL=kvm|tcg  skip the probe (cached in $CACHE/accel per host kernel)
#   TIMEOUT=300    seconds for the whole run; INIT_TIMEOUT=60 to reach /init
#                  (one retry when /init is not reached in time)
#   MEM=1G SMP=2   guest size
#   LOG=FILE       console log (default: a file in a temp dir); QUIET=1 does
#                  not echo the console. QEMU's own stderr (also on the
#                  console) is kept in FILE.qemu-stderr
#   TRACE=1        load the MMIO tracer plugin (TCG only): every access to
#                  vgpu-pci's register BAR, decoded, into TRACE_OUT (default
#                  target/trace/vgpu-trace.log); TRACE_ARGS=format=json,... adds
#                  plugin arguments (filters: partition=, reg=, rw=)
#   FILES_OUT=DIR  L1 gets a second serial port (ttyS1) written to
#                  DIR/l1-files.stream: lib/guest.sh send_file puts files
#                  there, vgpu-screens unpack splits them again
#   VGPU_DEV_CACHE=DIR   default ~/.cache/vgpu-dev
# Exit status (lib/host.sh names the codes; a command's own status may
# collide with them, the last message says which it was):
#   N    the command ran and exited with N (0: passed and dmesg clean)
#   121  QEMU failed or crashed before the guest reached /init: a bad QEMU
#        argument, or an abort/signal (e.g. an assertion, shown with the last
#        lines of QEMU's stderr). Not the command's fault: it never ran
#   122  QEMU crashed after /init: the command started (its status, if it
#        finished before the crash, is in the message)
#   123  the command exited 0 but L1's dmesg has an oops or warning
#   124  timeout: the whole run (TIMEOUT), or /init twice not reached in
#        INIT_TIMEOUT
#   125  QEMU exited normally without an exit marker: a kernel panic
#        (panic=-1 and -no-reboot end QEMU) or a guest that powered off early
set -euo pipefail
# shellcheck source=scripts/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"
# Setup errors (no QEMU, no images, a bad ACCEL) end the run before QEMU
# starts, like a QEMU that refuses its arguments.
DIE_STATUS=$EXIT_QEMU_EARLY

DEFAULT_QEMU="$CACHE_DIR/qemu-current/bin/qemu-system-x86_64"
if [[ -n ${QEMU:-} ]]; then
    QEMU_DATA="${QEMU_DATA:-}"
else
    QEMU=$DEFAULT_QEMU
    QEMU_DATA="${QEMU_DATA:-$CACHE_DIR/qemu-current/share}"
fi
IMAGES="${IMAGES:-$CACHE_DIR/images-current}"
TIMEOUT="${TIMEOUT:-300}"
INIT_TIMEOUT="${INIT_TIMEOUT:-60}"
MEM="${MEM:-1G}"
SMP="${SMP:-2}"
PROBE_TIMEOUT=20

[[ -x $QEMU ]] || die "no QEMU at $QEMU (scripts/build-qemu.sh, or QEMU=...)"
INITRD="${INITRD:-$IMAGES/initramfs.img}"
[[ -f $INITRD ]] || die "no initramfs $INITRD (scripts/build-images.sh)"
if [[ -z ${KERNEL:-} ]]; then
    KERNEL="$IMAGES/vmlinux"
    [[ -f $KERNEL ]] || KERNEL="$IMAGES/vmlinuz"
fi

qemu_base=("$QEMU")
[[ -z $QEMU_DATA ]] || qemu_base+=(-L "$QEMU_DATA")
qemu_base+=(-nographic -vga none -nic none -kernel "$KERNEL" -initrd "$INITRD")
[[ ${REBOOT:-0} == 1 ]] || qemu_base+=(-no-reboot)

# KVM only if it really boots a guest here: this machine's /dev/kvm may be a
# PVM host that accepts the ioctls but cannot run a stock kernel.
probe_accel() {
    local cache="$CACHE_DIR/accel" host out accel=tcg
    host=$(uname -r)
    if [[ -f $cache ]] && read -r cached_host cached_accel <"$cache" &&
        [[ $cached_host == "$host" ]]; then
        echo "$cached_accel"
        return
    fi
    if [[ -r /dev/kvm && -w /dev/kvm ]]; then
        log "probing KVM (up to ${PROBE_TIMEOUT}s)"
        out=$(timeout "$PROBE_TIMEOUT" "${qemu_base[@]}" -accel kvm -cpu host -m 512M -smp 1 \
            -append "$VGPU_BOOT_CMDLINE vgpu.probe" </dev/null 2>&1) || true
        if grep -q "$VGPU_L1_INIT" <<<"$out"; then
            accel=kvm
        else
            log "KVM does not boot a guest here: $(tail -n1 <<<"$out" | tr -d '\r')"
        fi
    fi
    mkdir -p "$CACHE_DIR"
    echo "$host $accel" >"$cache"
    echo "$accel"
}

ACCEL="${ACCEL:-$(probe_accel)}"
case "$ACCEL" in
kvm) accel_args=(-accel kvm -cpu host) ;;
# SVM (with nested paging, which EPYC has) so kvm_amd loads in L1 for L2;
# without the EPYC features TCG lacks, which it would warn about.
tcg) accel_args=(-accel "tcg,thread=multi"
    -cpu "EPYC,+svm,-fxsr-opt,-misalignsse,-osvw,-topoext,-nrip-save,-xsavec") ;;
*) die "ACCEL must be kvm or tcg, not '$ACCEL'" ;;
esac

# The MMIO tracer (vdevice/trace-plugin): a TCG plugin, so TCG only.
trace_args=()
if [[ -n ${TRACE:-} && ${TRACE} != 0 ]]; then
    trace_out="${TRACE_OUT:-$REPO/target/trace/vgpu-trace.log}"
    if [[ $ACCEL != tcg ]]; then
        log "TRACE: the MMIO tracer is a TCG plugin and L1 runs under $ACCEL: no trace (ACCEL=tcg forces TCG)"
    else
        (cd "$REPO" && cargo build --quiet --release -p vgpu-trace-plugin) ||
            die "cannot build the trace plugin"
        mkdir -p "$(dirname "$trace_out")"
        trace_args=(-plugin "$REPO/target/release/libvgpu_trace.so,out=$trace_out${TRACE_ARGS:+,$TRACE_ARGS}")
        log "TRACE: decoded register-BAR accesses go to $trace_out"
    fi
fi

# Files out of L1: ttyS1 (the console stays on ttyS0, multiplexed with the
# monitor as -nographic makes it).
files_args=()
if [[ -n ${FILES_OUT:-} ]]; then
    mkdir -p "$FILES_OUT"
    files_args=(-serial mon:stdio -serial "file:$FILES_OUT/l1-files.stream")
fi

cmdline="$VGPU_BOOT_CMDLINE${APPEND:+ $APPEND}${RUN:+ vgpu.run=$RUN}"
qemu_cmd=("${qemu_base[@]}" "${accel_args[@]}" "${trace_args[@]}" "${files_args[@]}" -m "$MEM" -smp "$SMP"
    -append "$cmdline" "$@")

log "accel $ACCEL, kernel $(basename "$KERNEL") $(cat "$IMAGES/kernel-release" 2>/dev/null || true), images $IMAGES"
if [[ ${RUN:-} == shell ]]; then
    exec "${qemu_cmd[@]}"
fi

if [[ -z ${LOG:-} ]]; then
    logdir=$(mktemp -d "${TMPDIR:-/tmp}/run-l1.XXXXXX")
    LOG="$logdir/console.log"
fi
mkdir -p "$(dirname "$LOG")"
QEMU_STDERR="$LOG.qemu-stderr"

elapsed() {
    local now=${EPOCHREALTIME/./}
    printf '%d.%d' $(((now - $1) / 1000000)) $(((now - $1) / 100000 % 10))
}

# Do not leave QEMU behind when this script is interrupted.
qpid=""
trap '[[ -z $qpid ]] || kill "$qpid" 2>/dev/null || true' EXIT

# run_once: boot, echo and log the console; sets init_time, exit_status,
# qemu_status, hung (no /init within INIT_TIMEOUT). QEMU's stderr joins the
# console and is kept apart in QEMU_STDERR too.
run_once() {
    local start line partial="" rc qfd
    start=${EPOCHREALTIME/./}
    init_time="" exit_status="" hung=0
    : >"$LOG"
    : >"$QEMU_STDERR"
    exec {qfd}< <(exec timeout -k 10 "$TIMEOUT" "${qemu_cmd[@]}" </dev/null \
        2> >(tee "$QEMU_STDERR"))
    qpid=$!
    while true; do
        rc=0
        IFS= read -r -t 1 -u "$qfd" line || rc=$?
        if ((rc > 128)); then
            # No full line within a second: keep the partial one, check the clock.
            partial+=$line
            if [[ -z $init_time ]] && ((!hung && (${EPOCHREALTIME/./} - start) / 1000000 >= INIT_TIMEOUT)); then
                hung=1
                kill "$qpid" 2>/dev/null || true
            fi
            continue
        fi
        line="$partial$line"
        partial=""
        if ((rc != 0)) && [[ -z $line ]]; then
            break
        fi
        line=${line%$'\r'}
        printf '%s\n' "$line" >>"$LOG"
        [[ -n ${QUIET:-} ]] || printf '%s\n' "$line"
        # Markers may follow firmware output that lacks a newline.
        case "$line" in
        *"$VGPU_L1_INIT") [[ -n $init_time ]] || init_time=$(elapsed "$start") ;;
        *"$VGPU_L1_EXIT "*) exit_status=${line##*"$VGPU_L1_EXIT "} ;;
        esac
        ((rc == 0)) || break
    done
    exec {qfd}<&-
    qemu_status=0
    wait "$qpid" || qemu_status=$?
    qpid=""
    total_time=$(elapsed "$start")
}

for attempt in 1 2; do
    run_once
    if [[ -z $init_time ]] && ((hung || qemu_status == 124)); then
        cp "$LOG" "$LOG.hang$attempt"
        log "no /init after $total_time s (attempt $attempt, log in $LOG.hang$attempt)"
        ((attempt == 1)) && continue
    fi
    break
done

log "console log: $LOG"
log "timing: /init after ${init_time:--} s, total $total_time s ($ACCEL)"

bad=$(dmesg_problems "$LOG" || true)
if [[ -n $bad ]]; then
    log "kernel problems in L1 dmesg:"
    printf '%s\n' "$bad" >&2
fi

# qemu_died: QEMU's status says it failed (not a timeout, not a clean exit).
# timeout -k reports a QEMU it had to SIGKILL at the end of TIMEOUT as 137.
qemu_died() {
    ((qemu_status != 0 && qemu_status != 124 && !hung)) &&
        ! ((qemu_status == 137 && ${total_time%.*} >= TIMEOUT))
}

# qemu_death: "killed by SIGABRT" or "exited with status 1", and the last
# lines of QEMU's stderr (the assertion, the bad argument).
qemu_death() {
    if ((qemu_status > 128 && qemu_status < 160)); then
        log "QEMU was killed by SIG$(kill -l $((qemu_status - 128))) (status $qemu_status)"
    else
        log "QEMU exited with status $qemu_status"
    fi
    if [[ -s $QEMU_STDERR ]]; then
        log "QEMU's stderr ended with ($QEMU_STDERR):"
        tail -n 10 "$QEMU_STDERR" | tr -d '\r' | sed 's/^/    /' >&2
    else
        log "QEMU wrote nothing to stderr; the console ended with:"
        tail -n 10 "$LOG" >&2
    fi
}

if [[ -z $exit_status ]]; then
    if [[ -z $init_time ]] && qemu_died; then
        qemu_death
        log "QEMU failed before the guest reached /init: the command never ran"
        exit "$EXIT_QEMU_EARLY"
    fi
    if qemu_died; then
        qemu_death
        log "QEMU crashed after /init (at $init_time s), before the command finished"
        exit "$EXIT_QEMU_DIED"
    fi
    if ((qemu_status == 124 || hung)); then
        log "timed out; the console ended with:"
        tail -n 5 "$LOG" >&2
        exit "$EXIT_TIMEOUT"
    fi
    if [[ -z $init_time ]]; then
        log "the guest never reached /init (kernel panic?); the console ended with:"
    else
        log "no $VGPU_L1_EXIT marker after /init (kernel panic?); the console ended with:"
    fi
    tail -n 20 "$LOG" >&2
    exit "$EXIT_NO_MARKER"
fi
if [[ ! $exit_status =~ ^[0-9]+$ ]]; then
    log "garbled exit marker '$exit_status'"
    exit "$EXIT_NO_MARKER"
fi
log "L1 command exited with $exit_status"
if qemu_died; then
    qemu_death
    log "QEMU crashed after the command finished"
    ((exit_status != 0)) || exit "$EXIT_QEMU_DIED"
fi
if ((exit_status == 0)) && [[ -n $bad ]]; then
    exit "$EXIT_DMESG"
fi
exit "$exit_status"
