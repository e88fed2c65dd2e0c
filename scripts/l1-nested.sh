#!/bin/sh
# l1-nested.sh - runs in L1 for run-nested.sh (busybox sh, in the image
# build-l2-images.sh makes): load the host driver, create two vGPUs, boot
# two L2 guests on them at the same time, relay their consoles (lines
# prefixed "L2a | " and "L2b | "), check what they report, destroy the
# vGPUs and unload the driver. Exit status 0 only if everything passed.
#
# For run-nested.sh's summary it prints "VGPU-NESTED <key> <value>..." lines.
# Kernel command line (run-nested.sh sets these):
#   vgpu.l2accel=kvm|tcg   default kvm when /dev/kvm works with nested paging
#   vgpu.l2timeout=SECS    per L2 guest; default 480 (KVM) or 1500 (TCG)
#   vgpu.mode=mdev|sriov   default mdev
#   vgpu.type=NAME         mdev type; default the one with max_instances=4
#   vgpu.l2mem=SIZE        L2 memory (default 256M)
#   vgpu.novgpu            no host driver, no vGPUs: the L2 guests run lspci
#
# Screens: each L2 QEMU shows its vGPU's display head (vfio-pci display=on,
# a region plane; L2a asks for 1024x768 through the EDID, L2b for 800x600)
# and has QMP on a FIFO pair. An L2 that prints "VGPU-L2-SCREEN TAG" waits
# for a line: L1 takes a screendump of it to /tmp/NAME-TAG.ppm, notes
# "VGPU-NESTED screen NAME TAG ...", and answers "shot" (or "no-shot").
# The screendumps go out to L0 on ttyS1 (run-l1.sh FILES_OUT) at the end.

# shellcheck source=scripts/lib/guest.sh
. /usr/lib/vgpu/guest.sh

QEMU=/usr/bin/qemu-system-x86_64

now() {
    cut -d' ' -f1 /proc/uptime
}

# since T0: seconds from T0 (a now value) until now, one decimal.
since() {
    awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'
}

# now_us: the time of day in microseconds (busybox date has no %N).
now_us() {
    adjtimex | awk '/tv_sec:/ { s = $2 } /tv_usec:/ { u = $2 } END { printf "%d%06d", s, u }'
}

# ms_since T0: milliseconds from T0 (a now_us value) until now.
ms_since() {
    awk -v a="$1" -v b="$(now_us)" 'BEGIN { printf "%.1f", (b - a) / 1e3 }'
}

note() {
    echo "VGPU-NESTED $*"
}

l2accel=$(cmdline_value l2accel)
l2timeout=$(cmdline_value l2timeout)
type=$(cmdline_value type)
mode=$(cmdline_value mode) || mode=mdev
l2mem=$(cmdline_value l2mem) || l2mem=256M
novgpu=0
if cmdline_flag novgpu; then
    novgpu=1
fi

# --- L2 accelerator: KVM needs nested paging (docs/NESTING.md) -----------------
if [ -z "$l2accel" ]; then
    l2accel=tcg
    npt=$(cat /sys/module/kvm_amd/parameters/npt /sys/module/kvm_intel/parameters/ept 2>/dev/null)
    if [ -c /dev/kvm ]; then
        case "$npt" in Y* | 1*) l2accel=kvm ;; esac
    fi
fi
case "$l2accel" in
kvm) accel="-accel kvm -cpu host" && : "${l2timeout:=480}" ;;
*) accel="-accel tcg" && : "${l2timeout:=1500}" ;;
esac
note accel_l2 "$l2accel"
echo "l1-nested: L2 guests under $l2accel (timeout ${l2timeout}s each)"

# The L2 screens: the display head through QEMU's region plane, the mode
# each guest's EDID prefers.
# (id: the console screendump shows; the L2s' standard VGA has the first.)
DISPLAY_A="id=vgpu,display=on,xres=1024,yres=768"
DISPLAY_B="id=vgpu,display=on,xres=800,yres=600"

# --- host driver and vGPUs: mdev mode ------------------------------------------
ua="" ub=""
setup_mdev() {
    t=$(now)
    load_host_driver || fail "insmod the host driver"
    note stage l1_modules "$(since "$t")"
    parent=$(find /sys/class/mdev_bus/ -mindepth 1 -maxdepth 1 2>/dev/null | head -n 1)
    [ -n "$parent" ] || fail "no mdev parent in /sys/class/mdev_bus"
    types="$parent/mdev_supported_types"
    # vgpuctl picks the type (unless vgpu.type= names one) and creates.
    if picked=$(pick_vgpu_type); then
        : "${type:=$(echo "$picked" | cut -f1)}"
    fi
    if [ -n "$type" ] && [ -d "$types/$type" ]; then
        echo "l1-nested: type $type: $(cat "$types/$type/description" 2>/dev/null)," \
            "available $(cat "$types/$type/available_instances")"
        t=$(now_us)
        if ua=$(vgpuctl create --type "$type") && ub=$(vgpuctl create --type "$type"); then
            note stage vgpu_create_ms "$(ms_since "$t")"
            ok "two vGPUs of type $type created: $ua $ub"
            deva="-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/$ua${DISPLAY_A:+,$DISPLAY_A}"
            devb="-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/$ub${DISPLAY_B:+,$DISPLAY_B}"
        else
            ua="" ub=""
            fail "create vGPUs of type $type"
        fi
    else
        fail "no mdev type with room for two vGPUs"
    fi
}

# the parent's sysfs tree while the vGPUs exist
sysfs_mdev() {
    echo "VGPU-SYSFS-BEGIN"
    echo "parent: driver $(basename "$(readlink -f "$parent/driver")"), $(cat "$parent/vendor"):$(cat "$parent/device")"
    for dir in "$types"/*; do
        for f in name description available_instances device_api; do
            echo "${dir##*/}/$f: $(cat "$dir/$f")"
        done
        n=0
        for d in "$dir"/devices/*; do [ -e "$d" ] && n=$((n + 1)); done
        echo "${dir##*/}/devices: $n"
    done
    for u in $ua $ub; do
        d=/sys/bus/mdev/devices/$u
        echo "mdev $u: type $(basename "$(readlink -f "$d/mdev_type")")," \
            "driver $(basename "$(readlink -f "$d/driver")")," \
            "iommu_group $([ -e "$d/iommu_group" ] && echo yes || echo no)"
    done
    echo "VGPU-SYSFS-END"
}

teardown_mdev() {
    t=$(now_us)
    for uuid in $ua $ub; do
        vgpuctl destroy "$uuid" || fail "remove vGPU $uuid"
    done
    note stage vgpu_destroy_ms "$(ms_since "$t")"
    for uuid in $ua $ub; do
        [ ! -e "/sys/bus/mdev/devices/$uuid" ] || fail "vGPU $uuid still exists"
    done
    if unload_host_driver; then
        ok "vGPUs destroyed, host driver unloaded"
    else
        fail "unload the host driver"
    fi
}

# --- host driver and vGPUs: SR-IOV mode ------------------------------------------
# The PF (P), its VFs' sysfs directories (vf N), VF0 and VF1's names (ua, ub:
# the L2 guests' pattern names) and the type IDs they get (ta, tb).
vf() {
    echo "/sys/bus/pci/devices/$(basename "$(readlink "$P/virtfn$1")")"
}

setup_sriov() {
    t=$(now)
    if load_host_driver && load_module vgpu_vfio_pci; then
        note stage l1_modules "$(since "$t")"
    else
        fail "insmod the host driver and vgpu_vfio_pci"
        return
    fi
    pf=""
    for d in /sys/bus/pci/drivers/vgpu_rm/0000:*; do [ -e "$d" ] && pf=$(basename "$d"); done
    P=/sys/bus/pci/devices/$pf
    if ! echo sriov >"$P/vgpu_mode"; then
        fail "vgpu_mode sriov on $pf"
        return
    fi
    nvfs=$(cat "$P/sriov_totalvfs")
    t=$(now_us)
    if echo "$nvfs" >"$P/sriov_numvfs"; then
        note stage vf_enable_ms "$(ms_since "$t")"
        ok "$nvfs VFs enabled"
    else
        fail "enable $nvfs VFs"
        return
    fi
    # Two types of different sizes: the first two VF0 can take.
    ta=$(sed -n 2p "$(vf 0)/creatable_vgpu_types" | cut -d' ' -f1)
    tb=$(sed -n 3p "$(vf 0)/creatable_vgpu_types" | cut -d' ' -f1)
    t=$(now_us)
    if [ -n "$tb" ] && echo "$ta" >"$(vf 0)/current_vgpu_type" &&
        echo "$tb" >"$(vf 1)/current_vgpu_type"; then
        note stage vgpu_create_ms "$(ms_since "$t")"
        ua=$(basename "$(vf 0)") ub=$(basename "$(vf 1)")
        ok "VF0 and VF1 take types $ta and $tb"
        deva="-device vfio-pci,host=$ua${DISPLAY_A:+,$DISPLAY_A}"
        devb="-device vfio-pci,host=$ub${DISPLAY_B:+,$DISPLAY_B}"
    else
        ua="" ub=""
        fail "give VF0 and VF1 two types (creatable: $(tr '\n' ' ' <"$(vf 0)/creatable_vgpu_types"))"
        return
    fi
    for v in "$ua" "$ub"; do
        drv=$(basename "$(readlink "/sys/bus/pci/devices/$v/driver")")
        [ "$drv" = vgpu_vfio_pci ] || fail "$v is bound to ${drv:-nothing}, not vgpu_vfio_pci"
    done
    # A VMM cannot open a VF that has no type (VF2 has none).
    # shellcheck disable=SC2086 # accel is a list of arguments
    refuse "QEMU refused a VF without a type" "No such device" \
        timeout 60 "$QEMU" -L /usr/share/qemu $accel -m 64M -nodefaults -S \
        -display none -monitor none -serial none \
        -device "vfio-pci,host=$(basename "$(vf 2)")"
}

# The VFs' sysfs view while both are open by their VMMs.
sysfs_sriov() {
    echo "VGPU-SYSFS-BEGIN"
    echo "PF: driver $(basename "$(readlink -f "$P/driver")"), $(cat "$P/vendor"):$(cat "$P/device")," \
        "vgpu_mode $(cat "$P/vgpu_mode"), sriov_numvfs $(cat "$P/sriov_numvfs") of $(cat "$P/sriov_totalvfs")"
    i=0
    while [ -e "$P/virtfn$i" ]; do
        d=$(vf $i)
        echo "VF$i: $(cat "$d/vendor"):$(cat "$d/device")," \
            "driver $(basename "$(readlink -f "$d/driver")")," \
            "iommu_group $([ -e "$d/iommu_group" ] && echo yes || echo no)," \
            "current_vgpu_type $(cat "$d/current_vgpu_type")"
        sed 's/^/  creatable: /' "$d/creatable_vgpu_types"
        i=$((i + 1))
    done
    echo "VGPU-SYSFS-END"
}

# While both VFs are open: what the admin cannot change under a VMM.
busy_sriov() {
    refuse "sriov_numvfs cannot change while VFs are open" "busy" sh -c "echo 0 > $P/sriov_numvfs"
    refuse "current_vgpu_type cannot change while the VF is open" "busy" \
        sh -c "echo 0 > $(vf 0)/current_vgpu_type"
}

teardown_sriov() {
    t=$(now_us)
    for i in 0 1; do
        echo 0 >"$(vf $i)/current_vgpu_type" || fail "release VF$i's type"
    done
    note stage vgpu_destroy_ms "$(ms_since "$t")"
    check "the released slices are free again" rm_vram_all_free "$pf"
    if echo 0 >"$P/sriov_numvfs" && echo mdev >"$P/vgpu_mode" &&
        rmmod vgpu_vfio_pci && unload_host_driver; then
        ok "types released, VFs disabled, host driver unloaded"
    else
        fail "release the VFs and unload the host driver"
    fi
}

if [ "$novgpu" = 0 ]; then
    "setup_$mode"
    [ -z "$ua" ] || "sysfs_$mode"
fi

# --- the L2 guests ----------------------------------------------------------------
# relay NAME: prefix each console line with NAME, keep a log, stamp markers.
relay() {
    while IFS= read -r line; do
        echo "$1 | $line"
        echo "$line" >>"/tmp/$1.log"
        case "$line" in
        *"$VGPU_L2_INIT"*) now >"/tmp/$1.t_init" ;;
        *VGPU-L2-SYNC*) now >"/tmp/$1.sync" ;;
        *VGPU-L2-SCREEN\ *) shoot "$1" "${line##*VGPU-L2-SCREEN }" ;;
        esac
    done
    now >"/tmp/$1.t_end"
}

# frame_rate NAME SIZE: how many whole frames a second QEMU pulls through
# the region plane: 10 screendumps sent to its QMP at once (each queries
# the plane, reads the frame from the mmap'ed region and writes it as a
# PPM to tmpfs), timed from the send to the tenth reply.
frame_rate() {
    cmds="" i=0
    while [ $i -lt 10 ]; do
        i=$((i + 1))
        cmds="$cmds{\"execute\": \"screendump\", \"arguments\": {\"filename\": \"/tmp/$1-rate.ppm\", \"device\": \"vgpu\"}, \"id\": \"rate$i\"}
"
    done
    t=$(now_us)
    # (timeout: a QEMU that is gone never opens its FIFO again)
    # shellcheck disable=SC2016 # $0 and $1 belong to the inner sh
    timeout 10 sh -c 'printf "%s" "$0" >"$1"' "$cmds" "/tmp/$1.qmp.in" || return 0
    i=0
    while ! grep -q '"id": "rate10"' "/tmp/$1.qmp.log"; do
        i=$((i + 1))
        [ $i -lt 2000 ] || return 0
        sleep 0.02
    done
    n=$(grep -c '"return".*"id": "rate' "/tmp/$1.qmp.log")
    note display_fps "$1" "$2" "$(awk -v n="$n" -v a="$t" -v b="$(now_us)" 'BEGIN { printf "%.1f", n * 1e6 / (b - a) }')"
    rm -f "/tmp/$1-rate.ppm"
}

# heads: what the RM's debugfs says of each vGPU's display head.
heads() {
    for f in /sys/kernel/debug/vgpu_rm/*/partitions; do
        awk '/owner=[0-9a-f]/ {
            for (i = 1; i <= NF; i++)
                if ($i ~ /^(index|display|link|edid|vblanks)=/) printf "%s ", $i
            print ""
        }' "$f"
    done
}

# shoot NAME TAG: NAME's screen into /tmp/NAME-TAG.ppm (the L2 waits for
# the answer on its console). The time is from the L2's line reaching L1
# to the screendump written: for a tag flipN, the frame the L2 flipped to
# before it printed the line must be in it.
shoot() {
    t=$(now_us)
    tag=$(echo "$2" | tr -cd 'a-z0-9-')
    if screendump "$1" "/tmp/$1-$tag.ppm" vgpu >/dev/null; then
        size=$(head -c 20 "/tmp/$1-$tag.ppm" | sed -n 2p | tr ' ' x)
        note screen "$1" "$tag" "size=$size" "ms=$(ms_since "$t")"
        [ "$tag" != frame0 ] || frame_rate "$1" "$size"
        reply=shot
    else
        note screen "$1" "$tag" "failed"
        reply=no-shot
    fi
    heads | sed "s/^/heads at $1 $tag: /"
    # (through the descriptor: start_l2 removed the FIFO's name)
    if [ "$1" = L2a ]; then
        echo "$reply" >&3
    else
        echo "$reply" >&4
    fi
}

# start_l2 NAME VGPU PEER_VGPU DEVICE_ARGS: boot one L2 guest in the background; its
# console input comes from fd 3 (L2a) or fd 4 (L2b).
start_l2() {
    rm -f "/tmp/$1".*
    if [ "$novgpu" = 1 ]; then
        dev="" run="vgpu.run=lspci,-nn"
    else
        dev=$4
        run="vgpu.args=--name,$1,--pattern,$2,--peer,$3,--sync"
        # L2b boots without MSI, so its driver takes INTx: the two guests
        # run both of the frontend's interrupt paths (MSI-X and INTx with
        # KVM's resampling irqfd) end to end. A VF has no INTx (PCIe).
        if [ "$1" = L2b ] && [ "$mode" = mdev ]; then
            run="pci=nomsi $run,--irq,intx"
        fi
        # The display check: its test frames' seed and the mode the EDID
        # (xres, yres of DISPLAY_A/B) makes the guest prefer.
        if [ "$1" = L2a ]; then
            display="a5c3,1024x768"
        else
            display="5b3c,800x600"
        fi
        if [ -n "$DISPLAY_A" ]; then
            run="$run vgpu.display=$display"
            note display "$1" "seed=${display%,*}" "mode=${display#*,}"
        fi
    fi
    qmp_fifos "$1"
    now >"/tmp/$1.t0"
    (
        # shellcheck disable=SC2086 # accel and dev are lists of arguments
        if [ "$1" = L2a ]; then
            timeout "$l2timeout" "$QEMU" -L /usr/share/qemu $accel -m "$l2mem" -smp 1 \
                -nographic -nic none -no-reboot -kernel /l2/kernel -initrd /l2/initramfs.img \
                -chardev "pipe,id=qmp,path=/tmp/$1.qmp" -mon chardev=qmp,mode=control \
                -pidfile "/tmp/$1.pid" \
                -append "$VGPU_BOOT_CMDLINE $run" $dev -device edu <&3
        else
            timeout "$l2timeout" "$QEMU" -L /usr/share/qemu $accel -m "$l2mem" -smp 1 \
                -nographic -nic none -no-reboot -kernel /l2/kernel -initrd /l2/initramfs.img \
                -chardev "pipe,id=qmp,path=/tmp/$1.qmp" -mon chardev=qmp,mode=control \
                -pidfile "/tmp/$1.pid" \
                -append "$VGPU_BOOT_CMDLINE $run" $dev -device edu <&4
        fi
        echo "VGPU-L2-QEMU-EXIT $?"
    ) 2>&1 | tr -d '\r' | relay "$1" &
    # QMP answers once QEMU runs; the screendumps need it.
    i=0
    while ! [ -s "/tmp/$1.pid" ] && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    qmp "$1" '"execute": "qmp_capabilities"' >/dev/null || echo "l1-nested: no QMP for $1"
}

if [ "$failures" != 0 ]; then
    echo "l1-nested: no L2 guests without their vGPUs"
    note failures "$failures"
    exit 1
fi

# Console input through FIFOs held open here, so QEMU never sees EOF.
mkfifo /tmp/L2a.in /tmp/L2b.in
exec 3<>/tmp/L2a.in 4<>/tmp/L2b.in
t=$(now)
start_l2 L2a "$ua" "$ub" "$deva"
start_l2 L2b "$ub" "$ua" "$devb"

# The isolation check runs while both guests hold their patterns: each
# prints VGPU-L2-SYNC and waits for a line; "alone" if the other died.
if [ "$novgpu" = 0 ]; then
    while :; do
        if [ -e /tmp/L2a.sync ] && [ -e /tmp/L2b.sync ]; then
            [ "$mode" != sriov ] || busy_sriov
            msg=go
            break
        fi
        if [ -e /tmp/L2a.t_end ] || [ -e /tmp/L2b.t_end ]; then
            msg=alone
            break
        fi
        sleep 0.2
    done
    echo "$msg" >&3
    echo "$msg" >&4
    [ "$msg" = go ] && note sync_after "$(since "$t")"
fi
wait
note stage l2_both "$(since "$t")"

# The screens out to L0 (run-l1.sh FILES_OUT), gzipped on ttyS1.
t=$(now)
for f in /tmp/L2a-*.ppm /tmp/L2b-*.ppm; do
    [ -e "$f" ] || continue
    send_file "$(basename "$f")" "$f" || echo "l1-nested: cannot send $f out (no FILES_OUT?)"
done
note stage screens_out "$(since "$t")"

# --- what the guests said ---------------------------------------------------------
for name in L2a L2b; do
    log=/tmp/$name.log
    touch "$log"
    t0=$(cat "/tmp/$name.t0")
    boot=$(awk -v a="$t0" '{ printf "%.1f", $1 - a }' "/tmp/$name.t_init" 2>/dev/null)
    total=$(awk -v a="$t0" '{ printf "%.1f", $1 - a }' "/tmp/$name.t_end")
    status=$(sed -n "s/.*$VGPU_L2_EXIT \\([0-9]*\\).*/\\1/p" "$log" | head -n 1)
    qstatus=$(sed -n 's/.*VGPU-L2-QEMU-EXIT \([0-9]*\).*/\1/p' "$log" | head -n 1)
    # busybox timeout returns the child's status, and QEMU exits 0 on the
    # SIGTERM it sends: its farewell line is how a timeout shows.
    if grep -q 'terminating on signal 15' "$log"; then
        qstatus=124
    fi
    # (the first summary is vgpu-l2-test's; vgpu-l2-display's follows)
    counts=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' "$log" | head -n 1)
    bad=$(dmesg_problems "$log")
    note l2 "$name" boot="${boot:--}" total="$total" status="${status:--}" qemu="${qstatus:--}" \
        passed="${counts% *}" failed="${counts#* }" dmesg="$([ -z "$bad" ] && echo clean || echo BAD)"
    grep '^bench ' "$log" | while read -r _ bname value; do
        note bench "$name" "$bname" "$value"
    done
    if [ "$qstatus" = 124 ]; then
        fail "$name: timed out after ${l2timeout}s"
    elif [ "$qstatus" != 0 ]; then
        fail "$name: QEMU exited with ${qstatus:-nothing}"
    fi
    if [ "$status" != 0 ]; then
        fail "$name: guest test exited with ${status:-nothing}"
    else
        ok "$name: guest test passed (${counts% *} checks), booted in ${boot}s"
    fi
    if [ -n "$bad" ]; then
        fail "$name: kernel problems in its dmesg:"
        echo "$bad"
    fi
done

# --- tear down -----------------------------------------------------------------
if [ "$novgpu" = 0 ] && [ -n "$ua" ]; then
    "teardown_$mode"
fi
note failures "$failures"
checks_passed
