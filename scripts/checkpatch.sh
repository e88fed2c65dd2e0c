#!/usr/bin/env bash
# checkpatch.sh - kernel-style check of our kernel C (host-driver/, the L2
# guest driver) with checkpatch.pl. The kernel headers package lacks it; the
# QEMU source that build-qemu.sh fetched carries U-Boot's copy of the
# kernel's checkpatch, which is what this uses. Any warning fails.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR="${VGPU_DEV_CACHE:-$HOME/.cache/vgpu-dev}"
checkpatch=$(find "$CACHE_DIR/src" -maxdepth 5 -path '*/roms/u-boot/scripts/checkpatch.pl' \
    2>/dev/null | sort | tail -n 1)
if [[ -z $checkpatch ]]; then
    echo "checkpatch: no checkpatch.pl under $CACHE_DIR/src (scripts/build-qemu.sh fetches it)" >&2
    exit 1
fi
cd "$repo"
status=0
for f in host-driver/*/*.[ch] guest-tests/guest-driver/*.[ch]; do
    out=$(perl "$checkpatch" --no-tree --terse --show-types -f "$f" 2>&1) || status=1
    if [[ -n $out ]]; then
        echo "$out"
        status=1
    fi
done
if ((status)); then
    echo "checkpatch: the kernel C above is not checkpatch-clean" >&2
    exit 1
fi
echo "checkpatch: host-driver and guest-driver C are clean" >&2
