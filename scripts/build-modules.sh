#!/usr/bin/env bash
# build-modules.sh - build host-driver/'s kernel modules (vgpu_rm.ko,
# vgpu_vfio.ko) with W=1 against the L1 kernel's headers; any compiler or
# modpost warning fails the build.
#
# Usage: scripts/build-modules.sh
#   stdout: the directory holding the .ko files (and build.log); messages
#   go to stderr. The directory is keyed by the host-driver sources, the
#   kernel release, the compiler and this script, so a warm run is instant.
# Environment:
#   VGPU_DEV_CACHE=DIR   cache directory (default ~/.cache/vgpu-dev)
#   MODULES="vgpu_rm"    build only these modules (default: every module in
#                        Kbuild whose sources exist; a missing one is skipped
#                        with a message)
# Needs the headers from scripts/build-images.sh (run when missing) and
# pahole (BTF for modules; scripts/setup-host.sh installs it).
set -euo pipefail

CACHE_DIR="${VGPU_DEV_CACHE:-$HOME/.cache/vgpu-dev}"
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR="$SCRIPT_DIR/../host-driver"

log() {
    printf 'build-modules: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

kdir="$CACHE_DIR/kernel-current"
if [[ ! -f $kdir/kernel-release || ! -e $kdir/build/Makefile ]]; then
    log "no kernel headers yet: running build-images.sh"
    "$SCRIPT_DIR/build-images.sh" >/dev/null
fi
release=$(cat "$kdir/kernel-release")
build=$(cd "$kdir/build" && pwd -P)
command -v pahole >/dev/null || die "pahole is missing (scripts/setup-host.sh installs it)"

# Modules of Kbuild ("obj-m += name.o") and whether their sources exist.
kbuild=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$SRC_DIR/Kbuild")
available=()
while read -r mod; do
    objs=$(sed -n "s/^${mod}-y *:\?= *//p" <<<"$kbuild")
    missing=""
    for obj in $objs; do
        [[ -f $SRC_DIR/${obj%.o}.c ]] || missing+=" ${obj%.o}.c"
    done
    if [[ -n $missing ]]; then
        log "skipping $mod: missing$missing"
    else
        available+=("$mod")
    fi
done < <(sed -n 's/^obj-m *+\?= *\([a-z0-9_]*\)\.o.*/\1/p' <<<"$kbuild")
read -r -a modules <<<"${MODULES:-${available[*]}}"
((${#modules[@]})) || die "no module to build"

cc_version=$(gcc-12 --version 2>/dev/null | sed -n 1p || gcc --version | sed -n 1p)
key=$(
    {
        echo "$release ${modules[*]} $cc_version"
        cat "${BASH_SOURCE[0]}"
        cd "$SRC_DIR" && find . -type f \( -name '*.[ch]' -o -name Kbuild -o -name Makefile \) |
            LC_ALL=C sort | xargs sha256sum
    } | sha256sum | cut -c1-16
)
out="$CACHE_DIR/modules-$key"
if [[ -f $out/.complete ]]; then
    log "up to date: ${modules[*]} for $release"
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
# Only the chosen modules: drop the other obj-m lines from the copy's Kbuild.
keep=" ${modules[*]} "
while read -r mod; do
    [[ $keep == *" $mod "* ]] || sed -i "/^obj-m *+\?= *$mod\.o/d" "$work/src/Kbuild"
done < <(sed -n 's/^obj-m *+\?= *\([a-z0-9_]*\)\.o.*/\1/p' <<<"$kbuild")

log "building ${modules[*]} for $release"
status=0
make -C "$build" M="$work/src" W=1 -j"$(nproc)" modules \
    >"$work/build.log" 2>&1 || status=$?
if ((status)); then
    cat "$work/build.log" >&2
    die "make failed (status $status)"
fi
if grep -iE 'warning[:[ ]' "$work/build.log" >&2; then
    die "the build has warnings (above)"
fi

mkdir -p "$work/out"
for mod in "${modules[@]}"; do
    cp "$work/src/$mod.ko" "$work/out/"
done
cp "$work/build.log" "$work/out/"
touch "$work/out/.complete"
rm -rf "$out"
mv "$work/out" "$out"

# Keep the cache bounded: the newest few module builds.
find "$CACHE_DIR" -maxdepth 1 -name 'modules-????????????????' -printf '%T@ %p\n' |
    sort -rn | tail -n +9 | cut -d' ' -f2- | xargs -r -d '\n' rm -rf
log "built ${modules[*]} in $out"
echo "$out"
