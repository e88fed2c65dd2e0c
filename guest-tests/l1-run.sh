#!/bin/sh
# l1-run.sh - runs in L1 (busybox sh) for `make test-l1`: the lspci view of
# the GPU, then the bare-metal driver test, each between console markers.
echo "VGPU-LSPCI-BEGIN"
lspci -vv -nn -d 1234:7690
echo "VGPU-LSPCI-END"
echo "VGPU-TRANSCRIPT-BEGIN"
/bin/vgpu-l1-test
rc=$?
echo "VGPU-TRANSCRIPT-END"
exit "$rc"
