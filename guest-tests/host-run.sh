#!/bin/sh
# host-run.sh - runs in L1 (busybox sh) for `make test-host`: load the host
# driver, dump the mdev sysfs tree of the GPU, check mdevctl and vgpuctl,
# run the VFIO tier, unload. Sections between console markers.
failed=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; failed=1; }
# check NAME CMD...: CMD must succeed
check() {
    name=$1
    shift
    if "$@" >/tmp/check.out 2>&1; then ok "$name"; else bad "$name: $(tail -n 3 /tmp/check.out | tr '\n' ' ')"; fi
}
# refuse NAME WANT CMD...: CMD must fail and say WANT
refuse() {
    name=$1
    want=$2
    shift 2
    if "$@" >/tmp/check.out 2>&1; then
        bad "$name: accepted"
    elif grep -q "$want" /tmp/check.out; then
        ok "$name"
    else
        bad "$name: said $(tr '\n' ' ' </tmp/check.out)"
    fi
}

# Kernel messages (expected ones, e.g. the refused over-creation) stay out of
# the transcript; run-l1.sh checks the whole dmesg afterwards.
dmesg -n 1
mkdir -p /etc/mdevctl.d/scripts.d/callouts /etc/mdevctl.d/scripts.d/notifiers
echo "VGPU-TRANSCRIPT-BEGIN"
t0=$(cut -d' ' -f1 /proc/uptime)
check "insmod vgpu_rm" insmod /lib/vgpu/vgpu_rm.ko
check "insmod vgpu_vfio" insmod /lib/vgpu/vgpu_vfio.ko
t1=$(cut -d' ' -f1 /proc/uptime)
echo "bench module_load_s $(awk "BEGIN{print $t1 - $t0}")"
parent=""
for p in /sys/class/mdev_bus/*; do [ -e "$p" ] && parent=$(basename "$p"); done
if [ -n "$parent" ]; then ok "GPU registered as an mdev parent"; else bad "no mdev parent"; fi
types=/sys/class/mdev_bus/$parent/mdev_supported_types
type=""
for t in "$types"/*; do
    grep -q "max_instances=4," "$t/description" 2>/dev/null && type=$(basename "$t")
done
if [ -z "$type" ]; then for t in "$types"/*; do type=$(basename "$t"); done; fi

# mdevctl, unchanged, against our parent
u=1d1d1d1d-0000-4000-8000-000000000001
check "mdevctl types lists the types" sh -c "mdevctl types | grep -q '$type'"
check "mdevctl start" mdevctl start -u $u -p "$parent" --type "$type"
check "mdevctl list shows it" sh -c "mdevctl list | grep -q $u"
check "vgpuctl list shows it" sh -c "vgpuctl list | grep -q 'vgpu $u'"
check "vgpuctl show reads the RM's partition" sh -c "vgpuctl show $u | grep -q 'state='"
check "mdevctl stop" mdevctl stop -u $u
check "vgpuctl create and destroy" sh -c "v=\$(vgpuctl create --type $type) && vgpuctl destroy \$v"
refuse "vgpuctl refuses a bad UUID" "not a UUID" vgpuctl create --type "$type" --uuid nope
refuse "vgpuctl refuses an unknown type" "has no vGPU type" vgpuctl create --type no-such-type
refuse "vgpuctl destroy of a missing vGPU" "no vGPU" vgpuctl destroy 1d1d1d1d-0000-4000-8000-0000000000ff
check "debugfs: RM state readable" sh -c "cat /sys/kernel/debug/vgpu_rm/$parent/partitions /sys/kernel/debug/vgpu_rm/$parent/types >/dev/null"

/bin/vgpu-vfio-test || failed=1
# A hostile VMM: a seeded random VFIO sequence with 24 episodes of the
# sequences that once broke isolation (ring rewinds and reconfiguration, large
# commands, DMA unmap under use, resets racing completions) on a small and a
# large vGPU beside a bystander; L1 must stay clean (run-l1.sh checks dmesg)
# and every vGPU must work afterwards.
/bin/vgpu-vfio-chaos 8000 0x5eedc4a05eedc4a0 24 || failed=1

# The kernel refuses with EWOULDBLOCK while vgpu_vfio holds a reference.
refuse "rmmod vgpu_rm while the frontend uses it" "Resource temporarily unavailable" rmmod vgpu_rm
check "rmmod vgpu_vfio" rmmod vgpu_vfio
check "rmmod vgpu_rm" rmmod vgpu_rm
echo "VGPU-TRANSCRIPT-END"

# The parent's sysfs tree after reload (types, descriptions, instances).
insmod /lib/vgpu/vgpu_rm.ko && insmod /lib/vgpu/vgpu_vfio.ko
echo "VGPU-SYSFS-BEGIN"
for t in "$types"/*; do
    for f in name description available_instances device_api; do
        echo "$(basename "$t")/$f: $(cat "$t/$f")"
    done
    n=0
    for d in "$t"/devices/*; do [ -e "$d" ] && n=$((n + 1)); done
    echo "$(basename "$t")/devices: $n"
done
echo "VGPU-SYSFS-END"
exit "$failed"
