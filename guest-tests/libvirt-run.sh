#!/bin/bash
# libvirt-run.sh - test-libvirt's checks in the Debian L1
# (build-distro-image.sh), run by systemd at every boot (systemd.run= on
# the kernel command line) from the payload disk test-libvirt.sh attaches
# (LABEL=vgpu-payload, mounted at /mnt/vgpu by the image's fstab). The
# first boot installs our modules as out-of-tree modules are installed,
# drives the vGPUs through libvirt's nodedev API (which drives mdevctl)
# and a domain of Debian's QEMU, makes the vGPU persistent and reboots;
# the second boot checks that the modules, the vGPU and the domain came
# back, removes them, then switches the GPU to SR-IOV mode and runs a
# domain on a VF (a PCI hostdev, managed by libvirt), and powers off.
#
# The payload: modules/*.ko (ours and the rebuilt vfio.ko our frontend
# needs), lib/*.sh (the guest library), l2/ (the L2 kernel and initramfs),
# libvirt/*.xml (examples/libvirt: the files the README shows).
#
# Console protocol (lib/common.sh): VGPU-L1-INIT at each boot, the checks
# in TRANSCRIPT sections, the XML in NODEDEV-PARENT / NODEDEV-MDEV, each L2
# run's console in L2-CONSOLE, figures as "VGPU-LIBVIRT NAME VALUE",
# VGPU-DMESG sections, VGPU-L1-EXIT at the end of the second boot.
set -u
exec </dev/null >/dev/ttyS0 2>&1

PAYLOAD=/mnt/vgpu
STATE=/var/lib/vgpu-test
L2_IMAGES=/var/lib/libvirt/images/vgpu-l2
# What examples/libvirt/*.xml name.
UUID=9c1b5a2e-4f43-4d1e-8c5a-6a2d3b7e0f10
PARENT_PCI=0000:01:00.0
PARENT=pci_0000_01_00_0
TYPE=vgpu_rm-vgpu-64M
MDEV="mdev_${UUID//-/_}_0000_01_00_0"
DOMAIN=vgpu-l2
VF_PCI=0000:01:00.1
VF_TYPE=vgpu-64M
VF_DOMAIN=vgpu-l2-vf
L2_TIMEOUT=480

uptime_s() {
    cut -d' ' -f1 /proc/uptime
}
boot_s=$(uptime_s)

# Our script library, installed as a package would install it.
install -D -m 0644 -t /usr/lib/vgpu "$PAYLOAD"/lib/*.sh
# shellcheck source=scripts/lib/guest.sh
. /usr/lib/vgpu/guest.sh

mkdir -p "$STATE"
boot=$(($(cat "$STATE/boots" 2>/dev/null || echo 0) + 1))
echo "$boot" >"$STATE/boots"
failures=$(cat "$STATE/failures" 2>/dev/null || echo 0)

echo "$VGPU_L1_INIT"
note() {
    echo "VGPU-LIBVIRT $*"
}
note l1_distro_boot_s "$boot_s"
echo "libvirt-run: boot $boot of L1 ($(sed -n 's/^PRETTY_NAME="\(.*\)"$/\1/p' /etc/os-release), kernel $(uname -r))"

virsh() {
    command virsh -c qemu:///system "$@"
}

# wait_for SECONDS CMD...: poll CMD every half second until it succeeds.
wait_for() {
    local until=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < until)) || return 1
        sleep 0.5
    done
}

libvirt_up() {
    timeout 30 virsh version >/dev/null 2>&1
}

mdev_active() {
    [[ -e /sys/bus/mdev/devices/$UUID ]]
}

mdev_type() {
    basename "$(readlink -f "/sys/bus/mdev/devices/$UUID/mdev_type")"
}

domain_state() {
    virsh domstate "$1" 2>/dev/null | head -n 1
}

domain_off() {
    [[ $(domain_state "$1") == "shut off" ]]
}

# serial_log DOMAIN: where the domain's XML sends its console.
serial_log() {
    echo "/var/log/libvirt/qemu/$1-serial.log"
}

# run_domain WHAT DOMAIN [in-use]: start DOMAIN, note the time to the L2's
# /init, wait for it to power off, show its console, check vgpu-l2-test's
# result (and with in-use, in_use_check while it runs).
run_domain() {
    local t0 t1 status log
    log=$(serial_log "$2")
    rm -f "$log"
    t0=${EPOCHREALTIME/./}
    check "$1: virsh start $2" virsh start "$2"
    domain_state "$2" | grep -q running || return
    if wait_for 240 grep -q "$VGPU_L2_INIT" "$log"; then
        t1=${EPOCHREALTIME/./}
        note virsh_start_to_l2_init_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')"
    fi
    [[ ${3:-} != in-use ]] || in_use_check
    if ! wait_for "$L2_TIMEOUT" domain_off "$2"; then
        fail "$1: the domain did not power off in ${L2_TIMEOUT}s"
        virsh destroy "$2"
    fi
    echo "VGPU-L2-CONSOLE-BEGIN"
    tr -d '\r' <"$log"
    echo "VGPU-L2-CONSOLE-END"
    status=$(tr -d '\r' <"$log" | sed -n "s/.*$VGPU_L2_EXIT \([0-9]*\)\$/\1/p" | tail -n 1)
    if [[ $status == 0 ]]; then
        ok "$1: vgpu-l2-test in the domain: $(tr -d '\r' <"$log" | grep -E '^[0-9]+ passed, 0 failed$')"
    else
        fail "$1: vgpu-l2-test in the domain exited ${status:-without an exit line}"
    fi
    if dmesg_problems "$log"; then
        fail "$1: the L2 kernel log has problems"
    fi
}

# in_use_check: while $DOMAIN runs, a second domain asking for the same
# vGPU is refused by libvirt, and the first one keeps running.
in_use_check() {
    sed -e "s|<name>$DOMAIN</name>|<name>$DOMAIN-b</name>|" \
        -e "s|$(serial_log "$DOMAIN")|$(serial_log "$DOMAIN-b")|" \
        "$PAYLOAD/libvirt/vgpu-l2-mdev.xml" >/tmp/domain-b.xml
    check "a second domain with the same vGPU: virsh define" virsh define /tmp/domain-b.xml
    refuse "a second domain with the same vGPU: virsh start is refused, the vGPU is in use" \
        "in use" virsh start "$DOMAIN-b"
    echo "libvirt said: $(tr '\n' ' ' </tmp/check.out | sed "s/$UUID/<uuid>/g")"
    check "the first domain still runs" test "$(domain_state "$DOMAIN")" = running
    check "virsh undefine the second domain" virsh undefine "$DOMAIN-b"
}

# systemd.run= boots into kernel-command-line.target, which has only what
# this service needs (sysinit): the rest of the system comes up now, as in
# a plain boot.
systemctl start --no-block multi-user.target
# systemd's view, should libvirt be slow to answer.
slow_libvirt() {
    echo "libvirt-run: no answer from libvirt after ${1}s; systemd's view:"
    systemctl --no-pager list-jobs
    systemctl --no-pager list-units --failed
    systemctl --no-pager status libvirtd.socket libvirtd.service
    ps --ppid 2 -p 2 --deselect -o pid,stat,etime,args | tail -n 30
    journalctl --no-pager -b -n 30
}
t=$SECONDS
for wait in 120 240 480; do
    ! wait_for $((t + wait - SECONDS)) libvirt_up || break
    slow_libvirt "$wait"
done
note libvirt_ready_s $((SECONDS - t))
virsh version | sed 's/^/libvirt-run: /'
echo "VGPU-TRANSCRIPT-BEGIN"
echo "== boot $boot"
check "libvirt answers (qemu:///system)" libvirt_up

if ((boot == 1)); then
    # --- install the modules as a user installs out-of-tree modules ------------
    kdir="/lib/modules/$(uname -r)/updates/vgpu"
    install -D -m 0644 -t "$kdir" "$PAYLOAD"/modules/*.ko
    depmod -a
    printf '%s\n' "# vGPU host driver (test-libvirt)" vgpu_rm vgpu_vfio vgpu_vfio_pci \
        >/etc/modules-load.d/vgpu.conf
    # Debian's mdevctl (bookworm's 1.2.0-3, trixie's 1.4.0-2 too) installs
    # /usr/bin/mdevctl, but its udev rule, which starts the autostart vGPUs
    # when their parent appears, runs /usr/sbin/mdevctl: without this the
    # persistent vGPU does not come back after a reboot (mdevctl issue 82).
    # The admin's fix: the same rule with the right path in /etc/udev/rules.d.
    rule=/usr/lib/udev/rules.d/60-mdevctl.rules
    if [[ ! -e /usr/sbin/mdevctl ]] && grep -q /usr/sbin/mdevctl "$rule"; then
        echo "libvirt-run: $rule runs /usr/sbin/mdevctl, which Debian does not ship: overridden in /etc/udev/rules.d"
        sed "s|/usr/sbin/mdevctl|$(command -v mdevctl)|g" "$rule" >/etc/udev/rules.d/60-mdevctl.rules
    fi
    effective=/etc/udev/rules.d/60-mdevctl.rules
    [[ -e $effective ]] || effective=$rule
    check "mdevctl's udev rule runs an mdevctl that exists" \
        test -x "$(grep -o '/usr/s*bin/mdevctl' "$effective" | head -n 1)"
    check "depmod prefers our vfio.ko (DMA logging) in updates/" \
        sh -c "modinfo -n vfio | grep -q /updates/"
    check "modprobe vgpu_vfio vgpu_vfio_pci" modprobe -a vgpu_vfio vgpu_vfio_pci
    check "the GPU is an mdev parent" test -d "/sys/class/mdev_bus/$PARENT_PCI"

    # --- nodedev: the parent and its types ----------------------------------------
    check "virsh nodedev-list --cap mdev_types lists the GPU" \
        sh -c "virsh -c qemu:///system nodedev-list --cap mdev_types | grep -qx $PARENT"
    virsh nodedev-dumpxml "$PARENT" >"$STATE/parent.xml"
    echo "VGPU-NODEDEV-PARENT-BEGIN"
    cat "$STATE/parent.xml"
    echo "VGPU-NODEDEV-PARENT-END"
    types_dir="/sys/class/mdev_bus/$PARENT_PCI/mdev_supported_types"
    for t in "$types_dir"/*; do
        id=$(basename "$t")
        want="$(cat "$t/name")|$(cat "$t/device_api")|$(cat "$t/available_instances")"
        got=$(virsh nodedev-dumpxml "$PARENT" --xpath "//capability[@type='mdev_types']/type[@id='$id']" |
            sed -n 's:.*<name>\(.*\)</name>.*:\1:p; s:.*<deviceAPI>\(.*\)</deviceAPI>.*:\1:p; s:.*<availableInstances>\(.*\)</availableInstances>.*:\1:p' |
            paste -sd'|')
        if [[ $got == "$want" ]]; then
            ok "nodedev-dumpxml of the GPU agrees with sysfs on type $id: $want"
        else
            fail "nodedev-dumpxml of the GPU on type $id: '$got', sysfs '$want'"
        fi
    done
    ntypes=$(find "$types_dir" -mindepth 1 -maxdepth 1 | wc -l)
    check "nodedev-dumpxml lists every type in sysfs ($ntypes)" test "$(
        grep -c '<type id=' "$STATE/parent.xml"
    )" = "$ntypes"
    cat "$types_dir/$TYPE/available_instances" >"$STATE/available"

    # --- a persistent vGPU through nodedev (mdevctl underneath) -------------------
    check "virsh nodedev-define vgpu-mdev.xml" virsh nodedev-define "$PAYLOAD/libvirt/vgpu-mdev.xml"
    check "virsh nodedev-start $MDEV" virsh nodedev-start "$MDEV"
    check "the vGPU exists in sysfs with type $TYPE" test "$(mdev_type)" = "$TYPE"
    check "virsh nodedev-autostart $MDEV" virsh nodedev-autostart "$MDEV"
    check "mdevctl has the vGPU defined, auto start" \
        sh -c "mdevctl list --defined | grep -E '^$UUID $PARENT_PCI $TYPE auto'"
    virsh nodedev-dumpxml "$MDEV" >"$STATE/mdev.xml"
    echo "VGPU-NODEDEV-MDEV-BEGIN"
    cat "$STATE/mdev.xml"
    echo "VGPU-NODEDEV-MDEV-END"

    # --- a domain on it --------------------------------------------------------------
    install -D -m 0644 "$PAYLOAD/l2/vmlinuz" "$L2_IMAGES/vmlinuz"
    install -D -m 0644 "$PAYLOAD/l2/initramfs.img" "$L2_IMAGES/initramfs.img"
    check "virsh define vgpu-l2-mdev.xml" virsh define "$PAYLOAD/libvirt/vgpu-l2-mdev.xml"
    run_domain "boot 1" "$DOMAIN" in-use

    echo "$failures" >"$STATE/failures"
    echo "VGPU-TRANSCRIPT-END"
    guest_dmesg cat
    sync
    systemctl reboot
    exit 0
fi

# --- after the reboot ----------------------------------------------------------------
check "systemd loaded our modules at boot (modules-load.d)" \
    sh -c "grep -q '^vgpu_vfio ' /proc/modules && grep -q '^vgpu_rm ' /proc/modules"
check "the persistent vGPU is back (mdevctl autostart)" wait_for 60 mdev_active
check "with the same UUID and type $TYPE" test "$(mdev_type)" = "$TYPE"
check "libvirt sees it active, persistent, autostarted" sh -c \
    "virsh -c qemu:///system nodedev-info $MDEV | tr -s ' ' | grep -c -e '^Persistent: yes' -e '^Active: yes' -e '^Autostart: yes' | grep -qx 3"
run_domain "boot 2" "$DOMAIN"

# --- everything away again ---------------------------------------------------------
# virsh destroy while vgpu-l2-test drives the vGPU: QEMU is killed, the
# vGPU is free again.
rm -f "$(serial_log "$DOMAIN")"
check "virsh start $DOMAIN once more" virsh start "$DOMAIN"
wait_for 240 grep -q "VGPU-L2-TRANSCRIPT-BEGIN" "$(serial_log "$DOMAIN")" || true
check "virsh destroy it while vgpu-l2-test runs" virsh destroy "$DOMAIN"
check "the domain is off" domain_off "$DOMAIN"
check "virsh undefine $DOMAIN" virsh undefine "$DOMAIN"
check "virsh nodedev-destroy $MDEV" virsh nodedev-destroy "$MDEV"
check "virsh nodedev-undefine $MDEV" virsh nodedev-undefine "$MDEV"
check "no vGPU left in sysfs" test -z "$(ls /sys/bus/mdev/devices)"
check "none left in mdevctl" test -z "$(mdevctl list --defined)"
check "none left in libvirt" test -z "$(virsh nodedev-list --cap mdev)"
check "available_instances of $TYPE back to $(cat "$STATE/available")" \
    test "$(cat "/sys/class/mdev_bus/$PARENT_PCI/mdev_supported_types/$TYPE/available_instances")" = \
    "$(cat "$STATE/available")"

# --- SR-IOV mode: a VF with a vGPU type, a PCI hostdev -------------------------------
PF=/sys/bus/pci/devices/$PARENT_PCI
VF=/sys/bus/pci/devices/$VF_PCI
check "vgpu_mode sriov (no mdev vGPUs left)" sh -c "echo sriov >$PF/vgpu_mode"
check "2 VFs enabled" sh -c "echo 2 >$PF/sriov_numvfs"
check "VF0 is $VF_PCI" test "$(basename "$(readlink "$PF/virtfn0")")" = "$VF_PCI"
vf_type_id=$(awk -F' : ' -v name="$VF_TYPE" '$2 == name { print $1 }' "$VF/creatable_vgpu_types" 2>/dev/null)
check "VF0 takes type $VF_TYPE (ID ${vf_type_id:-none})" sh -c "echo ${vf_type_id:-none} >$VF/current_vgpu_type"
check "VF0 is bound to vgpu_vfio_pci" test "$(basename "$(readlink "$VF/driver")")" = vgpu_vfio_pci
check "libvirt sees VF0 as a VF of the GPU" sh -c \
    "virsh -c qemu:///system nodedev-dumpxml pci_${VF_PCI//[:.]/_} | grep -q \"<capability type='phys_function'>\""
check "virsh define vgpu-l2-vf.xml" virsh define "$PAYLOAD/libvirt/vgpu-l2-vf.xml"
run_domain "VF0" "$VF_DOMAIN"
check "VF0 is back on vgpu_vfio_pci (managed='yes')" \
    test "$(basename "$(readlink "$VF/driver")")" = vgpu_vfio_pci
check "virsh undefine $VF_DOMAIN" virsh undefine "$VF_DOMAIN"
check "VF0 gives its type back" sh -c "echo 0 >$VF/current_vgpu_type"
check "VFs disabled" sh -c "echo 0 >$PF/sriov_numvfs"
check "vgpu_mode mdev again" sh -c "echo mdev >$PF/vgpu_mode"
echo "$failures failures"
echo "VGPU-TRANSCRIPT-END"
guest_dmesg cat
echo "$VGPU_L1_EXIT $((failures > 0))"
sync
systemctl poweroff
