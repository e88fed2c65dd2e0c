#!/bin/sh
# host-run.sh - runs in L1 (busybox sh) for `make test-host`: load the host
# driver, dump the mdev sysfs tree of the GPU, check mdevctl and vgpuctl,
# run the VFIO tier, unload. Sections between console markers.

# shellcheck source=scripts/lib/guest.sh
. /usr/lib/vgpu/guest.sh

# Kernel messages (expected ones, e.g. the refused over-creation) stay out of
# the transcript; run-l1.sh checks the whole dmesg afterwards.
dmesg -n 1
mkdir -p /etc/mdevctl.d/scripts.d/callouts /etc/mdevctl.d/scripts.d/notifiers
echo "VGPU-TRANSCRIPT-BEGIN"
t0=$(cut -d' ' -f1 /proc/uptime)
check "insmod vgpu_rm" load_module vgpu_rm
check "insmod vgpu_vfio" load_module vgpu_vfio
t1=$(cut -d' ' -f1 /proc/uptime)
echo "bench module_load_s $(awk "BEGIN{print $t1 - $t0}")"
parent=""
for p in /sys/class/mdev_bus/*; do [ -e "$p" ] && parent=$(basename "$p"); done
if [ -n "$parent" ]; then ok "GPU registered as an mdev parent"; else fail "no mdev parent"; fi
types=/sys/class/mdev_bus/$parent/mdev_supported_types
type=$(pick_vgpu_type | cut -f1)

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

# Runtime-defined types (configfs): two sizes side by side, fragmentation,
# bad input; they are gone again afterwards.
/bin/vgpu-types-test || failures=$((failures + 1))
/bin/vgpu-vfio-test || failures=$((failures + 1))
# VFIO migration v2 of a vGPU, as a VMM drives it (SPEC 16 underneath).
/bin/vgpu-mig-test || failures=$((failures + 1))
# A hostile VMM: a seeded random VFIO sequence with 24 episodes of the
# sequences that once broke isolation (ring rewinds and reconfiguration, large
# commands, DMA unmap under use, resets racing completions) on a small and a
# large vGPU beside a bystander; L1 must stay clean (run-l1.sh checks dmesg)
# and every vGPU must work afterwards.
/bin/vgpu-vfio-chaos 8000 0x5eedc4a05eedc4a0 24 || failures=$((failures + 1))

# The kernel refuses with EWOULDBLOCK while vgpu_vfio holds a reference.
refuse "rmmod vgpu_rm while the frontend uses it" "Resource temporarily unavailable" rmmod vgpu_rm
check "rmmod vgpu_vfio" rmmod vgpu_vfio
check "rmmod vgpu_rm" rmmod vgpu_rm
echo "VGPU-TRANSCRIPT-END"

# The parent's sysfs tree after reload (types, descriptions, instances).
load_host_driver
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
checks_passed
