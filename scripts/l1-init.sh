#!/bin/sh
# l1-init.sh - /init of the L1 guest's initramfs (busybox sh, installed by
# build-images.sh): mount, load modules, run one command, report, power off.
#
# Console protocol read by run-l1.sh (lib/common.sh):
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

# shellcheck source=scripts/lib/guest.sh
. /usr/lib/vgpu/guest.sh

guest_mount
echo "$VGPU_L1_INIT"
if cmdline_flag probe; then
    poweroff -f
fi

hostname l1
export HOME=/root TERM=linux
mkdir -p "$HOME"

# Modules are decompressed and listed in dependency order by build-images.sh.
# Only the KVM vendor module matching the CPU is loaded.
if ! cmdline_flag nomodules && [ -f /etc/vgpu/modules.load ]; then
    while read -r mod; do
        case "$mod" in
        "" | "#"*) continue ;;
        kvm_amd) grep -qw svm /proc/cpuinfo || continue ;;
        kvm_intel) grep -qw vmx /proc/cpuinfo || continue ;;
        esac
        load_module "$mod" "/lib/modules/$(uname -r)" || echo "VGPU-L1: insmod $mod failed"
    done </etc/vgpu/modules.load
fi
# vgpu_rm's runtime-defined types live in configfs (when it is loaded).
if [ -d /sys/kernel/config ]; then
    mount -t configfs configfs /sys/kernel/config
fi

run=$(cmdline_words run)
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

echo "$VGPU_L1_EXIT $status"
guest_dmesg cat
guest_poweroff
