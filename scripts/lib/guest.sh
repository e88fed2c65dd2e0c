# shellcheck shell=sh
# guest.sh - sourced by the scripts that run inside the L1 and L2 guests
# (busybox sh): mounts, the kernel command line, module loading, named
# checks, and the end of a run (exit marker, dmesg, power off).
# build-images.sh packs it with common.sh into every image at /usr/lib/vgpu.

# shellcheck source=scripts/lib/common.sh
. /usr/lib/vgpu/common.sh

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

# guest_mount: the filesystems of an initramfs /init. The kernel opened
# /dev/console from the initramfs; it is reopened on devtmpfs.
guest_mount() {
    mount -t devtmpfs -o mode=0755 devtmpfs /dev 2>/dev/null
    exec </dev/console >/dev/console 2>&1
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mkdir -p /dev/pts /dev/shm /run /tmp
    mount -t devpts devpts /dev/pts
    mount -t tmpfs tmpfs /dev/shm
    mount -t tmpfs tmpfs /run
    mount -t tmpfs tmpfs /tmp
    mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
}

# cmdline_value NAME: the value of vgpu.NAME=... on the kernel command line
# (the last one wins); fails when there is none.
cmdline_value() {
    # shellcheck disable=SC2013 # the command line is words, not lines
    for arg in $(cat /proc/cmdline); do
        case "$arg" in
        "vgpu.$1="*) echo "${arg#*=}" ;;
        esac
    done | tail -n 1 | grep .
}

# cmdline_words NAME: cmdline_value with commas turned into spaces
# (vgpu.run=/t/x,--fast means "/t/x --fast").
cmdline_words() {
    cmdline_value "$1" | tr ',' ' '
}

# cmdline_flag NAME: whether the bare word vgpu.NAME is on the command line.
cmdline_flag() {
    grep -qw "vgpu\\.$1" /proc/cmdline
}

# load_module NAME [DIR]: insmod DIR/NAME.ko (default $VGPU_MODULES_DIR).
load_module() {
    insmod "${2:-$VGPU_MODULES_DIR}/$1.ko"
}

# load_host_driver / unload_host_driver: vgpu_rm, then vgpu_vfio (its user).
load_host_driver() {
    load_module vgpu_rm && load_module vgpu_vfio
}
unload_host_driver() {
    rmmod vgpu_vfio && rmmod vgpu_rm
}

# rm_vram_all_free PF: the RM's debugfs says all of GPU PF's VRAM is free
# (free_bytes equals total_bytes).
rm_vram_all_free() {
    # shellcheck disable=SC2016 # an awk program
    awk 'BEGIN { r = 1 } /^total_bytes=/ { split($1, t, "="); split($2, f, "="); r = t[2] != f[2] }
        END { exit r }' "/sys/kernel/debug/vgpu_rm/$1/vram"
}

# Named checks: "ok   NAME" or "FAIL NAME: why"; failures counts them.
failures=0
ok() {
    echo "ok   $*"
}
fail() {
    echo "FAIL $*"
    failures=$((failures + 1))
}
# check NAME CMD...: CMD must succeed.
check() {
    name=$1
    shift
    if "$@" >/tmp/check.out 2>&1; then
        ok "$name"
    else
        fail "$name: $(tail -n 3 /tmp/check.out | tr '\n' ' ')"
    fi
}
# refuse NAME WANT CMD...: CMD must fail and say WANT.
refuse() {
    name=$1
    want=$2
    shift 2
    if "$@" >/tmp/check.out 2>&1; then
        fail "$name: accepted"
    elif grep -q "$want" /tmp/check.out; then
        ok "$name"
    else
        fail "$name: said $(tr '\n' ' ' </tmp/check.out)"
    fi
}
# checks_passed: the status of a script whose checks are done.
checks_passed() {
    [ "$failures" = 0 ]
}

# pick_vgpu_type: the vGPU type for two or more vGPUs, from `vgpuctl types`
# ("  type ID available=N name="..." DESCRIPTION"): the one made for four
# (max_instances=4), else the one with the most available instances (two
# at least). Prints "ID<tab>available<tab>description".
pick_vgpu_type() {
    vgpuctl types | awk '
        $1 == "type" {
            avail = $3
            sub(/^available=/, "", avail)
            desc = $0
            sub(/^[^"]*"[^"]*" ?/, "", desc)
            if (pick == "" && desc ~ /max_instances=4(,|$)/) pick = $2 "\t" avail "\t" desc
            if (avail + 0 > most) { most = avail + 0; best = $2 "\t" avail "\t" desc }
        }
        END {
            if (pick == "" && most >= 2) pick = best
            if (pick == "") exit 1
            print pick
        }'
}

# guest_dmesg FILTER: the kernel log between console markers, as much of it
# as FILTER (a command reading it on stdin: cat for all of it) keeps.
guest_dmesg() {
    echo "VGPU-DMESG-BEGIN"
    dmesg | $1
    echo "VGPU-DMESG-END"
}

# --- L2 QEMUs run from L1: QMP on a FIFO pair ------------------------------------
# An L2 QEMU named NAME is started with
#   -chardev pipe,id=qmp,path=/tmp/NAME.qmp -mon chardev=qmp,mode=control
#   -pidfile /tmp/NAME.pid
# after qmp_fifos NAME made the FIFOs and a reader that keeps the replies in
# /tmp/NAME.qmp.log; then qmp NAME '"execute": "qmp_capabilities"'.

# qmp_fifos NAME: the QMP FIFO pair of NAME and the reply reader.
qmp_fifos() {
    rm -f "/tmp/$1.qmp.in" "/tmp/$1.qmp.out"
    mkfifo "/tmp/$1.qmp.in" "/tmp/$1.qmp.out"
    : >"/tmp/$1.qmp.log"
    cat "/tmp/$1.qmp.out" >>"/tmp/$1.qmp.log" &
}

# qmp NAME MEMBERS: send {MEMBERS, "id": ...} to NAME's QMP, print the reply.
# (The id is unique even between subshells that share a QEMU.)
qmp() {
    id="q$(cat /proc/sys/kernel/random/uuid)"
    # (the FIFO is open in QEMU from its start; timeout: QEMU may be gone)
    timeout 10 sh -c "echo '{$2, \"id\": \"$id\"}' >/tmp/$1.qmp.in" || {
        echo "qmp $1: cannot send $2"
        return 1
    }
    i=0
    while ! grep -q "\"id\": \"$id\"" "/tmp/$1.qmp.log"; do
        i=$((i + 1))
        if [ $i -gt 600 ] || ! alive "$1"; then
            echo "qmp $1: no reply to $2"
            return 1
        fi
        sleep 0.1
    done
    grep "\"id\": \"$id\"" "/tmp/$1.qmp.log" | tail -n 1
}

# alive NAME: NAME's QEMU (its /tmp/NAME.pid) still runs.
alive() {
    kill -0 "$(cat "/tmp/$1.pid" 2>/dev/null)" 2>/dev/null
}

# json_value KEY: the scalar value of "KEY" in the JSON line on stdin.
json_value() {
    sed -n "s/.*\"$1\": \"\\{0,1\\}\\([^\",}]*\\).*/\\1/p" | head -n 1
}

# screendump NAME FILE [DEVICE]: NAME's display as a PPM in FILE (QMP
# screendump: the VMM's own view of the guest's screen), the console of
# the device with id DEVICE if given (else the first console: the VGA's).
screendump() {
    rm -f "$2"
    qmp "$1" "\"execute\": \"screendump\", \"arguments\": {\"filename\": \"$2\"${3:+, \"device\": \"$3\"}}" |
        grep -q '"return"' && [ -s "$2" ]
}

# --- files out to L0 -----------------------------------------------------------------
# run-l1.sh FILES_OUT=DIR gives L1 a second serial port (ttyS1) that writes
# to a stream file in L0, which host.sh's unpack_files splits again.
FILES_PORT=/dev/ttyS1

# send_file NAME FILE: FILE to L0 as DIR/NAME.gz (a header line, then the
# bytes, gzipped: the port is an emulated UART).
send_file() {
    [ -c "$FILES_PORT" ] || return 1
    stty -F "$FILES_PORT" raw -echo 2>/dev/null
    gzip -1 -c "$2" >"/tmp/send_file.gz" || return 1
    size=$(wc -c <"/tmp/send_file.gz")
    {
        printf 'VGPU-FILE %s.gz %s\n' "$1" "$size"
        cat "/tmp/send_file.gz"
    } >"$FILES_PORT"
    rm -f "/tmp/send_file.gz"
}

# guest_poweroff: let the UART drain before the machine disappears.
guest_poweroff() {
    sync
    sleep 0.2
    poweroff -f
}
