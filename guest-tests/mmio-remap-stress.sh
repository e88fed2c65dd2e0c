#!/bin/sh
# mmio-remap-stress.sh [SECONDS] - runs in L1 (two vCPUs, under the MMIO
# tracer): the reproducer of qemu-patches/0002's bug. vCPU 0 toggles an idle
# PCI device's memory decoding through sysfs (each write is a memory map
# change in QEMU, with a shorter table when the BAR is off), while vCPU 1
# reads the local APIC through /dev/mem (MMIO behind the BQL). An unpatched
# QEMU aborts in iotlb_to_section within seconds; a patched one runs clean.
#
#   IMAGES=$(LINK_CURRENT=0 scripts/build-images.sh \
#       guest-tests/mmio-remap-stress.sh:/bin/mmio-remap-stress.sh)
#   IMAGES=$IMAGES RUN=/bin/mmio-remap-stress.sh,90 ACCEL=tcg TRACE=1 SMP=2 \
#       scripts/run-l1.sh -device vgpu-pci,vram_size=64M

seconds=${1:-60}

# A device with a memory BAR below the local APIC and no driver.
dev=""
for d in /sys/bus/pci/devices/*; do
    [ -e "$d/driver" ] && continue
    while read -r start _ flags; do
        if [ $((flags & 0x200)) -ne 0 ] && [ $((start)) -ne 0 ] &&
            [ $((start)) -lt $((0xfee00000)) ]; then
            dev=$d
            break 2
        fi
    done <"$d/resource"
done
[ -n "$dev" ] || {
    echo "mmio-remap-stress: no idle device with a memory BAR"
    exit 1
}
echo "mmio-remap-stress: toggling $dev ($(cat "$dev/vendor"):$(cat "$dev/device")) for $seconds s"

# PCI_COMMAND's low byte: 0 (decoding off) and 2 (memory space on).
taskset -c 0 sh -c "while :; do
    printf '\\000' | dd of=$dev/config bs=1 seek=4 conv=notrunc 2>/dev/null
    printf '\\002' | dd of=$dev/config bs=1 seek=4 conv=notrunc 2>/dev/null
done" &
toggler=$!
# The local APIC's version register.
taskset -c 1 sh -c "while :; do devmem 0xfee00030 32 >/dev/null; done" &
reader=$!
sleep "$seconds"
kill "$toggler" "$reader"
echo "mmio-remap-stress: done"
