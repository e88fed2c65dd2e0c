#!/usr/bin/env bash
# checkpatch.sh - kernel-style check of our kernel C (host-driver/, the L2
# guest driver) with checkpatch.pl. The kernel headers package lacks it; the
# QEMU source that build-qemu.sh fetched carries U-Boot's copy of the
# kernel's checkpatch, which is what this uses. Any warning fails.
set -euo pipefail

# shellcheck source=scripts/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"
checkpatch=$(find "$CACHE_DIR/src" -maxdepth 5 -path '*/roms/u-boot/scripts/checkpatch.pl' \
    2>/dev/null | sort | tail -n 1)
[[ -n $checkpatch ]] || die "no checkpatch.pl under $CACHE_DIR/src (scripts/build-qemu.sh fetches it)"
cd "$REPO"
status=0
for f in host-driver/*/*.[ch] guest-tests/guest-driver/*.[ch]; do
    out=$(perl "$checkpatch" --no-tree --terse --show-types -f "$f" 2>&1) || status=1
    if [[ -n $out ]]; then
        echo "$out"
        status=1
    fi
done
if ((status)); then
    die "the kernel C above is not checkpatch-clean"
fi
log "host-driver and guest-driver C are clean"
