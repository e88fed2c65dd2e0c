#!/bin/sh
# l2-init.sh - /init of the L2 guest's initramfs (busybox sh, installed by
# build-l2-images.sh): load the vGPU guest driver, run vgpu-l2-test, report
# on the console, power off. Serial output is slow in L2: keep it short.
#
# Console protocol read by l1-nested.sh:
#   VGPU-L2-INIT                       /init started
#   VGPU-L2-TRANSCRIPT-BEGIN ... -END  the test's output
#   VGPU-L2-EXIT <status>              the test's exit status
#   VGPU-L2-LSPCI-BEGIN ... -END       lspci -vvv of the vGPU
#   VGPU-DMESG-BEGIN ... VGPU-DMESG-END   kernel log lines that matter (problems
#                                      with context, the guest driver's lines)
#
# Kernel command line:
#   vgpu.args=A,B,...  arguments of vgpu-l2-test (commas become spaces)
#   vgpu.run=CMD       run CMD instead (commas become spaces); vgpu.run=shell

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

mount -t devtmpfs -o mode=0755 devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /tmp
mount -t tmpfs tmpfs /tmp

echo "VGPU-L2-INIT"

run="/bin/vgpu-l2-test"
args=""
# shellcheck disable=SC2013 # the command line is words, not lines
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    vgpu.args=*) args=$(echo "${arg#vgpu.args=}" | tr ',' ' ') ;;
    vgpu.run=*) run=$(echo "${arg#vgpu.run=}" | tr ',' ' ') ;;
    esac
done

hostname l2
insmod /lib/modules/vgpu/vgpu_guest.ko || echo "VGPU-L2: insmod vgpu_guest failed"

status=0
if [ "$run" = shell ]; then
    setsid cttyhack sh -l
else
    echo "VGPU-L2-TRANSCRIPT-BEGIN"
    # shellcheck disable=SC2086 # the command and arguments are meant to be split
    $run $args
    status=$?
    echo "VGPU-L2-TRANSCRIPT-END"
fi

echo "VGPU-L2-EXIT $status"
if [ "$run" != shell ]; then
    # The vGPU as this guest's PCI core sees it (1234:7691, SPEC 1).
    echo "VGPU-L2-LSPCI-BEGIN"
    lspci -vvv -nn -d 1234:7691
    echo "VGPU-L2-LSPCI-END"
fi
echo "VGPU-DMESG-BEGIN"
dmesg >/tmp/dmesg
grep -i vgpu /tmp/dmesg
grep -E -A 12 'Oops|BUG:|WARNING:|Call Trace|general protection|KASAN|UBSAN' /tmp/dmesg
echo "VGPU-DMESG-END"
sync
poweroff -f
