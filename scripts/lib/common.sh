# shellcheck shell=sh
# common.sh - the facts that the host scripts (bash, through lib/host.sh) and
# the guests' scripts (busybox sh, through lib/guest.sh) share: the guests'
# kernel command line, the console protocol and the dmesg check. POSIX sh.
# build-images.sh packs it into every image as $VGPU_GUEST_LIB/common.sh.

# shellcheck disable=SC2034 # used by the scripts that source this file

# Where the images keep this library and our kernel modules (the host driver
# in L1, the guest driver in L2).
VGPU_GUEST_LIB=/usr/lib/vgpu
VGPU_MODULES_DIR=/lib/vgpu

# The kernel command line of every guest, L1 and L2 (docs/NESTING.md): fast
# boot; iomem=relaxed to mmap BARs from user space; panic=-1 so a panic ends
# the run (QEMU runs with -no-reboot); no crypto self-tests (slow under TCG).
VGPU_BOOT_CMDLINE="console=ttyS0 quiet pci=noearly mitigations=off nokaslr tsc=reliable no_timer_check"
VGPU_BOOT_CMDLINE="$VGPU_BOOT_CMDLINE iomem=relaxed panic=-1 cryptomgr.notests=1"

# Console protocol. A guest's /init prints "VGPU-<L1|L2>-INIT" when it starts
# (boot time is measured to there) and "VGPU-<L1|L2>-EXIT <status>" with its
# command's status; output sections are framed by "VGPU-<NAME>-BEGIN" and
# "VGPU-<NAME>-END" (NAME: TRANSCRIPT, LSPCI, SYSFS, DMESG, L2-TRANSCRIPT...).
VGPU_L1_INIT=VGPU-L1-INIT
VGPU_L1_EXIT=VGPU-L1-EXIT
VGPU_L2_INIT=VGPU-L2-INIT
VGPU_L2_EXIT=VGPU-L2-EXIT

# Kernel log lines that fail a run when they show up in a guest's dmesg.
VGPU_DMESG_BAD='Oops|BUG:|WARNING:|Call Trace|general protection|KASAN|UBSAN'

# section NAME [FILE]: the lines between VGPU-NAME-BEGIN and VGPU-NAME-END,
# without the markers (which may follow other output on their line, e.g.
# firmware text or terminal escapes). Carriage returns are dropped.
section() {
    tr -d '\r' <"${2:-/dev/stdin}" |
        sed -n "/VGPU-$1-BEGIN\$/,/VGPU-$1-END\$/p" | sed '1d;$d'
}

# dmesg_problems [FILE]: the lines of FILE's dmesg section that fail a run.
dmesg_problems() {
    section DMESG "${1:-/dev/stdin}" | grep -E "$VGPU_DMESG_BAD"
}
