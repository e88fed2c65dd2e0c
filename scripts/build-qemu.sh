#!/usr/bin/env bash
# build-qemu.sh - build qemu-system-x86_64 from Debian's trixie QEMU 10.0 source
# with qemu-patches/series applied and the vdevice library linked in.
#
# The result lands in ~/.cache/vgpu-dev/qemu-<key>/{bin,share,include}, keyed by
# the QEMU version, the patches, the configure flags and the vdevice sources;
# ~/.cache/vgpu-dev/qemu-current points at it. A run whose key is built
# already only prints the path. Run scripts/setup-host.sh first.
#
# Environment: VGPU_DEV_CACHE (default ~/.cache/vgpu-dev); VGPU_VDEVICE_LIB, a
# prebuilt libvdevice.a used instead of `cargo build` (for testing the shim).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR="${VGPU_DEV_CACHE:-$HOME/.cache/vgpu-dev}"
SRC_CACHE="$CACHE_DIR/src"
VENV_DIR="$CACHE_DIR/venv"
PATCH_DIR="$REPO/qemu-patches"

CONFIGURE_ARGS=(
    --target-list=x86_64-softmmu
    --without-default-features
    --enable-kvm --enable-tcg --enable-plugins
    --enable-slirp --enable-pixman --enable-fdt=system
    --disable-install-blobs --disable-debug-info --disable-werror
)
# What a Rust staticlib needs from the C side (rustc --print native-static-libs).
VDEVICE_NATIVE_LIBS="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

# Firmware that a pc/q35 machine with -nographic may ask for, from Debian's
# seabios, ipxe-qemu and qemu-system-data packages.
FIRMWARE=(
    /usr/share/seabios/bios-256k.bin
    /usr/share/seabios/bios.bin
    /usr/share/seabios/bios-microvm.bin
    /usr/share/seabios/vgabios-*.bin
    /usr/lib/ipxe/qemu/efi-*.rom
    /usr/share/qemu/kvmvapic.bin
    /usr/share/qemu/linuxboot.bin
    /usr/share/qemu/linuxboot_dma.bin
    /usr/share/qemu/multiboot.bin
    /usr/share/qemu/multiboot_dma.bin
    /usr/share/qemu/pvh.bin
    /usr/share/qemu/qboot.rom
)

log() {
    printf 'build-qemu: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

short_hash() {
    sha256sum | cut -c1-16
}

# Newest unpacked QEMU 10.0.x source, fetched with apt-get source if none.
qemu_source_dir() {
    local dir tmp
    dir=$(find "$SRC_CACHE" -mindepth 1 -maxdepth 1 -type d -name 'qemu-10.0.*' \
        2>/dev/null | sort -V | tail -n1)
    if [[ -n "$dir" && -f "$dir/VERSION" ]]; then
        printf '%s\n' "$dir"
        return
    fi
    log "fetching the QEMU source (apt-get source -t trixie qemu)"
    mkdir -p "$SRC_CACHE"
    tmp=$(mktemp -d "$SRC_CACHE/fetch.XXXXXX")
    (cd "$tmp" && apt-get source -q -t trixie qemu >&2) ||
        die "apt-get source failed (did scripts/setup-host.sh run?)"
    dir=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'qemu-*' | head -n1)
    [[ -n "$dir" && -f "$dir/VERSION" ]] || die "no QEMU tree in $tmp"
    [[ $(<"$dir/VERSION") == 10.0.* ]] ||
        die "expected QEMU 10.0.x, got $(<"$dir/VERSION")"
    mv "$tmp"/* "$SRC_CACHE"/
    rmdir "$tmp"
    printf '%s\n' "$SRC_CACHE/$(basename "$dir")"
}

# Patch files named by qemu-patches/series, in order.
series_patches() {
    local line
    [[ -f "$PATCH_DIR/series" ]] || die "missing $PATCH_DIR/series"
    while IFS= read -r line || [[ -n "$line" ]]; do
        line=${line%%#*}
        line=${line//[[:space:]]/}
        [[ -z "$line" ]] && continue
        [[ -f "$PATCH_DIR/$line" ]] || die "series names missing patch $line"
        printf '%s\n' "$PATCH_DIR/$line"
    done <"$PATCH_DIR/series"
}

vdevice_sources_hash() {
    local paths=() p
    if [[ -n "${VGPU_VDEVICE_LIB:-}" ]]; then
        cat "$VGPU_VDEVICE_LIB" "$REPO/vdevice/include/vdevice.h" | short_hash
        return
    fi
    for p in Cargo.toml Cargo.lock vdevice/Cargo.toml vdevice/build.rs \
        vdevice/src vdevice/include; do
        [[ -e "$REPO/$p" ]] && paths+=("$p")
    done
    (cd "$REPO" && find "${paths[@]}" -type f -print0 | LC_ALL=C sort -z |
        xargs -0 sha256sum) | short_hash
}

build_vdevice() {
    local target_dir
    if [[ -n "${VGPU_VDEVICE_LIB:-}" ]]; then
        printf '%s\n' "$VGPU_VDEVICE_LIB"
        return
    fi
    log "cargo build --release -p vdevice"
    (cd "$REPO" && cargo build --release --locked -p vdevice >&2)
    target_dir=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    [[ -f "$target_dir/release/libvdevice.a" ]] ||
        die "cargo did not produce $target_dir/release/libvdevice.a"
    printf '%s\n' "$target_dir/release/libvdevice.a"
}

# copy_if_changed SRC DST: copy only when the content differs, keeping mtimes
# stable so ninja rebuilds nothing it need not.
copy_if_changed() {
    if ! cmp -s "$1" "$2" 2>/dev/null; then
        install -m 0644 "$1" "$2"
        return 1
    fi
}

patch_tree() {
    local pristine=$1 dest=$2 patch
    shift 2
    rm -rf "$dest" "$dest.tmp"
    cp -a "$pristine" "$dest.tmp"
    for patch in "$@"; do
        log "applying $(basename "$patch")"
        if ! patch -d "$dest.tmp" -p1 --batch --forward --dry-run --quiet \
            <"$patch" >&2; then
            rm -rf "$dest.tmp"
            die "patch does not apply: $patch"
        fi
        patch -d "$dest.tmp" -p1 --batch --forward --quiet <"$patch" >&2
    done
    mv "$dest.tmp" "$dest"
}

# install_tree SRC BUILD DEST: binary, firmware and plugin header into DEST.
install_tree() {
    local src=$1 build=$2 dest=$3 pattern file found
    rm -rf "$dest"
    mkdir -p "$dest/bin" "$dest/share" "$dest/include/qemu"
    install -m 0755 "$build/qemu-system-x86_64" "$dest/bin/"
    strip --strip-debug "$dest/bin/qemu-system-x86_64"
    install -m 0644 "$src/include/qemu/qemu-plugin.h" "$dest/include/qemu/"
    for pattern in "${FIRMWARE[@]}"; do
        found=0
        for file in $pattern; do
            [[ -f "$file" ]] || continue
            install -m 0644 "$file" "$dest/share/"
            found=1
        done
        ((found)) || die "missing firmware $pattern (run scripts/setup-host.sh)"
    done
}

main() {
    local pristine qemu_version deb_version patches=() patch
    local src_key vdev_key key work out lib pc_dir

    [[ -x "$VENV_DIR/bin/meson" ]] || die "no meson in $VENV_DIR: run scripts/setup-host.sh"
    mkdir -p "$CACHE_DIR"
    exec 9>"$CACHE_DIR/build-qemu.lock"
    flock 9

    pristine=$(qemu_source_dir)
    qemu_version=$(<"$pristine/VERSION")
    deb_version=$(dpkg-parsechangelog -l "$pristine/debian/changelog" -S Version)
    log "QEMU $qemu_version (Debian source $deb_version)"

    mapfile -t patches < <(series_patches)
    src_key=$({
        printf 'qemu %s\nconfigure %s\nlibs %s\n' "$deb_version" \
            "${CONFIGURE_ARGS[*]}" "$VDEVICE_NATIVE_LIBS"
        for patch in "${patches[@]}"; do
            printf 'patch %s\n' "$(basename "$patch")"
            cat "$patch"
        done
    } | short_hash)
    vdev_key=$(vdevice_sources_hash)
    key=$(printf '%s %s\n' "$src_key" "$vdev_key" | short_hash)
    out="$CACHE_DIR/qemu-$key"

    if [[ -f "$out/BUILDINFO" ]]; then
        ln -sfn "$out" "$CACHE_DIR/qemu-current"
        log "up to date"
        printf '%s\n' "$out"
        return
    fi

    # Source tree and build directory depend on everything but the vdevice
    # library, so a model change costs a cargo build and a relink.
    work="$CACHE_DIR/work/$src_key"
    if [[ ! -f "$work/src/VERSION" ]]; then
        rm -rf "$work/build"
        mkdir -p "$work"
        patch_tree "$pristine" "$work/src" "${patches[@]}"
    fi

    lib=$(build_vdevice)
    pc_dir="$work/vdevice"
    mkdir -p "$pc_dir/include" "$pc_dir/lib"
    if ! copy_if_changed "$lib" "$pc_dir/lib/libvdevice.a"; then
        rm -f "$work/build/qemu-system-x86_64"
    fi
    copy_if_changed "$REPO/vdevice/include/vdevice.h" "$pc_dir/include/vdevice.h" || true
    cat >"$pc_dir/vdevice.pc.new" <<EOF
Name: vdevice
Description: Device model of the partitionable vGPU (C ABI)
Version: 0.1.0
Cflags: -I$pc_dir/include
Libs: $pc_dir/lib/libvdevice.a $VDEVICE_NATIVE_LIBS
EOF
    copy_if_changed "$pc_dir/vdevice.pc.new" "$pc_dir/vdevice.pc" || true
    rm -f "$pc_dir/vdevice.pc.new"
    export PKG_CONFIG_PATH="$pc_dir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

    if [[ ! -f "$work/build/build.ninja" ]]; then
        log "configuring in $work/build"
        rm -rf "$work/build"
        mkdir -p "$work/build"
        (cd "$work/build" && "$work/src/configure" --prefix="$work/install" \
            --python="$VENV_DIR/bin/python3" "${CONFIGURE_ARGS[@]}" \
            >"$work/build/configure.log" 2>&1) ||
            die "configure failed, see $work/build/configure.log"
    fi

    log "building (ninja -C $work/build qemu-system-x86_64)"
    ninja -C "$work/build" qemu-system-x86_64 >&2

    install_tree "$work/src" "$work/build" "$out.partial"
    {
        printf 'qemu %s (Debian %s)\n' "$qemu_version" "$deb_version"
        printf 'patches %s\n' "$(basename -a "${patches[@]}" | tr '\n' ' ')"
        printf 'vdevice %s\n' "$vdev_key"
        printf 'configure %s\n' "${CONFIGURE_ARGS[*]}"
    } >"$out.partial/BUILDINFO"
    rm -rf "$out"
    mv "$out.partial" "$out"
    ln -sfn "$out" "$CACHE_DIR/qemu-current"
    log "installed $out/bin/qemu-system-x86_64 (use -L $out/share)"
    printf '%s\n' "$out"
}

main "$@"
