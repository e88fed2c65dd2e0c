#!/bin/sh
# l1-migration.sh - runs in L1 for test-migration.sh (busybox sh, in the
# image build-l2-images.sh makes): live migration of an L2 guest with a vGPU
# between two QEMUs in L1, while the guest runs vgpu-l2-work (engine work
# with fences and interrupts, DMA into its memory, CPU writes through the
# VRAM BAR, every result checked, never paused by the guest itself).
#
#   1. ping-pong: vGPU A -> B -> A ... (ROUND_TRIPS round trips), QEMU's
#      default enable-migration=auto; after each hop the workload must make
#      progress on the destination before the next one;
#   2. failure paths, the source going on each time: a migration cancelled
#      while it runs; a destination vGPU of another type; a destination
#      vGPU removed while it resumes (then created again);
#   3. a snapshot to a file: the guest saved, its QEMU gone; a cut and a
#      corrupted copy refused by fresh QEMUs; the intact file restored into
#      a fresh QEMU on vGPU B, where the workload goes on;
#   4. the workload stopped: zero errors, its never-touched VRAM intact;
#   5. the same L2 without a vGPU, idle, migrated the same way: the plain
#      downtime mig_downtime_vs_plain divides by.
#
# Every L2 QEMU has its console and QMP on FIFO pairs (chardev pipe) and
# traces vfio_migration_set_state. Prints "VGPU-MIG <key> <value>..."
# lines for test-migration.sh, the L2 console lines as "L2 | ...", the
# VFIO state transitions of the first hop between VGPU-MIG-TRANSCRIPT-BEGIN
# and -END. Exit status 0 only if everything passed.
# Kernel command line: vgpu.round_trips=N (default 3).

# shellcheck source=scripts/lib/guest.sh
. /usr/lib/vgpu/guest.sh

QEMU=/usr/bin/qemu-system-x86_64
SOCK=/tmp/mig.sock
round_trips=$(cmdline_value round_trips) || round_trips=3
WORK=/tmp/work.log

note() {
    echo "VGPU-MIG $*"
}

# now_ms: milliseconds of uptime.
now_ms() {
    awk '{ printf "%d", $1 * 1000 }' /proc/uptime
}

accel="-accel tcg"
if [ -c /dev/kvm ]; then
    accel="-accel kvm -cpu host"
fi

# --- QEMU instances: start, QMP, stop ---------------------------------------------
# start_vm NAME DEVICE_ARGS INCOMING RUN: an L2 QEMU named NAME in the
# background. DEVICE_ARGS: its vGPU (or nothing); INCOMING: an -incoming
# URI or nothing; RUN: what the L2's /init runs (its vgpu.run=). The
# console lines go to $WORK as "L2 | ..."; QMP replies to /tmp/NAME.qmp.log.
start_vm() {
    name=$1
    rm -f "/tmp/$name".*
    mkfifo "/tmp/$name.con.in" "/tmp/$name.con.out"
    qmp_fifos "$name"
    tr -d '\r' <"/tmp/$name.con.out" | while IFS= read -r line; do
        echo "L2 | $line"
        echo "$line" >>"$WORK"
    done &
    # shellcheck disable=SC2086 # accel and the device are lists of arguments
    "$QEMU" -L /usr/share/qemu $accel -m 256M -smp 1 -nodefaults -display none -no-reboot \
        -chardev "pipe,id=con,path=/tmp/$name.con" -serial chardev:con \
        -chardev "pipe,id=qmp,path=/tmp/$name.qmp" -mon chardev=qmp,mode=control \
        -kernel /l2/kernel -initrd /l2/initramfs.img \
        -append "$VGPU_BOOT_CMDLINE vgpu.run=$4" \
        $2 ${3:+-incoming "$3"} -trace vfio_migration_set_state -trace vfio_save_block \
        2>"/tmp/$name.err" &
    echo $! >"/tmp/$name.pid"
    qmp "$name" '"execute": "qmp_capabilities"' >/dev/null
}

# vgpu_bytes NAME: the vGPU's bytes NAME's QEMU read in pre-copy and in
# STOP_COPY (its vfio_save_block trace), as "PRE STOP".
vgpu_bytes() {
    awk '/new state STOP_COPY/ { stop = 1 }
         /vfio_save_block/ { n = $NF; if (stop) s += n; else p += n }
         END { printf "%d %d", p, s }' "/tmp/$1.err"
}

# wait_gone NAME SECS: wait for NAME's QEMU to exit; kill it after SECS.
wait_gone() {
    i=0
    while alive "$1"; do
        i=$((i + 1))
        if [ $i -gt $(($2 * 10)) ]; then
            kill -9 "$(cat "/tmp/$1.pid")" 2>/dev/null
            sleep 0.5
            return 1
        fi
        sleep 0.1
    done
}

# running NAME: the VM runs (QMP query-status).
running() {
    qmp "$1" '"execute": "query-status"' | grep -q '"running": true'
}

# work_lines: the workload's progress lines so far.
work_lines() {
    grep -c '^VGPU-WORK ' "$WORK" 2>/dev/null || true
}

# progress WHAT: the workload prints another progress line within 120 s.
progress() {
    n=$(work_lines)
    i=0
    while [ "$(work_lines)" -le "$n" ]; do
        i=$((i + 1))
        if [ $i -gt 1200 ] || grep -q "VGPU-WORK-DONE\|$VGPU_L2_EXIT" "$WORK"; then
            fail "$1: the workload made no progress ($(tail -n 1 "$WORK"))"
            return 1
        fi
        sleep 0.1
    done
    return 0
}

# mig_start SRC URI: start migrating SRC's VM to URI (a QEMU listening
# there, or a file); prints QMP's error if it does not start.
mig_start() {
    # The return path (destination to source) tells the source that a
    # destination refused the state, so it runs on; a file has none.
    rp=false
    case "$2" in unix:*) rp=true ;; esac
    qmp "$1" "\"execute\": \"migrate-set-capabilities\", \"arguments\": {\"capabilities\": [{\"capability\": \"return-path\", \"state\": $rp}]}" >/dev/null
    qmp "$1" '"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 4294967296}' >/dev/null
    reply=$(qmp "$1" "\"execute\": \"migrate\", \"arguments\": {\"uri\": \"$2\"}")
    case "$reply" in *'"error"'*)
        echo "$reply"
        return 1
        ;;
    esac
}

# mig_status SRC: the migration's status (active, completed, failed...).
mig_status() {
    qmp "$1" '"execute": "query-migrate"' | json_value status
}

# mig_wait SRC: wait until SRC's migration ends; prints query-migrate's reply.
mig_wait() {
    i=0
    while :; do
        reply=$(qmp "$1" '"execute": "query-migrate"')
        case "$(echo "$reply" | json_value status)" in
        completed | failed | cancelled) break ;;
        esac
        i=$((i + 1))
        [ $i -lt 1200 ] || break
        sleep 0.2
    done
    echo "$reply"
}

# migrate SRC URI: both; prints the final query-migrate reply.
migrate() {
    mig_start "$1" "$2" && mig_wait "$1"
}

# refused_load NAME WHAT: NAME's QEMU, loading a migration, gave up with an
# error and exited; the source (if any) is checked by the caller.
refused_load() {
    wait_gone "$1" 120 || {
        fail "$2: the destination QEMU did not give up"
        return 1
    }
    err=$(grep -i 'error while\|load.*fail\|failed to load' "/tmp/$1.err" | head -n 2 | tr '\n' ' ' | sed 's/ *$//')
    if [ -n "$err" ]; then
        ok "$2: the destination refused: $err"
    else
        fail "$2: the destination exited without an error message"
    fi
}

# --- the host driver and three vGPUs: A and B of one type, C of another ------------
load_host_driver || fail "insmod the host driver"
parent=$(find /sys/class/mdev_bus/ -mindepth 1 -maxdepth 1 2>/dev/null | head -n 1)
types="$parent/mdev_supported_types"
type=$(pick_vgpu_type | cut -f1)
other=""
for t in "$types"/*; do
    t=${t##*/}
    if [ "$t" != "$type" ] && [ "$(cat "$types/$t/available_instances")" -gt 0 ]; then
        other=$t
        break
    fi
done
if ua=$(vgpuctl create --type "$type") && ub=$(vgpuctl create --type "$type") &&
    uc=$(vgpuctl create --type "$other"); then
    ok "vGPUs A and B of type $type, C of type $other"
    # the slice, from the type's description (framebuffer=64M)
    mib=$(sed -n 's/.*framebuffer=\([0-9]*\)M.*/\1/p' "$types/$type/description")
    slice=$((${mib:-0} * 1048576))
else
    fail "create vGPUs of types $type and $other"
fi
dev() {
    echo "-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/$1"
}

# --- 1. ping-pong --------------------------------------------------------------------
: >"$WORK"
work="/bin/vgpu-l2-work,--pattern,$ua"
start_vm vm0 "$(dev "$ua")" "" "$work"
cur=vm0 on=$ua off=$ub
i=0
while ! grep -q '^VGPU-WORK ' "$WORK"; do
    i=$((i + 1))
    if [ $i -gt 1800 ] || grep -q "$VGPU_L2_EXIT" "$WORK"; then
        fail "the workload did not start"
        break
    fi
    sleep 0.1
done

hop=0
hops=$((round_trips * 2))
while [ "$failures" = 0 ] && [ $hop -lt $hops ]; do
    hop=$((hop + 1))
    next=vm$hop
    start_vm "$next" "$(dev "$off")" "unix:$SOCK" "$work"
    t=$(now_ms)
    reply=$(migrate "$cur" "unix:$SOCK")
    status=$(echo "$reply" | json_value status)
    if [ "$status" != completed ]; then
        fail "hop $hop: migration $status: $reply"
        break
    fi
    downtime=$(echo "$reply" | json_value downtime)
    total=$(echo "$reply" | json_value total-time)
    bytes=$(vgpu_bytes "$cur")
    note hop "$hop" downtime_ms="$downtime" total_ms="$total" wall_ms="$(($(now_ms) - t))" \
        vgpu_precopy_bytes="${bytes% *}" vgpu_stopcopy_bytes="${bytes#* }" \
        slice_bytes="$slice"
    qmp "$cur" '"execute": "quit"' >/dev/null
    wait_gone "$cur" 30 || fail "hop $hop: the source QEMU did not quit"
    [ $hop != 1 ] || {
        echo "VGPU-MIG-TRANSCRIPT-BEGIN"
        grep -h vfio_migration_set_state "/tmp/$cur.err" | sed 's/^/source: /'
        grep -h vfio_migration_set_state "/tmp/$next.err" | sed 's/^/destination: /'
        echo "VGPU-MIG-TRANSCRIPT-END"
    }
    running "$next" || fail "hop $hop: the destination does not run"
    progress "hop $hop" && ok "hop $hop: $on -> $off in ${total} ms, downtime ${downtime} ms; the workload goes on"
    cur=$next
    x=$on on=$off off=$x
done

# --- 2. failure paths: the source goes on each time ------------------------------------
# source_goes_on WHAT: the source VM runs and the workload makes progress.
source_goes_on() {
    if running "$cur" && progress "$1"; then
        ok "$1: the source goes on"
    else
        fail "$1: the source does not go on ($(mig_status "$cur"))"
    fi
}

if [ "$failures" = 0 ]; then
    # Cancelled while it runs.
    start_vm fcancel "$(dev "$off")" "unix:$SOCK" "$work"
    mig_start "$cur" "unix:$SOCK"
    i=0
    while [ "$(mig_status "$cur")" != active ] && [ $i -lt 100 ]; do
        i=$((i + 1))
        sleep 0.1
    done
    qmp "$cur" '"execute": "migrate_cancel"' >/dev/null
    reply=$(mig_wait "$cur")
    status=$(echo "$reply" | json_value status)
    # (QEMU reports a cancel that its return path saw first as failed)
    note cancel status="$status" "$(echo "$reply" | sed -n 's/.*"error-desc": "\([^"]*\)".*/\1/p')"
    case "$status" in
    cancelled | failed) ok "cancel: the migration was cancelled while it ran" ;;
    *) fail "cancel: the migration ended ${status:-?}, not cancelled" ;;
    esac
    wait_gone fcancel 60 || true
    source_goes_on "cancel"

    # A destination vGPU of another type.
    start_vm ftype "$(dev "$uc")" "unix:$SOCK" "$work"
    status=$(migrate "$cur" "unix:$SOCK" | json_value status)
    [ "$status" = failed ] || fail "another type: the migration ended ${status:-?}, not failed"
    refused_load ftype "another type ($other)"
    why=$(dmesg | grep 'vgpu_vfio' | grep -i 'type' | tail -n 1 | sed 's/^\[[ 0-9.]*\] //')
    [ -z "$why" ] || ok "another type: L1's kernel says: $why"
    source_goes_on "another type"

    # The destination vGPU removed while it resumes: the removal waits for
    # the destination QEMU, whose load fails; B comes back for what follows.
    start_vm fremove "$(dev "$off")" "unix:$SOCK" "$work"
    mig_start "$cur" "unix:$SOCK"
    i=0
    until grep -q 'new state RESUMING' /tmp/fremove.err || [ $i -gt 300 ]; do
        i=$((i + 1))
        sleep 0.1
    done
    echo 1 >"/sys/bus/mdev/devices/$off/remove" &
    remover=$!
    status=$(mig_wait "$cur" | json_value status)
    [ "$status" = failed ] || fail "removed while resuming: the migration ended ${status:-?}, not failed"
    refused_load fremove "removed while resuming"
    if wait "$remover" && [ ! -e "/sys/bus/mdev/devices/$off" ]; then
        ok "removed while resuming: the vGPU is gone once its QEMU let go"
    else
        fail "removed while resuming: the vGPU was not removed"
    fi
    why=$(dmesg | grep 'vgpu_vfio' | grep 'being removed' | tail -n 1 | sed 's/^\[[ 0-9.]*\] //')
    [ -z "$why" ] || ok "removed while resuming: L1's kernel says: $why"
    source_goes_on "removed while resuming"
    vgpuctl create --type "$type" --uuid "$off" >/dev/null || fail "create vGPU $off again"
fi

# --- 3. a snapshot to a file; a cut and a corrupted copy --------------------------------
if [ "$failures" = 0 ]; then
    snap=/tmp/snap.bin
    status=$(migrate "$cur" "file:$snap" | json_value status)
    if [ "$status" = completed ]; then
        ok "snapshot: the VM with its vGPU saved to a file ($(($(wc -c <"$snap") / 1048576)) MiB)"
    else
        fail "snapshot: saving ended ${status:-?}: $(qmp "$cur" '"execute": "query-migrate"')"
    fi
    qmp "$cur" '"execute": "quit"' >/dev/null
    wait_gone "$cur" 30 || fail "snapshot: the saved QEMU did not quit"
    # Where the vGPU's stream starts: its header's magic.
    at=$(strings -t d -n 4 "$snap" | grep -m 1 ' vGMG' | awk '{ print $1 }')
    if [ -n "$at" ]; then
        # Cut inside the vGPU's state: the load must fail, not hang.
        head -c $((at + 4096)) "$snap" >/tmp/cut.bin
        start_vm fcut "$(dev "$on")" "file:/tmp/cut.bin" "$work"
        refused_load fcut "a cut snapshot"
        rm -f /tmp/cut.bin
        # One byte of the vGPU's saved context changed.
        cp "$snap" /tmp/bad.bin
        printf '\377' | dd of=/tmp/bad.bin bs=1 seek=$((at + 80)) conv=notrunc 2>/dev/null
        start_vm fbad "$(dev "$on")" "file:/tmp/bad.bin" "$work"
        refused_load fbad "a corrupted snapshot"
        rm -f /tmp/bad.bin
        why=$(dmesg | grep 'vgpu' | grep -i 'refus\|checksum\|corrupt' | tail -n 1 | sed 's/^\[[ 0-9.]*\] //')
        [ -z "$why" ] || ok "a corrupted snapshot: L1's kernel says: $why"
    else
        fail "snapshot: no vGPU stream (magic vGMG) in the file"
    fi
    # The intact file, into a fresh QEMU on the other vGPU.
    start_vm frestore "$(dev "$off")" "file:$snap" "$work"
    i=0
    while ! running frestore && [ $i -lt 600 ]; do
        i=$((i + 1))
        sleep 0.2
    done
    rm -f "$snap"
    cur=frestore
    x=$on on=$off off=$x
    if running "$cur" && progress "restore"; then
        ok "snapshot: restored into a fresh QEMU on the other vGPU; the workload goes on"
    else
        fail "snapshot: the restored VM does not go on"
    fi
fi

# --- 4. the end of the workload --------------------------------------------------------
if alive "$cur"; then
    timeout 10 sh -c "echo stop >/tmp/$cur.con.in"
    wait_gone "$cur" 120 || fail "the L2 did not power off after stop"
fi
done_line=$(grep '^VGPU-WORK-DONE' "$WORK" | tail -n 1)
status=$(sed -n "s/.*$VGPU_L2_EXIT \\([0-9]*\\).*/\\1/p" "$WORK" | tail -n 1)
case "$done_line" in
*" errors=0 "*keeper=ok*) ok "workload: $done_line" ;;
*) fail "workload: ${done_line:-no end line}" ;;
esac
[ "$status" = 0 ] || fail "the L2 test exited with ${status:-nothing}"
grep '^bench ' "$WORK" | while read -r _ name value; do
    note bench "$name" "$value"
done
bad=$(dmesg_problems "$WORK")
[ -z "$bad" ] || {
    fail "kernel problems in the L2's dmesg:"
    echo "$bad"
}

# --- 5. the same L2 without a vGPU ---------------------------------------------------------
: >"$WORK"
start_vm plain0 "" "" "read,line"
i=0
until grep -q "$VGPU_L2_INIT" "$WORK"; do
    i=$((i + 1))
    [ $i -lt 1800 ] || break
    sleep 0.1
done
sleep 2
cur=plain0
for hop in 1 2; do
    next=plain$hop
    start_vm "$next" "" "unix:$SOCK" "read,line"
    reply=$(migrate "$cur" "unix:$SOCK")
    if [ "$(echo "$reply" | json_value status)" = completed ]; then
        note plain "$hop" downtime_ms="$(echo "$reply" | json_value downtime)" \
            total_ms="$(echo "$reply" | json_value total-time)"
    else
        fail "plain hop $hop: $reply"
    fi
    qmp "$cur" '"execute": "quit"' >/dev/null
    wait_gone "$cur" 30
    cur=$next
done
timeout 10 sh -c "echo stop >/tmp/$cur.con.in"
wait_gone "$cur" 60 || fail "the plain L2 did not power off"

# --- tear down ----------------------------------------------------------------------------
for u in $ua $ub $uc; do
    vgpuctl destroy "$u" || fail "remove vGPU $u"
done
unload_host_driver || fail "unload the host driver"
note failures "$failures"
checks_passed
