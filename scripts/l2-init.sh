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
#   VGPU-L2-DISPLAY-BEGIN ... -END     vgpu-l2-display's output (with vgpu.display=)
#   VGPU-L2-SCREEN TAG                 waits for a line: L1 takes a screendump
#   VGPU-L2-LSPCI-BEGIN ... -END       lspci -vvv of the vGPU
#   VGPU-DMESG-BEGIN ... VGPU-DMESG-END   kernel log lines that matter (problems
#                                      with context, the guest driver's lines)
#
# Kernel command line:
#   vgpu.args=A,B,...  arguments of vgpu-l2-test (commas become spaces)
#   vgpu.run=CMD       run CMD instead (commas become spaces), vgpu.args
#                      appended; vgpu.run=shell.
#   vgpu.display=SEED,WxH  then the display check (vgpu-l2-display: test
#                      frames with pattern SEED, the EDID must prefer WxH),
#                      and at the end the console with the results on the
#                      vGPU's screen for a last screendump. The migration workload:
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
    # (tee: the console sees every line at once, the barrier's included)
    # shellcheck disable=SC2086 # the command and arguments are meant to be split
    {
        $run $args
        echo $? >/tmp/l2-status
    } | tee /tmp/l2-transcript
    status=$(cat /tmp/l2-status)
    tstatus=$status
    echo "VGPU-L2-TRANSCRIPT-END"
fi

display=$(cmdline_words display)
dstatus=-
if [ -n "$display" ] && [ "$run" != shell ]; then
    echo "VGPU-L2-DISPLAY-BEGIN"
    # shellcheck disable=SC2086 # SEED and WxH
    set -- $display
    # (tee: its screen requests must reach L1 as they are printed)
    {
        /bin/vgpu-l2-display --seed "$1" --expect-mode "$2"
        echo $? >/tmp/l2-dstatus
    } | tee /tmp/l2-display
    dstatus=$(cat /tmp/l2-dstatus)
    echo "VGPU-L2-DISPLAY-END"
    [ "$dstatus" = 0 ] || status=1
fi

echo "$VGPU_L2_EXIT $status"
if [ -n "$display" ] && [ -c /dev/tty1 ]; then
    # The console on the vGPU (fbcon): the results, for a person to see.
    # vgpu-l2-test unbound fbcon for its VRAM checks: bind it again.
    for vtcon in /sys/class/vtconsole/vtcon*; do
        if grep -q "frame buffer" "$vtcon/name" 2>/dev/null; then
            echo 1 >"$vtcon/bind"
        fi
    done
    {
        printf '\033[2J\033[H'
        echo "vGPU L2 guest $(hostname): $(lspci -d 1234:7691 2>/dev/null | head -n 1)"
        echo
        echo "vgpu-l2-test:    exit ${tstatus:--}"
        echo "vgpu-l2-display: exit $dstatus"
        grep -hE '^(ok|FAIL) ' /tmp/l2-transcript /tmp/l2-display 2>/dev/null | tail -n 36
    } >/dev/tty1
    sleep 0.3
    echo "VGPU-L2-SCREEN console"
    # shellcheck disable=SC3045 # busybox sh has read -t
    read -r -t 120 _ || true
fi
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
