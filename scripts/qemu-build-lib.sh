#!/usr/bin/env bash
# qemu-build-lib.sh - sourced by build-qemu.sh and fuzz-qemu.sh: the QEMU
# source, the patch series, the vdevice library, configure and ninja: what
# both builds share. The sourcing script sets LOG_TAG (its name in messages).

# shellcheck source=scripts/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"
SRC_CACHE="$CACHE_DIR/src"
# shellcheck disable=SC2034 # used by the scripts that source this file
VENV_DIR="$CACHE_DIR/venv"
PATCH_DIR="$REPO/qemu-patches"

# What a Rust staticlib needs from the C side (rustc --print native-static-libs).
VDEVICE_NATIVE_LIBS="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

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

# series_patches [LIST]: patch files named by LIST (default qemu-patches/series),
# in order.
series_patches() {
    local list=${1:-$PATCH_DIR/series} name line
    [[ -f "$list" ]] || die "missing $list"
    name=${list##*/}
    while IFS= read -r line || [[ -n "$line" ]]; do
        line=${line%%#*}
        line=${line//[[:space:]]/}
        [[ -z "$line" ]] && continue
        [[ -f "$PATCH_DIR/$line" ]] || die "$name names missing patch $line"
        printf '%s\n' "$PATCH_DIR/$line"
    done <"$list"
}

# patches_digest PATCH...: what a build key says of the patches: their
# names and contents, in order.
patches_digest() {
    local patch
    for patch in "$@"; do
        printf 'patch %s\n' "$(basename "$patch")"
        cat "$patch"
    done
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

# apply_patches TREE PATCH...: apply the patches to TREE in order; each is
# checked with a dry run first, so a patch that does not apply leaves no
# half-patched files behind it.
apply_patches() {
    local tree=$1 patch
    shift
    for patch in "$@"; do
        log "applying $(basename "$patch")"
        patch -d "$tree" -p1 --batch --forward --dry-run --quiet <"$patch" >&2 ||
            die "patch does not apply: $patch"
        patch -d "$tree" -p1 --batch --forward --quiet --no-backup-if-mismatch \
            <"$patch" >&2 || die "patch failed: $patch"
    done
}

# sync_patched_tree PRISTINE DEST PATCH...: make DEST exactly PRISTINE with
# the patches applied, touching only what differs. The patches go onto a
# fresh copy, which rsync compares with DEST by content: a file whose content
# changed is rewritten (new mtime, so ninja recompiles what includes it, and
# re-runs meson if it is a meson.build), an unchanged file keeps its mtime,
# and a file that is no longer in the result (a patch was removed) is
# deleted. --no-times matters: a file restored from the pristine tree has an
# old mtime, which ninja would take for "not newer than its objects".
sync_patched_tree() {
    local pristine=$1 dest=$2 stage=$2.new changes
    shift 2
    command -v rsync >/dev/null || die "no rsync: run scripts/setup-host.sh"
    mkdir -p "$dest"
    rm -rf "$stage"
    cp -a "$pristine" "$stage"
    if ! (apply_patches "$stage" "$@"); then
        rm -rf "$stage"
        die "cannot patch the QEMU source"
    fi
    changes=$(rsync --archive --no-times --checksum --delete --itemize-changes \
        "$stage/" "$dest/" | grep -E '^(\*deleting|>f)' || true)
    rm -rf "$stage"
    if [[ -z $changes ]]; then
        log "source tree $dest unchanged"
    elif (($(wc -l <<<"$changes") <= 20)); then
        log "source tree $dest: changed files:"
        sed -E 's/^\*deleting +/  deleted /; s/^>f\S* +/  /' <<<"$changes" >&2
    else
        log "source tree $dest: $(wc -l <<<"$changes") files changed"
    fi
}

# install_vdevice_pc DIR LIB: DIR/{include,lib} and DIR/vdevice.pc, the
# pkg-config package the shim's meson.build looks for. Returns 1 when the
# library changed (the QEMU binary must be relinked).
install_vdevice_pc() {
    local pc_dir=$1 lib=$2 status=0
    mkdir -p "$pc_dir/include" "$pc_dir/lib"
    copy_if_changed "$lib" "$pc_dir/lib/libvdevice.a" || status=1
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
    return "$status"
}

# configure_and_build WORK TARGET VDEVICE_LIB CONFIGURE_ARG...: link
# VDEVICE_LIB in through WORK/vdevice (TARGET is relinked when it changed),
# configure WORK/src into WORK/build once, then ninja TARGET (JOBS: -j).
configure_and_build() {
    local work=$1 target=$2 lib=$3 pc_dir=$1/vdevice
    shift 3
    if ! install_vdevice_pc "$pc_dir" "$lib"; then
        rm -f "$work/build/$target"
    fi
    export PKG_CONFIG_PATH="$pc_dir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

    if [[ ! -f "$work/build/build.ninja" ]]; then
        log "configuring in $work/build"
        rm -rf "$work/build"
        mkdir -p "$work/build"
        (cd "$work/build" && "$work/src/configure" --prefix="$work/install" \
            --python="$VENV_DIR/bin/python3" "$@" \
            >"$work/build/configure.log" 2>&1) ||
            die "configure failed, see $work/build/configure.log"
    fi

    log "building (ninja -C $work/build $target)"
    ninja -C "$work/build" ${JOBS:+-j "$JOBS"} "$target" >&2
}
