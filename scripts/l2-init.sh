#!/bin/sh
# l2-init.sh - /init of the L2 guest's initramfs (busybox sh, installed by
# build-l2-images.sh): load the vGPU guest driver, run vgpu-l2-test, report
# on the console, power off. Serial output is slow in L2: keep it short.
# The driver's fbdev brings the kernel console up on the vGPU's head too;
# the test (and vgpu-l2-work) unbind it before they take all of VRAM.
#
# Console protocol read by l1-nested.sh (lib/common.sh):
#   VGPU-L2-INIT                       /init started
#   VGPU-L2-TRANSCRIPT-BEGIN ... -END  the test's output
#   VGPU-L2-EXIT <status>              the test's exit status
#   VGPU-L2-LSPCI-BEGIN ... -END       lspci -vvv of the vGPU
#   VGPU-DMESG-BEGIN ... VGPU-DMESG-END   kernel log lines that matter (problems
#                                      with context, the guest driver's lines)
#
# Kernel command line:
#   vgpu.args=A,B,...  arguments of vgpu-l2-test (commas become spaces)
#   vgpu.run=CMD       run CMD instead (commas become spaces), vgpu.args
#                      appended; vgpu.run=shell. The migration workload:
#                      vgpu.run=/bin/vgpu-l2-work vgpu.args=--pattern,UUID
#                      (it runs until a line `stop` on the console)

# shellcheck source=scripts/lib/guest.sh
. /usr/lib/vgpu/guest.sh

guest_mount
echo "$VGPU_L2_INIT"

run=$(cmdline_words run)
run=${run:-/bin/vgpu-l2-test}
args=$(cmdline_words args)

hostname l2
# The DRM modules the guest driver needs, in dependency order (build-l2-images.sh).
while read -r mod; do
    load_module "$mod" "/lib/modules/$(uname -r)" || echo "VGPU-L2: insmod $mod failed"
done </etc/vgpu/modules.load
load_module vgpu_guest || echo "VGPU-L2: insmod vgpu_guest failed"

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

echo "$VGPU_L2_EXIT $status"
if [ "$run" != shell ]; then
    # The vGPU as this guest's PCI core sees it (1234:7691, SPEC 1).
    echo "VGPU-L2-LSPCI-BEGIN"
    lspci -vvv -nn -d 1234:7691
    echo "VGPU-L2-LSPCI-END"
fi

# The guest driver's lines, and the problems with some context.
l2_dmesg_lines() {
    cat >/tmp/dmesg
    grep -i vgpu /tmp/dmesg
    grep -E -A 12 "$VGPU_DMESG_BAD" /tmp/dmesg
}
guest_dmesg l2_dmesg_lines
guest_poweroff
