#!/usr/bin/env bash
# build-modules.sh - build host-driver/'s kernel modules (vgpu_rm.ko,
# vgpu_vfio.ko: whatever its Kbuild names) with W=1 against the L1 kernel's
# headers; any compiler or modpost warning fails the build.
#
# Usage: scripts/build-modules.sh
#   stdout: the directory holding the .ko files (and build.log); messages
#   go to stderr. The directory is keyed by the host-driver sources, the
#   kernel release, the compiler and this script, so a warm run is instant.
# Environment:
#   VGPU_DEV_CACHE=DIR   cache directory (default ~/.cache/vgpu-dev)
# Needs the headers from scripts/build-images.sh (run when missing) and
# pahole (BTF for modules; scripts/setup-host.sh installs it).
set -euo pipefail
# shellcheck source=scripts/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"

SRC_DIR="$REPO/host-driver"

kdir="$CACHE_DIR/kernel-current"
if [[ ! -f $kdir/kernel-release || ! -e $kdir/build/Makefile ]]; then
    log "no kernel headers yet: running build-images.sh"
    "$SCRIPTS_DIR/build-images.sh" >/dev/null
fi
release=$(cat "$kdir/kernel-release")
build=$(cd "$kdir/build" && pwd -P)
# The L1 image's vfio.ko exports iova_bitmap_*, for the frontend's DMA
# logging; build-images.sh built it (instant here).
# shellcheck source=scripts/lib/images.sh
. "$SCRIPTS_DIR/lib/images.sh"
kdir_real=$(cd "$kdir" && pwd -P)
TMP_DIR=$(mktemp -d "$CACHE_DIR/.build-modules-tmp.XXXXXX")
vfio_ko=$(build_vfio_ko "$kdir" "$release" "${kdir_real##*_}")
rm -rf "$TMP_DIR"
vfio_symvers="$(dirname "$vfio_ko")/Module.symvers"
command -v pahole >/dev/null || die "pahole is missing (scripts/setup-host.sh installs it)"

cc_version=$(gcc-12 --version 2>/dev/null | sed -n 1p || gcc --version | sed -n 1p)
key=$(
    {
        echo "$release $cc_version"
        sha256sum "$vfio_symvers"
        cat "${BASH_SOURCE[0]}"
        cd "$SRC_DIR" && find . -type f \( -name '*.[ch]' -o -name Kbuild -o -name Makefile \) |
            LC_ALL=C sort | xargs sha256sum
    } | short_hash
)
out="$CACHE_DIR/modules-$key"
if [[ -f $out/.complete ]]; then
    log "up to date for $release"
    echo "$out"
    exit 0
fi

mkdir -p "$CACHE_DIR"
exec {lock_fd}>"$CACHE_DIR/.build-modules.lock"
flock "$lock_fd"

# Kbuild writes next to the sources: build in a private copy.
work="$CACHE_DIR/.build-modules-$key"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
cp -a "$SRC_DIR/." "$work/src/"

log "building for $release"
status=0
make -C "$build" M="$work/src" W=1 KBUILD_EXTRA_SYMBOLS="$vfio_symvers" -j"$(nproc)" modules \
    >"$work/build.log" 2>&1 || status=$?
if ((status)); then
    cat "$work/build.log" >&2
    die "make failed (status $status)"
fi
if grep -iE 'warning[:[ ]' "$work/build.log" >&2; then
    die "the build has warnings (above)"
fi

mkdir -p "$work/out"
cp "$work/src"/*.ko "$work/build.log" "$work/out/"
touch "$work/out/.complete"
rm -rf "$out"
mv "$work/out" "$out"

# Keep the cache bounded: the newest few module builds.
prune_cache 'modules-????????????????' 8
log "built $(cd "$out" && echo *.ko) in $out"
echo "$out"
