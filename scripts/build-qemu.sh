#!/usr/bin/env bash
# build-qemu.sh - build qemu-system-x86_64 from Debian's trixie QEMU 10.0 source
# with qemu-patches/series applied and the vdevice library linked in.
#
# The result lands in ~/.cache/vgpu-dev/qemu-<key>/{bin,share,include}, keyed by
# the QEMU version, the patches, the configure flags and the vdevice sources;
# ~/.cache/vgpu-dev/qemu-current points at it. A run whose key is built
# already only prints the path. Run scripts/setup-host.sh first.
#
# The build itself happens in one persistent tree per QEMU version and
# configure flags (~/.cache/vgpu-dev/work/tree-<key>/{src,build}), whatever
# the patches: each run patches a fresh copy of the source and syncs it in by
# content, so a patch change recompiles only the files it changes (a shim
# change: one file and a relink), a removed patch is undone, and a vdevice
# change only relinks.
#
# Environment: VGPU_DEV_CACHE (default ~/.cache/vgpu-dev); VGPU_VDEVICE_LIB, a
# prebuilt libvdevice.a used instead of `cargo build` (for testing the shim).
set -euo pipefail

LOG_TAG="build-qemu"
# shellcheck source=scripts/qemu-build-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/qemu-build-lib.sh"

CONFIGURE_ARGS=(
    --target-list=x86_64-softmmu
    --without-default-features
    --enable-kvm --enable-tcg --enable-plugins
    --enable-slirp --enable-pixman --enable-fdt=system
    --disable-install-blobs --disable-debug-info --disable-werror
)

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
    local pristine qemu_version deb_version list patches=()
    local tree_key src_key vdev_key key work out lib start

    [[ -x "$VENV_DIR/bin/meson" ]] || die "no meson in $VENV_DIR: run scripts/setup-host.sh"
    mkdir -p "$CACHE_DIR"
    exec 9>"$CACHE_DIR/build-qemu.lock"
    flock 9

    pristine=$(qemu_source_dir)
    qemu_version=$(<"$pristine/VERSION")
    deb_version=$(dpkg-parsechangelog -l "$pristine/debian/changelog" -S Version)
    log "QEMU $qemu_version (Debian source $deb_version)"

    # A substitution, not <(...): a missing patch must stop the build.
    list=$(series_patches "$PATCH_DIR/series")
    mapfile -t patches <<<"$list"
    # One source tree and build directory per QEMU version and configure
    # flags, shared by every patch series: a patch change recompiles only
    # what it touches, a model change only relinks.
    tree_key=$(printf 'qemu %s\nconfigure %s\nlibs %s\n' "$deb_version" \
        "${CONFIGURE_ARGS[*]}" "$VDEVICE_NATIVE_LIBS" | short_hash)
    # The installed build is keyed by all of it, as before.
    src_key=$({
        printf 'qemu %s\nconfigure %s\nlibs %s\n' "$deb_version" \
            "${CONFIGURE_ARGS[*]}" "$VDEVICE_NATIVE_LIBS"
        patches_digest "${patches[@]}"
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

    work="$CACHE_DIR/work/tree-$tree_key"
    sync_patched_tree "$pristine" "$work/src" "${patches[@]}"

    start=$SECONDS
    lib=$(build_vdevice)
    configure_and_build "$work" qemu-system-x86_64 "$lib" "${CONFIGURE_ARGS[@]}"
    log "built in $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s"

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
