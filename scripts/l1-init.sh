#!/bin/sh
# l1-init.sh - /init of the L1 guest's initramfs (busybox sh, installed by
# build-images.sh): mount, load modules, run one command, report, power off.
#
# Console protocol read by run-l1.sh:
#   VGPU-L1-INIT                  /init started (boot time is measured to here)
#   VGPU-L1-EXIT <status>         exit status of the command
#   VGPU-DMESG-BEGIN ... VGPU-DMESG-END   the whole kernel log, checked for oopses
#
# Kernel command line:
#   vgpu.run=CMD   command to run; commas become spaces (vgpu.run=/t/x,--fast).
#                  vgpu.run=shell gives an interactive shell.
#                  Default: /run.sh when present, else nothing (status 0).
#   vgpu.probe     print VGPU-L1-INIT and power off at once (accelerator probe).
#   vgpu.nomodules skip loading the modules in /etc/vgpu/modules.load.

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

mount -t devtmpfs -o mode=0755 devtmpfs /dev 2>/dev/null
# The kernel opened /dev/console from the initramfs; reopen it on devtmpfs.
exec </dev/console >/dev/console 2>&1

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm /run /tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug

echo "VGPU-L1-INIT"

run=""
probe=0
load_modules=1
# shellcheck disable=SC2013 # the command line is words, not lines
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    vgpu.run=*) run=$(echo "${arg#vgpu.run=}" | tr ',' ' ') ;;
    vgpu.probe) probe=1 ;;
    vgpu.nomodules) load_modules=0 ;;
    esac
done

if [ "$probe" = 1 ]; then
    poweroff -f
fi

hostname l1
export HOME=/root TERM=linux
mkdir -p "$HOME"

# Modules are decompressed and listed in dependency order by build-images.sh.
# Only the KVM vendor module matching the CPU is loaded.
if [ "$load_modules" = 1 ] && [ -f /etc/vgpu/modules.load ]; then
    release=$(uname -r)
    while read -r mod; do
        case "$mod" in
        "" | "#"*) continue ;;
        kvm_amd) grep -qw svm /proc/cpuinfo || continue ;;
        kvm_intel) grep -qw vmx /proc/cpuinfo || continue ;;
        esac
        insmod "/lib/modules/$release/$mod.ko" ||
            echo "VGPU-L1: insmod $mod failed"
    done </etc/vgpu/modules.load
fi

if [ -z "$run" ] && [ -e /run.sh ]; then
    run="sh /run.sh"
fi

status=0
if [ "$run" = shell ]; then
    setsid cttyhack sh -l
    status=$?
elif [ -n "$run" ]; then
    # shellcheck disable=SC2086 # the command is meant to be split into words
    $run
    status=$?
fi

echo "VGPU-L1-EXIT $status"
echo "VGPU-DMESG-BEGIN"
dmesg
echo "VGPU-DMESG-END"
# Let the UART drain before the machine disappears.
sync
sleep 0.2
poweroff -f
