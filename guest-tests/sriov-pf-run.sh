#!/bin/sh
# sriov-pf-run.sh - runs in L1 (busybox sh) for `make test-sriov-pf`: the RM
# as SR-IOV PF driver on vgpu-pci,sriov_vfs=4 (q35): vgpu_mode, sriov_numvfs,
# each VF's creatable_vgpu_types / current_vgpu_type, their refusals (errno
# and the kernel's reason), all 64 VFs of a second GPU with 64 partitions
# enabled at once (max_vfs, vf_enable_ms_64), and unloading with VFs
# enabled and a type held.
# No VF is opened here: run-nested.sh MODE=sriov does that, through the
# variant driver vgpu_vfio_pci.

# shellcheck source=scripts/lib/guest.sh
. /usr/lib/vgpu/guest.sh

dmesg -n 1
# say: the kernel's last message, without its timestamp and device name
say() {
    dmesg | tail -n 1 | sed -e 's/^\[[ 0-9.]*\] //' -e 's/^[a-z_]* [0-9a-f:.]*: /  kernel: /'
}

echo "VGPU-TRANSCRIPT-BEGIN"
check "insmod vgpu_rm" load_module vgpu_rm
check "insmod vgpu_vfio" load_module vgpu_vfio
# Two GPUs: the one with 4 VFs for the checks, the one with 64 for max_vfs.
pf="" big=""
for d in /sys/bus/pci/drivers/vgpu_rm/0000:*; do
    case "$(cat "$d/sriov_totalvfs" 2>/dev/null)" in
    4) pf=$(basename "$d") ;;
    64) big=$(basename "$d") ;;
    esac
done
P=/sys/bus/pci/devices/$pf
echo "PF: vgpu_mode=$(cat "$P/vgpu_mode") sriov_totalvfs=$(cat "$P/sriov_totalvfs")"

refuse "sriov_numvfs refused in mdev mode" "busy" sh -c "echo 4 > $P/sriov_numvfs"
say
types=/sys/class/mdev_bus/$pf/mdev_supported_types
u=2a2a2a2a-0000-4000-8000-000000000001
for t in "$types"/*; do break; done
check "an mdev in mdev mode" sh -c "echo $u > $t/create"
refuse "sriov mode refused while an mdev exists" "busy" sh -c "echo sriov > $P/vgpu_mode"
say
check "the mdev removed" sh -c "echo 1 > /sys/bus/mdev/devices/$u/remove"
check "vgpu_mode sriov" sh -c "echo sriov > $P/vgpu_mode"
check "the mdev parent is gone" sh -c "! test -e /sys/class/mdev_bus/$pf"
check "4 VFs enabled" sh -c "echo 4 > $P/sriov_numvfs"
dmesg | grep -o "VFs enabled in [0-9]* ms" | sed 's/.* in \([0-9]*\) ms/bench vf_enable_ms \1/'
vf() {
    echo "/sys/bus/pci/devices/$(basename "$(readlink "$P/virtfn$1")")"
}
for i in 0 1 2 3; do
    echo "VF$i: device $(cat "$(vf $i)/device") current_vgpu_type $(cat "$(vf $i)/current_vgpu_type")"
done
vf0=$(vf 0)
vf1=$(vf 1)
echo "VF0 creatable_vgpu_types:"
sed 's/^/  /' "$vf0/creatable_vgpu_types"
a=$(sed -n 2p "$vf0/creatable_vgpu_types" | cut -d' ' -f1)
b=$(sed -n 3p "$vf0/creatable_vgpu_types" | cut -d' ' -f1)
refuse "an unknown type ID" "Invalid argument" sh -c "echo 999 > $vf0/current_vgpu_type"
say
refuse "a type larger than the VF VRAM BAR" "Invalid argument" sh -c "echo 1 > $vf0/current_vgpu_type"
say
refuse "not a number" "Invalid argument" sh -c "echo abc > $vf0/current_vgpu_type"
say
check "VF0 takes type $a" sh -c "echo $a > $vf0/current_vgpu_type && test \$(cat $vf0/current_vgpu_type) = $a"
echo "VF0 creatable_vgpu_types with a type:"
sed 's/^/  /' "$vf0/creatable_vgpu_types"
refuse "another type on VF0" "busy" sh -c "echo $b > $vf0/current_vgpu_type"
say
check "VF1 takes type $b" sh -c "echo $b > $vf1/current_vgpu_type"
echo "RM partitions 0-3:"
grep -E "^index=[0-3] " "/sys/kernel/debug/vgpu_rm/$pf/partitions" | cut -d' ' -f1-3,5-8 | sed 's/^/  /'
refuse "sriov_numvfs 0 while VFs hold types" "busy" sh -c "echo 0 > $P/sriov_numvfs"
say
refuse "mdev mode while VFs are enabled" "busy" sh -c "echo mdev > $P/vgpu_mode"
say
check "VF0 releases its type" sh -c "echo 0 > $vf0/current_vgpu_type && test \$(cat $vf0/current_vgpu_type) = 0"
check "VF1 releases its type" sh -c "echo 0 > $vf1/current_vgpu_type"
check "the released slices are free again" rm_vram_all_free "$pf"
check "VFs disabled" sh -c "echo 0 > $P/sriov_numvfs && ! test -e $P/virtfn0"
check "vgpu_mode mdev, the mdev parent is back" sh -c "echo mdev > $P/vgpu_mode && test -e /sys/class/mdev_bus/$pf"
check "sriov again: 2 VFs, VF0 with a type" sh -c "echo sriov > $P/vgpu_mode && echo 2 > $P/sriov_numvfs && echo $a > $vf0/current_vgpu_type"
# max_vfs: every VF of a GPU with 64 partitions, enabled at once.
B=/sys/bus/pci/devices/$big
check "the 64-partition GPU in sriov mode" sh -c "echo sriov > $B/vgpu_mode"
check "64 VFs enabled at once" sh -c "echo 64 > $B/sriov_numvfs"
n=0
for d in "$B"/virtfn*; do [ -e "$d" ] && n=$((n + 1)); done
echo "bench max_vfs $n"
dmesg | grep "$big" | grep -o "VFs enabled in [0-9]* ms" | sed 's/.* in \([0-9]*\) ms/bench vf_enable_ms_64 \1/'
last=/sys/bus/pci/devices/$(basename "$(readlink "$B/virtfn63")")
echo "VF63: device $(cat "$last/device"), creatable_vgpu_types:"
sed 's/^/  /' "$last/creatable_vgpu_types"
small=$(tail -n 1 "$last/creatable_vgpu_types" | cut -d' ' -f1)
check "VF63 takes type $small and releases it" \
    sh -c "echo $small > $last/current_vgpu_type && echo 0 > $last/current_vgpu_type"
check "64 VFs disabled" sh -c "echo 0 > $B/sriov_numvfs && ! test -e $B/virtfn0"
check "rmmod vgpu_vfio" rmmod vgpu_vfio
check "rmmod vgpu_rm with VFs enabled and a type held" rmmod vgpu_rm
check "the VFs went with it" sh -c "! test -e $P/virtfn0"
echo "VGPU-TRANSCRIPT-END"
checks_passed
