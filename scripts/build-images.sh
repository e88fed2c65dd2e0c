#!/usr/bin/env bash
# build-images.sh - the L1 guest's boot images: Debian's bookworm-backports
# 6.12 kernel (plus its headers for building our modules) and an initramfs
# with busybox, lspci, the VFIO/mdev/KVM modules and scripts/l1-init.sh.
#
# Usage: scripts/build-images.sh [SRC:DST ...]
#   SRC:DST       add file or directory SRC to the initramfs at DST (absolute)
#   EXTRA=DIR     add DIR's contents at the initramfs root
#   MODULES=...   modules loaded at boot, dependencies added (default below;
#                 MODULES= empty: none)
#   INIT_SCRIPT=FILE  the initramfs's /init (default scripts/l1-init.sh)
#   LINK_CURRENT=0    leave $CACHE/images-current alone (for other images,
#                 e.g. build-l2-images.sh's L2 and nested-L1 images)
#   KERNEL_VERSION=6.12.95-1~bpo12+1   pin the kernel package version
#   VGPU_DEV_CACHE=DIR   cache directory (default ~/.cache/vgpu-dev)
# Dynamically linked executables among the extras get their libraries too.
#
# Outputs (stdout prints the images directory, messages go to stderr):
#   $CACHE/kernel-<release>_<version>/  extracted kernel, modules and headers;
#       build/ is the headers tree: make -C .../build M=$PWD modules
#   $CACHE/images-<key>/{vmlinuz,vmlinux,initramfs.img,kernel-release}
#       vmlinux is the uncompressed ELF kernel (PVH entry, boots faster);
#       the key covers the kernel version, these scripts and the extras.
#   $CACHE/images-current -> the images directory built last
#   $CACHE/kernel-current -> the kernel directory used last
set -euo pipefail

CACHE_DIR="${VGPU_DEV_CACHE:-$HOME/.cache/vgpu-dev}"
MODULES="${MODULES-vfio vfio_iommu_type1 mdev kvm_amd kvm_intel}"
USERLAND_PACKAGES=(busybox-static pciutils libpci3 pci.ids)
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INIT_SCRIPT="${INIT_SCRIPT:-$SCRIPT_DIR/l1-init.sh}"

log() {
    printf 'build-images: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

sha() {
    sha256sum | cut -c1-16
}

mkdir -p "$CACHE_DIR"
exec {lock_fd}>"$CACHE_DIR/.build-images.lock"
flock "$lock_fd"

tmp=$(mktemp -d "$CACHE_DIR/.build-images.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- versions -----------------------------------------------------------------

# Package versions from one apt-cache call (each takes seconds here: apt's
# pkgcache is disabled), remembered until the apt lists change. Lines:
# "kernel <Depends of linux-image-amd64 in bookworm-backports>", "<pkg>=<ver>".
lists_key=$(stat -c '%n %Y' /var/lib/apt/lists/*_Packages* 2>/dev/null | sha)
versions="$CACHE_DIR/.versions-$lists_key"
if [[ ! -s $versions ]]; then
    rm -f "$CACHE_DIR"/.versions-*
    apt-cache show --no-all-versions linux-image-amd64/bookworm-backports \
        "${USERLAND_PACKAGES[@]}" 2>/dev/null |
        awk '/^Package:/ { pkg = $2 }
             /^Version:/ && pkg != "linux-image-amd64" { print pkg "=" $2 }
             /^Depends:/ && pkg == "linux-image-amd64" { print "kernel " $0 }' \
            >"$tmp/versions" || true
    mv "$tmp/versions" "$versions"
fi

# The kernel: e.g. ABI name 6.12.95+deb12, package version 6.12.95-1~bpo12+1.
if [[ -n ${KERNEL_VERSION:-} ]]; then
    kver=$KERNEL_VERSION
    kabi="${kver%%-*}+deb12"
elif [[ $(grep '^kernel ' "$versions") =~ linux-image-(6\.12\.[^ ]+)-amd64\ \(=\ ([^\)]+)\) ]]; then
    kabi=${BASH_REMATCH[1]}
    kver=${BASH_REMATCH[2]}
else
    rm -f "$versions"
    die "no 6.12 kernel in bookworm-backports (run scripts/setup-host.sh or apt-get update)"
fi
release="$kabi-amd64"
kernel_pkgs=(
    "linux-image-$release-unsigned=$kver"
    "linux-headers-$release=$kver"
    "linux-headers-$kabi-common=$kver"
    "linux-kbuild-$kabi=$kver"
)

userland_pkgs=()
for pkg in "${USERLAND_PACKAGES[@]}"; do
    line=$(grep "^$pkg=" "$versions") || {
        rm -f "$versions"
        die "package $pkg not found (apt-get update?)"
    }
    userland_pkgs+=("$line")
done

# download DIR PKG=VER...: fetch the packages and extract them into DIR/root.
download() {
    local dir=$1
    shift
    mkdir -p "$dir"
    (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "$@" >&2) ||
        die "apt-get download $* failed"
    for deb in "$dir"/*.deb; do
        dpkg-deb -x "$deb" "$dir/root"
    done
    rm -f "$dir"/*.deb
}

# --- kernel, modules, headers ---------------------------------------------------

kdir="$CACHE_DIR/kernel-${release}_$kver"
if [[ ! -f $kdir/.complete ]]; then
    log "fetching kernel $release ($kver)"
    rm -rf "$kdir"
    download "$tmp/kernel" "${kernel_pkgs[@]}"
    mkdir -p "$kdir"
    mv "$tmp/kernel/root" "$kdir/root"
    headers="$kdir/root/usr/src/linux-headers-$release"
    # The headers' Makefile includes the -common tree by absolute path.
    sed -i "s|^include /usr/src/|include $kdir/root/usr/src/|" "$headers/Makefile"
    ln -sfn "root/usr/src/linux-headers-$release" "$kdir/build"
    ln -sfn "root/boot/vmlinuz-$release" "$kdir/vmlinuz"
    # vmlinuz is a bzImage around a zstd-compressed ELF vmlinux with a PVH note.
    offset=$(LC_ALL=C grep -abo $'\x28\xb5\x2f\xfd' "$kdir/vmlinuz" | sed -n 1p | cut -d: -f1)
    tail -c "+$((offset + 1))" "$kdir/vmlinuz" | zstd -dcq >"$kdir/vmlinux" 2>/dev/null || true
    if [[ $(head -c4 "$kdir/vmlinux" | od -An -tx1 | tr -d ' ') != 7f454c46 ]] ||
        ! grep -qx 'CONFIG_PVH=y' "$kdir/root/boot/config-$release"; then
        log "no PVH-bootable vmlinux inside vmlinuz; using vmlinuz only"
        rm -f "$kdir/vmlinux"
    fi
    echo "$release" >"$kdir/kernel-release"
    touch "$kdir/.complete"
fi
ln -sfn "$(basename "$kdir")" "$CACHE_DIR/kernel-current"

# --- userland: busybox, lspci ---------------------------------------------------

udir="$CACHE_DIR/userland-$(printf '%s\n' "${userland_pkgs[@]}" | sha)"
if [[ ! -f $udir/.complete ]]; then
    log "fetching ${USERLAND_PACKAGES[*]}"
    rm -rf "$udir"
    download "$tmp/userland" "${userland_pkgs[@]}"
    mkdir -p "$udir"
    mv "$tmp/userland/root" "$udir/root"
    touch "$udir/.complete"
fi
busybox="$udir/root/bin/busybox"

# copy_elf_deps ROOT FILE: copy the shared libraries FILE needs into ROOT.
copy_elf_deps() {
    local root=$1 file=$2 libs lib
    [[ $(head -c4 "$file" | od -An -tx1 | tr -d ' ') == 7f454c46 ]] || return 0
    libs=$(LD_LIBRARY_PATH="$udir/root/usr/lib/x86_64-linux-gnu:$udir/root/lib/x86_64-linux-gnu" \
        ldd "$file" 2>/dev/null) || return 0 # static
    if grep -q 'not found' <<<"$libs"; then
        die "$file: missing libraries: $(grep 'not found' <<<"$libs" | tr -s ' \t\n' ' ')"
    fi
    while read -r lib; do
        case "$lib" in
        */ld-linux-x86-64.so.2) install -D -m 0755 "$lib" "$root/lib64/ld-linux-x86-64.so.2" ;;
        *) install -D -m 0755 "$lib" "$root/lib/x86_64-linux-gnu/$(basename "$lib")" ;;
        esac
    done < <(grep -oE '(=> )?/[^ ]+ \(0x' <<<"$libs" | sed -E 's/^=> //; s/ \(0x$//')
}

# cpio_pack DIR OUT: a newc archive of DIR, gzip -1.
cpio_pack() {
    (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | "$busybox" cpio -o -H newc 2>/dev/null) |
        gzip -1 >"$2"
}

# --- base initramfs -----------------------------------------------------------------

base_key=$(
    {
        echo "$release $kver ${userland_pkgs[*]} $MODULES"
        cat "${BASH_SOURCE[0]}" "$INIT_SCRIPT"
    } | sha
)
base="$CACHE_DIR/initramfs-base-$base_key.cpio.gz"
if [[ ! -f $base ]]; then
    log "building the base initramfs"
    root="$tmp/base"
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,root,etc/vgpu}
    install -m 0755 "$busybox" "$root/bin/busybox"
    for applet in $("$busybox" --list); do
        [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
    done
    # The kernel opens /dev/console for /init before devtmpfs is mounted.
    mknod -m 0600 "$root/dev/console" c 5 1 2>/dev/null || log "not root: no /dev/console node"
    install -m 0755 "$INIT_SCRIPT" "$root/init"

    install -D -m 0755 "$udir/root/usr/bin/lspci" "$root/usr/bin/lspci"
    copy_elf_deps "$root" "$root/usr/bin/lspci"
    install -D -m 0644 "$udir/root/usr/share/misc/pci.ids" "$root/usr/share/misc/pci.ids"

    # Modules: decompressed (busybox insmod reads plain .ko), in load order.
    declare -A ko_path=() loaded=()
    while read -r path; do
        name=$(basename "$path" .ko.xz)
        ko_path[${name//-/_}]=$path
    done < <(find "$kdir/root/lib/modules/$release/kernel" -name '*.ko.xz')
    mdir="$root/lib/modules/$release"
    mkdir -p "$mdir"
    add_module() {
        local mod=$1 dep depends
        [[ -z ${loaded[$mod]:-} ]] || return 0
        [[ -n ${ko_path[$mod]:-} ]] || die "module $mod not found in $release"
        loaded[$mod]=1
        xz -dc "${ko_path[$mod]}" >"$mdir/$mod.ko"
        depends=$(tr '\0' '\n' <"$mdir/$mod.ko" | LC_ALL=C sed -n 's/^depends=//p' | sed -n 1p)
        for dep in ${depends//,/ }; do
            add_module "${dep//-/_}"
        done
        echo "$mod" >>"$root/etc/vgpu/modules.load"
    }
    for mod in $MODULES; do
        add_module "${mod//-/_}"
    done
    touch "$root/etc/vgpu/modules.load"
    log "modules: $(tr '\n' ' ' <"$root/etc/vgpu/modules.load")"
    # Indexes for modprobe and lspci -k (libkmod), when the host has depmod.
    cp "$kdir/root/lib/modules/$release"/modules.{builtin,builtin.modinfo,order} "$mdir/"
    depmod=$(PATH="$PATH:/usr/sbin:/sbin" command -v depmod || true)
    if [[ -n $depmod ]]; then
        "$depmod" -b "$root" "$release"
    else
        log "no depmod on this host: no modules.dep in the initramfs"
    fi

    cpio_pack "$root" "$tmp/base.cpio.gz"
    mv "$tmp/base.cpio.gz" "$base"
fi

# --- extras and the final images ---------------------------------------------------

extras=()
[[ -z ${EXTRA:-} ]] || extras+=("$EXTRA:/")
extras+=("$@")

extras_key=$(
    for spec in "${extras[@]}"; do
        src=${spec%%:*}
        dst=${spec#*:}
        [[ $spec == *:/* && -e $src ]] || die "bad extra '$spec' (want SRC:/DST, SRC existing)"
        echo "$dst"
        tar -C "$(dirname "$src")" --sort=name --mtime=@0 --owner=0 --group=0 \
            -cf - "$(basename "$src")" | sha256sum
    done | sha
)
key=$(echo "$base_key $extras_key" | sha)
out="$CACHE_DIR/images-$key"

if [[ ! -f $out/.complete ]]; then
    rm -rf "$out"
    mkdir -p "$tmp/out"
    cp "$base" "$tmp/out/initramfs.img"
    if ((${#extras[@]})); then
        root="$tmp/extra"
        mkdir -p "$root"
        for spec in "${extras[@]}"; do
            src=${spec%%:*}
            dst=${spec#*:}
            if [[ -d $src ]]; then
                mkdir -p "$root$dst"
                cp -a "$src/." "$root$dst/"
            else
                mkdir -p "$(dirname "$root$dst")"
                cp -a "$src" "$root$dst"
            fi
        done
        while read -r file; do
            copy_elf_deps "$root" "$file"
        done < <(find "$root" -type f -perm -u+x)
        # Concatenated archives: the kernel unpacks them in order.
        cpio_pack "$root" "$tmp/extra.cpio.gz"
        cat "$tmp/extra.cpio.gz" >>"$tmp/out/initramfs.img"
    fi
    for f in "root/boot/vmlinuz-$release:vmlinuz" vmlinux:vmlinux; do
        [[ ! -f $kdir/${f%%:*} ]] ||
            cp -l "$kdir/${f%%:*}" "$tmp/out/${f#*:}" 2>/dev/null ||
            cp "$kdir/${f%%:*}" "$tmp/out/${f#*:}"
    done
    echo "$release" >"$tmp/out/kernel-release"
    printf '%s\n' "kernel $release $kver" "${extras[@]/#/extra }" >"$tmp/out/build-info"
    touch "$tmp/out/.complete"
    mv "$tmp/out" "$out"
    log "built $out ($(du -h "$out/initramfs.img" | cut -f1) initramfs)"
fi

# Keep the cache bounded: the newest few images and base archives.
prune() {
    find "$CACHE_DIR" -maxdepth 1 -name "$1" -printf '%T@ %p\n' | sort -rn |
        tail -n "+$(($2 + 1))" | cut -d' ' -f2- | xargs -r -d '\n' rm -rf
}
touch "$out" "$base"
prune 'images-????????????????' 10
prune 'initramfs-base-*.cpio.gz' 4
[[ ${LINK_CURRENT:-1} == 0 ]] || ln -sfn "$(basename "$out")" "$CACHE_DIR/images-current"

log "kernel $release (package $kver)"
log "headers $kdir/build"
echo "$out"
