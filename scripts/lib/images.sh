# shellcheck shell=bash
# images.sh - the steps of build-images.sh, one job each: package versions,
# download, the kernel (vmlinux out of vmlinuz), the userland, the modules
# with their dependencies, ELF libraries, cpio archives. Sourced after
# lib/host.sh; the caller provides $TMP_DIR (scratch space in the cache).

# shellcheck disable=SC2034 # KERNEL_* are read by the sourcing script

# Package versions from one apt-cache call (each takes seconds here: apt's
# pkgcache is disabled), remembered per set of packages until the apt lists
# change. Prints the file: "kernel <Depends of linux-image-amd64 in
# bookworm-backports>" and "<pkg>=<ver>" lines for the packages named.
package_versions() {
    local lists_key versions
    lists_key=$(stat -c '%n %Y' /var/lib/apt/lists/*_Packages* 2>/dev/null | short_hash)
    versions="$CACHE_DIR/.versions-$lists_key-$(echo "$*" | short_hash)"
    if [[ ! -s $versions ]]; then
        find "$CACHE_DIR" -maxdepth 1 -name '.versions-*' ! -name ".versions-$lists_key-*" -delete
        apt-cache show --no-all-versions linux-image-amd64/bookworm-backports "$@" 2>/dev/null |
            awk '/^Package:/ { pkg = $2 }
                 /^Version:/ && pkg != "linux-image-amd64" { print pkg "=" $2 }
                 /^Depends:/ && pkg == "linux-image-amd64" { print "kernel " $0 }' \
                >"$TMP_DIR/versions" || true
        mv "$TMP_DIR/versions" "$versions"
    fi
    echo "$versions"
}

# kernel_version VERSIONS: sets KERNEL_ABI (6.12.95+deb12) and KERNEL_PKG_VERSION
# (6.12.95-1~bpo12+1), from $KERNEL_VERSION when set.
kernel_version() {
    if [[ -n ${KERNEL_VERSION:-} ]]; then
        KERNEL_PKG_VERSION=$KERNEL_VERSION
        KERNEL_ABI="${KERNEL_VERSION%%-*}+deb12"
    elif [[ $(grep '^kernel ' "$1") =~ linux-image-(6\.12\.[^ ]+)-amd64\ \(=\ ([^\)]+)\) ]]; then
        KERNEL_ABI=${BASH_REMATCH[1]}
        KERNEL_PKG_VERSION=${BASH_REMATCH[2]}
    else
        rm -f "$1"
        die "no 6.12 kernel in bookworm-backports (run scripts/setup-host.sh or apt-get update)"
    fi
}

# pinned_packages VERSIONS PKG...: "PKG=VERSION" for each PKG.
pinned_packages() {
    local versions=$1 pkg
    shift
    for pkg in "$@"; do
        grep "^$pkg=" "$versions" || {
            rm -f "$versions"
            die "package $pkg not found (apt-get update?)"
        }
    done
}

# download DIR PKG=VER...: fetch the packages and extract them into DIR/root.
download() {
    local dir=$1 deb
    shift
    mkdir -p "$dir"
    (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "$@" >&2) ||
        die "apt-get download $* failed"
    for deb in "$dir"/*.deb; do
        dpkg-deb -x "$deb" "$dir/root"
    done
    rm -f "$dir"/*.deb
}

# fetch_packages NAME PKG...: the packages (their candidate versions)
# unpacked in $CACHE_DIR/NAME-<key>/root, fetched once; prints that
# directory.
fetch_packages() {
    local name=$1 versions dir
    shift
    versions=$(package_versions "$@")
    local pkgs=()
    mapfile -t pkgs < <(pinned_packages "$versions" "$@")
    dir="$CACHE_DIR/$name-$(printf '%s\n' "${pkgs[@]}" | short_hash)"
    if [[ ! -f $dir/.complete ]]; then
        log "fetching ${pkgs[*]}"
        unpack_packages "$dir" "${pkgs[@]}"
        touch "$dir/.complete"
    fi
    echo "$dir"
}

# unpack_packages DIR PKG=VER...: DIR/root holds the packages' files (and
# nothing else).
unpack_packages() {
    local dir=$1
    shift
    rm -rf "$dir" "$TMP_DIR/download"
    download "$TMP_DIR/download" "$@"
    mkdir -p "$dir"
    mv "$TMP_DIR/download/root" "$dir/root"
}

is_elf() {
    [[ $(head -c4 "$1" | od -An -tx1 | tr -d ' ') == 7f454c46 ]]
}

# extract_vmlinux VMLINUZ OUT: the ELF kernel inside a bzImage, as the
# kernel's scripts/extract-vmlinux does it (Debian's headers and kbuild
# packages do not ship that script): find the payload's compression magic,
# decompress from there. Debian's x86 kernels are zstd-compressed.
extract_vmlinux() {
    local offset
    offset=$(LC_ALL=C grep -abo $'\x28\xb5\x2f\xfd' "$1" | sed -n 1p | cut -d: -f1)
    [[ -n $offset ]] || return 1
    tail -c "+$((offset + 1))" "$1" | zstd -dcq >"$2" 2>/dev/null || true
    is_elf "$2"
}

# prepare_kernel KDIR RELEASE: after the packages are unpacked into
# KDIR/root: the headers' build tree, vmlinuz and (for a PVH boot, which
# skips decompression) vmlinux.
prepare_kernel() {
    local kdir=$1 release=$2 headers
    headers="$kdir/root/usr/src/linux-headers-$release"
    # The headers' Makefile includes the -common tree by absolute path.
    sed -i "s|^include /usr/src/|include $kdir/root/usr/src/|" "$headers/Makefile"
    ln -sfn "root/usr/src/linux-headers-$release" "$kdir/build"
    ln -sfn "root/boot/vmlinuz-$release" "$kdir/vmlinuz"
    if ! extract_vmlinux "$kdir/vmlinuz" "$kdir/vmlinux" ||
        ! grep -qx 'CONFIG_PVH=y' "$kdir/root/boot/config-$release"; then
        log "no PVH-bootable vmlinux inside vmlinuz; using vmlinuz only"
        rm -f "$kdir/vmlinux"
    fi
    echo "$release" >"$kdir/kernel-release"
}

# build_vfio_ko KDIR RELEASE PKG_VERSION: prints the path of a vfio.ko
# rebuilt from Debian's own source of this kernel with CONFIG_IOMMUFD_DRIVER,
# i.e. with the real iova_bitmap (linked into vfio.ko) instead of the stubs
# Debian's config leaves there. Without it VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT
# fails with EOPNOTSUPP before any driver's log_ops is called, so no VFIO
# device can offer DMA dirty logging and QEMU's enable-migration=auto refuses
# to migrate it. Debian sets the option only through the variant drivers that
# select it (mlx5, pds), which it does not build. The exports are checked
# against the kernel's Module.symvers, so the other VFIO modules and ours
# load unchanged. Cached in $CACHE_DIR/vfio-ko-<key>/, with its
# Module.symvers (KBUILD_EXTRA_SYMBOLS for modules calling iova_bitmap_set).
build_vfio_ko() {
    local kdir=$1 release=$2 kver=$3 key out work src upstream
    upstream=${kver%%-*}
    key=$(printf '%s\n' "$release $kver" "$(declare -f build_vfio_ko)" | short_hash)
    out="$CACHE_DIR/vfio-ko-$key"
    if [[ ! -f $out/.complete ]]; then
        log "rebuilding vfio.ko for $release with CONFIG_IOMMUFD_DRIVER (Debian source linux=$kver)"
        work="$TMP_DIR/vfio-ko"
        rm -rf "$work" "$out"
        mkdir -p "$work/dl" "$work/mod"
        # apt checks the .dsc's signature chain and the tarballs' checksums.
        (cd "$work/dl" && apt-get source --download-only -q -o APT::Sandbox::User=root \
            "linux=$kver" >&2) || die "apt-get source linux=$kver failed"
        # Debian's patches must leave these files alone, or the upstream
        # tarball alone would not be this kernel's source.
        if tar -xJOf "$work/dl"/linux_*.debian.tar.xz --wildcards 'debian/patches/*' |
            grep -E '^\+\+\+ [^ ]*/(drivers/vfio/[^/]+|drivers/iommu/iommufd/iova_bitmap\.c|include/linux/(vfio|iova_bitmap)\.h)\b'; then
            die "Debian patches touch the VFIO core: the rebuild would differ from the shipped module"
        fi
        src="linux-$upstream"
        tar -xJf "$work/dl/linux_$upstream.orig.tar.xz" -C "$work" --wildcards \
            "$src/drivers/vfio/*.[ch]" "$src/drivers/vfio/Makefile" \
            "$src/drivers/iommu/iommufd/iova_bitmap.c" ||
            die "linux_$upstream.orig.tar.xz lacks the VFIO core"
        find "$work/$src/drivers/vfio" -maxdepth 1 -type f -name '*.[ch]' -exec cp -t "$work/mod" {} +
        cp "$work/$src/drivers/iommu/iommufd/iova_bitmap.c" "$work/mod/"
        # vfio.o's lines of the Makefile only, not the subdirectories'.
        {
            grep -E '^(obj-\$\(CONFIG_VFIO\) \+= vfio\.o|vfio-)' "$work/$src/drivers/vfio/Makefile"
            echo 'vfio-y += iova_bitmap.o'
            echo 'ccflags-y += -DCONFIG_IOMMUFD_DRIVER=1'
        } >"$work/mod/Makefile"
        make -C "$kdir/build" M="$work/mod" -j"$(nproc)" modules >"$work/build.log" 2>&1 || {
            tail -n 30 "$work/build.log" >&2
            die "vfio.ko rebuild failed"
        }
        # Same exports, same CRCs as the shipped vfio.ko (plus iova_bitmap's).
        if ! diff <(awk '$3 ~ /drivers\/vfio\/vfio$/ { print $1, $2 }' "$kdir/build/Module.symvers" | sort) \
            <(awk '$3 ~ /\/vfio$/ && $2 !~ /^iova_bitmap_/ { print $1, $2 }' "$work/mod/Module.symvers" | sort) >&2; then
            die "the rebuilt vfio.ko's exports differ from the kernel's Module.symvers"
        fi
        [[ $(modinfo -F vermagic "$work/mod/vfio.ko") == "$(modinfo -F vermagic "$kdir/root/lib/modules/$release/kernel/drivers/vfio/vfio.ko.xz")" ]] ||
            die "the rebuilt vfio.ko's vermagic differs from the kernel's"
        mkdir -p "$TMP_DIR/vfio-ko-out"
        install -m 0644 "$work/mod/vfio.ko" "$work/mod/Module.symvers" "$TMP_DIR/vfio-ko-out/"
        touch "$TMP_DIR/vfio-ko-out/.complete"
        mv "$TMP_DIR/vfio-ko-out" "$out"
        rm -rf "$work"
    fi
    echo "$out/vfio.ko"
}

# copy_elf_deps ROOT FILE LIBDIR...: copy the shared libraries FILE needs
# into ROOT, looking in LIBDIRs first.
copy_elf_deps() {
    local root=$1 file=$2 libs lib search
    shift 2
    is_elf "$file" || return 0
    search=$(IFS=:; echo "$*")
    libs=$(LD_LIBRARY_PATH="$search" ldd "$file" 2>/dev/null) || return 0 # static
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

# cpio_pack BUSYBOX DIR OUT: a newc archive of DIR, gzip -1.
cpio_pack() {
    (cd "$2" && find . -mindepth 1 | LC_ALL=C sort | "$1" cpio -o -H newc 2>/dev/null) |
        gzip -1 >"$3"
}

# add_modules ROOT KMODDIR RELEASE MODULE...: the modules, decompressed
# (busybox insmod reads plain .ko), into ROOT/lib/modules/RELEASE with
# their dependencies (modinfo -F depends), listed in load order in
# ROOT/etc/vgpu/modules.load; the module indexes for modprobe and lspci -k.
# A plain .ko named in MODULE_OVERRIDES (paths) replaces the kernel's module
# of the same name.
add_modules() {
    local root=$1 kmod=$2 release=$3 mdir path mod
    shift 3
    local -A ko_path=() added=()
    mdir="$root/lib/modules/$release"
    mkdir -p "$mdir" "$root/etc/vgpu"
    while read -r path; do
        mod=$(basename "$path" .ko.xz)
        ko_path[${mod//-/_}]=$path
    done < <(find "$kmod/kernel" -name '*.ko.xz')
    for path in "${MODULE_OVERRIDES[@]}"; do
        mod=$(basename "$path" .ko)
        ko_path[${mod//-/_}]=$path
    done
    add_module() {
        local mod=${1//-/_} dep
        [[ -z ${added[$mod]:-} ]] || return 0
        [[ -n ${ko_path[$mod]:-} ]] || die "module $mod not found in $release"
        added[$mod]=1
        for dep in $(modinfo -F depends "${ko_path[$mod]}" | tr ',' ' '); do
            add_module "$dep"
        done
        case ${ko_path[$mod]} in
        *.xz) xz -dc "${ko_path[$mod]}" >"$mdir/$mod.ko" ;;
        *) install -m 0644 "${ko_path[$mod]}" "$mdir/$mod.ko" ;;
        esac
        echo "$mod" >>"$root/etc/vgpu/modules.load"
    }
    for mod in "$@"; do
        add_module "$mod"
    done
    touch "$root/etc/vgpu/modules.load"
    log "modules: $(tr '\n' ' ' <"$root/etc/vgpu/modules.load")"
    cp "$kmod"/modules.{builtin,builtin.modinfo,order} "$mdir/"
    depmod -b "$root" "$release"
}

# add_extras ROOT SRC:DST...: files and directories into ROOT.
add_extras() {
    local root=$1 spec src dst file
    shift
    for spec in "$@"; do
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
}

# extras_key SRC:DST...: a hash of the extras' destinations and contents.
extras_key() {
    local spec src
    for spec in "$@"; do
        src=${spec%%:*}
        [[ $spec == *:/* && -e $src ]] || die "bad extra '$spec' (want SRC:/DST, SRC existing)"
        echo "${spec#*:}"
        tar -C "$(dirname "$src")" --sort=name --mtime=@0 --owner=0 --group=0 \
            -cf - "$(basename "$src")" | sha256sum
    done | short_hash
}
