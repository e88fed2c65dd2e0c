#!/usr/bin/env bash
# setup-host.sh - prepare this Debian 12 machine (as root) to build the patched
# QEMU and the images: apt sources, build dependencies, firmware and a meson venv.
# Idempotent; a second run with an unchanged script takes a second or two.
set -euo pipefail
# shellcheck source=scripts/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"

export DEBIAN_FRONTEND=noninteractive

VENV_DIR="$CACHE_DIR/venv"
# QEMU 10.0's python/scripts/mkvenv.py accepts meson >= 1.5.0 (pythondeps.toml).
MESON_VERSION="1.5.2"

SOURCES_DIR=/etc/apt/sources.list.d
PREFS_DIR=/etc/apt/preferences.d

PACKAGES=(
    # apt-get source and patching; rsync syncs the patched source into the
    # persistent build tree by content (scripts/qemu-build-lib.sh)
    dpkg-dev git patch rsync ca-certificates
    # a minimal x86_64-softmmu QEMU build
    build-essential ninja-build pkg-config python3 python3-venv flex bison
    libglib2.0-dev libfdt-dev libpixman-1-dev zlib1g-dev libslirp-dev
    # firmware for -L (bios, option roms, kvmvapic, linuxboot_dma)
    seabios ipxe-qemu qemu-system-data
    # images and the L1 guest's tools (kmod: modinfo and depmod for the
    # images' modules; zstd: vmlinux out of vmlinuz)
    busybox-static pciutils mdevctl cpio xz-utils kmod zstd
    # the host driver build (BTF for modules needs pahole)
    dwarves
    # test-libvirt's Debian L1 (build-distro-image.sh): the root file system
    # from Debian's archive, an ext4 image of it, a qcow2 disk
    mmdebstrap e2fsprogs qemu-utils
    # bindgen (the trace plugin's bindings to qemu-plugin.h) needs libclang
    libclang-dev
    # script hygiene
    shellcheck
)

[[ $(id -u) -eq 0 ]] || die "must run as root"

mkdir -p "$CACHE_DIR"
script_hash=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
stamp="$CACHE_DIR/setup-host.$script_hash.stamp"

packages_installed() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null) ||
        return 1
    ! grep -qv '^ii' <<<"$status"
}

if [[ -f "$stamp" ]] && packages_installed && [[ -x "$VENV_DIR/bin/meson" ]]; then
    log "already done ($stamp)"
    exit 0
fi

sources_changed=0

# write_if_changed PATH: replace PATH with stdin when the content differs.
write_if_changed() {
    local path=$1 tmp
    tmp=$(mktemp)
    cat >"$tmp"
    if [[ -f "$path" ]] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
        return 0
    fi
    install -m 0644 "$tmp" "$path"
    rm -f "$tmp"
    log "wrote $path"
    sources_changed=1
}

# bookworm-backports: the 6.12 kernel for the L1 guest (backports are pinned
# at 100 by their Release file, so nothing is pulled from it unasked), and
# its source, from which build-images.sh rebuilds vfio.ko.
write_if_changed "$SOURCES_DIR/vgpu-dev-bookworm-backports.sources" <<'EOF'
Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# trixie: for `apt-get source -t trixie qemu` (QEMU 10.0.x). apt accepts -t
# only for a release that has binary lists too, hence the `deb`; the pin
# below keeps every binary package on bookworm.
write_if_changed "$SOURCES_DIR/vgpu-dev-trixie.sources" <<'EOF'
Types: deb deb-src
Architectures: amd64
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# Nothing is installed or upgraded from trixie unless named explicitly.
write_if_changed "$PREFS_DIR/vgpu-dev-trixie" <<'EOF'
Package: *
Pin: release n=trixie
Pin-Priority: 50
EOF

lists_missing=0
for pattern in '*_dists_bookworm-backports_*Packages*' '*_dists_bookworm-backports_*Sources*' \
    '*_dists_trixie_*Packages*' '*_dists_trixie_*Sources*'; do
    if ! compgen -G "/var/lib/apt/lists/$pattern" >/dev/null; then
        lists_missing=1
    fi
done

# Older revisions of this script wrote a deb-src-only file.
if [[ -e "$SOURCES_DIR/vgpu-dev-trixie-src.sources" ]]; then
    rm -f "$SOURCES_DIR/vgpu-dev-trixie-src.sources"
    sources_changed=1
fi

if ((sources_changed || lists_missing)); then
    log "apt-get update"
    apt-get update -q
fi

if ! packages_installed; then
    log "installing packages"
    apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
fi

if ! "$VENV_DIR/bin/meson" --version 2>/dev/null | grep -qx "$MESON_VERSION"; then
    log "meson $MESON_VERSION into $VENV_DIR"
    # Debian's python, not whatever python3 is first on PATH (pyenv shims).
    /usr/bin/python3 -m venv "$VENV_DIR"
    "$VENV_DIR/bin/pip" install -q --disable-pip-version-check "meson==$MESON_VERSION"
fi

rm -f "$CACHE_DIR"/setup-host.*.stamp
touch "$stamp"
log "done"
