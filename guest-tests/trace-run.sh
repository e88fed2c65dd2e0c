#!/bin/sh
# trace-run.sh - runs in L1 for `make test-trace` under the MMIO tracer: the
# RM's probe, one vGPU's creation and removal, and the example driver's
# reset-then-forgotten-ring mistake (first-driver --forget-ring, on the bare
# device once the host driver is gone), and, with the host driver loaded
# again, one vGPU's migration to another as a VMM drives it (two of
# vgpu-mig-test's checks: DMA logging, which reads a dirty log, and the
# stop, save and restore of queued work). Between phases it writes a
# marker into the GPU's global SCRATCH register through /dev/mem, so the
# trace itself says where each phase starts (0x7ace000N) - the same trick
# works for any driver being traced.

# shellcheck source=scripts/lib/guest.sh
. /usr/lib/vgpu/guest.sh

bar0=""
for d in /sys/bus/pci/devices/*; do
    if [ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x7690 ]; then
        bar0=$(cut -d' ' -f1 "$d/resource" | head -n 1)
    fi
done
[ -n "$bar0" ] || fail "no vgpu-pci GPU in sysfs"
# mark N: SCRATCH (global block offset 0x1c, SPEC 3) <- 0x7ace000N
mark() {
    devmem $((bar0 + 0x1c)) 32 $((0x7ace0000 + $1)) || fail "marker $1"
}

dmesg -n 1
echo "VGPU-TRANSCRIPT-BEGIN"
mark 1
if load_host_driver; then ok "host driver loaded"; else fail "insmod"; fi
mark 2
parent=$(ls /sys/class/mdev_bus/)
types=/sys/class/mdev_bus/$parent/mdev_supported_types
u=7ace7ace-0000-4000-8000-000000000001
if echo $u >"$types/vgpu_rm-vgpu-64M/create"; then ok "vGPU created"; else fail "create"; fi
mark 3
if echo 1 >"/sys/bus/mdev/devices/$u/remove"; then ok "vGPU removed"; else fail "remove"; fi
mark 4
if unload_host_driver; then ok "host driver unloaded"; else fail "rmmod"; fi
mark 5
if first-driver --forget-ring; then ok "first-driver --forget-ring"; else fail "first-driver"; fi
mark 6
if load_host_driver; then ok "host driver loaded again"; else fail "insmod"; fi
mark 7
vgpu-mig-test --only "DMA logging reports" --only "work queued behind a semaphore" ||
    fail "vgpu-mig-test"
mark 8
if unload_host_driver; then ok "host driver unloaded again"; else fail "rmmod"; fi
mark 9
echo "VGPU-TRANSCRIPT-END"
checks_passed
