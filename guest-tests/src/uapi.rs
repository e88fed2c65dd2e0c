//! The driver ioctls of the reference guest driver (DRM driver "vgpu"),
//! from guest-driver/vgpu_drm.h: its structs as `#[repr(C)]` types and its
//! ioctls through nix's macros. The test at the bottom compiles a C program
//! against the header and compares every size, offset, constant and ioctl
//! number with these, so the two cannot drift apart.

use std::mem::size_of;
use std::os::fd::RawFd;

use nix::errno::Errno;

use nix::{ioctl_none_bad, ioctl_read_bad, ioctl_readwrite_bad, request_code_none};
use nix::{request_code_read, request_code_readwrite};

/// DRM_VGPU_RINGS: ring 0 and 1 run concurrently.
pub const RINGS: u32 = 2;
/// DRM_VGPU_MAX_SUBMIT: commands per SUBMIT.
pub const MAX_SUBMIT: usize = 64;
/// DRM_VGPU_MAX_WAIT_MS: the longest WAIT_FENCE timeout.
pub const MAX_WAIT_MS: u32 = 60_000;
/// DRM_VGPU_BUF_MMAP_OFFSET: where the DMA buffer maps in the DRM file.
pub const BUF_MMAP_OFFSET: u64 = 0;

/// DRM_VGPU_IRQ_*: the interrupt mode the driver chose (`Info::irq_mode`).
pub const IRQ_INTX: u32 = 0;
pub const IRQ_MSI: u32 = 1;
pub const IRQ_MSIX: u32 = 2;

/// The name of an `irq_mode` value, as the tests print it.
pub fn irq_name(mode: u32) -> &'static str {
    match mode {
        IRQ_INTX => "INTx",
        IRQ_MSI => "MSI",
        IRQ_MSIX => "MSI-X",
        _ => "?",
    }
}

/// struct drm_vgpu_info (INFO).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Info {
    pub vram_size: u64,
    pub vram_bus_addr: u64,
    pub buf_size: u64,
    pub buf_bus_addr: u64,
    pub engine_irqs: u64,
    pub fault_irqs: u64,
    pub vblank_irqs: u64,
    pub flip_irqs: u64,
    pub hotplug_irqs: u64,
    pub partition: u32,
    pub irq_mode: u32,
    pub ring_entries: u32,
    pub caps: u32,
}

/// struct drm_vgpu_submit (SUBMIT): `cmds` points at `count` 64-byte
/// commands; `fence` comes back.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Submit {
    pub cmds: u64,
    pub count: u32,
    pub ring: u32,
    pub fence: u64,
}

/// struct drm_vgpu_wait (WAIT_FENCE): the fault fields come back with EIO.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Wait {
    pub fence: u64,
    pub ring: u32,
    pub timeout_ms: u32,
    pub fault_status: u32,
    pub reserved: u32,
    pub fault_addr: u64,
}

/// struct drm_vgpu_gem_vram (GEM_VRAM): pin a GEM object in VRAM (its
/// offset comes back) or unpin it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GemVram {
    pub handle: u32,
    pub flags: u32,
    pub offset: u64,
}

/// DRM_VGPU_GEM_VRAM_PIN.
pub const GEM_VRAM_PIN: u32 = 1;

/// DRM_IOCTL_BASE: every DRM ioctl's type byte.
pub const DRM_IOCTL_BASE: u8 = b'd';
/// DRM_COMMAND_BASE: the first driver ioctl number.
pub const DRM_COMMAND_BASE: u8 = 0x40;
/// DRM_VGPU_*: the driver's ioctls, from DRM_COMMAND_BASE.
pub const VGPU_INFO: u8 = 0x00;
pub const VGPU_SUBMIT: u8 = 0x01;
pub const VGPU_WAIT_FENCE: u8 = 0x02;
pub const VGPU_RESET: u8 = 0x03;
pub const VGPU_GEM_VRAM: u8 = 0x04;

// The numbers are constants (not hidden inside `ioctl_read!` & co.) so that
// the layout test can compare them with the header's; the `_bad` macros
// then wrap exactly these numbers. (The casts: nix's number type is c_ulong
// on glibc but c_int on musl.)
#[allow(clippy::unnecessary_cast)]
pub const IOCTL_INFO: u64 = request_code_read!(
    DRM_IOCTL_BASE,
    DRM_COMMAND_BASE + VGPU_INFO,
    size_of::<Info>()
) as u64;
#[allow(clippy::unnecessary_cast)]
pub const IOCTL_SUBMIT: u64 = request_code_readwrite!(
    DRM_IOCTL_BASE,
    DRM_COMMAND_BASE + VGPU_SUBMIT,
    size_of::<Submit>()
) as u64;
#[allow(clippy::unnecessary_cast)]
pub const IOCTL_WAIT_FENCE: u64 = request_code_readwrite!(
    DRM_IOCTL_BASE,
    DRM_COMMAND_BASE + VGPU_WAIT_FENCE,
    size_of::<Wait>()
) as u64;
#[allow(clippy::unnecessary_cast)]
pub const IOCTL_GEM_VRAM: u64 = request_code_readwrite!(
    DRM_IOCTL_BASE,
    DRM_COMMAND_BASE + VGPU_GEM_VRAM,
    size_of::<GemVram>()
) as u64;
#[allow(clippy::unnecessary_cast)]
pub const IOCTL_RESET: u64 =
    request_code_none!(DRM_IOCTL_BASE, DRM_COMMAND_BASE + VGPU_RESET) as u64;

ioctl_read_bad!(
    /// DRM_IOCTL_VGPU_INFO.
    info,
    IOCTL_INFO,
    Info
);
ioctl_readwrite_bad!(
    /// DRM_IOCTL_VGPU_SUBMIT.
    submit,
    IOCTL_SUBMIT,
    Submit
);
ioctl_readwrite_bad!(
    /// DRM_IOCTL_VGPU_WAIT_FENCE.
    wait_fence,
    IOCTL_WAIT_FENCE,
    Wait
);
ioctl_none_bad!(
    /// DRM_IOCTL_VGPU_RESET.
    reset,
    IOCTL_RESET
);
ioctl_readwrite_bad!(
    /// DRM_IOCTL_VGPU_GEM_VRAM.
    gem_vram_raw,
    IOCTL_GEM_VRAM,
    GemVram
);

/// GEM_VRAM on the DRM file `fd`: pin GEM object `handle` in VRAM (its
/// offset there), or unpin it (0).
pub fn gem_vram(fd: RawFd, handle: u32, pin: bool) -> Result<u64, Errno> {
    let mut g = GemVram {
        handle,
        flags: if pin { GEM_VRAM_PIN } else { 0 },
        offset: 0,
    };
    // SAFETY: the ioctl reads and writes only `g`, which outlives the call;
    // on a file that is not ours it fails.
    unsafe { gem_vram_raw(fd, &mut g) }?;
    Ok(g.offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;
    use std::path::{Path, PathBuf};
    use std::process::Command as Cmd;
    use vdevice::command::{Command, Loc, COMMAND_BYTES};

    /// Byte offset of the little-endian `v` inside an encoded command.
    fn offset_in(cmd: &[u8; COMMAND_BYTES], v: u64) -> usize {
        cmd.windows(8)
            .position(|w| w == v.to_le_bytes())
            .expect("value in the command")
    }

    /// (C expression, the Rust side's value) for everything the header fixes.
    fn rust_side() -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = Vec::new();
        let mut size = |c: &str, n: usize| v.push((format!("sizeof(struct {c})"), n as u64));
        size("drm_vgpu_info", size_of::<Info>());
        size("drm_vgpu_submit", size_of::<Submit>());
        size("drm_vgpu_wait", size_of::<Wait>());
        size("drm_vgpu_gem_vram", size_of::<GemVram>());
        size("drm_vgpu_cmd", COMMAND_BYTES);
        macro_rules! fields {
            ($c:literal, $t:ty, $($f:ident),+) => {
                $(v.push((
                    format!("offsetof(struct {}, {})", $c, stringify!($f)),
                    offset_of!($t, $f) as u64,
                ));)+
            };
        }
        fields!(
            "drm_vgpu_info",
            Info,
            vram_size,
            vram_bus_addr,
            buf_size,
            buf_bus_addr,
            engine_irqs,
            fault_irqs,
            vblank_irqs,
            flip_irqs,
            hotplug_irqs,
            partition,
            irq_mode,
            ring_entries,
            caps
        );
        fields!("drm_vgpu_submit", Submit, cmds, count, ring, fence);
        fields!("drm_vgpu_gem_vram", GemVram, handle, flags, offset);
        fields!(
            "drm_vgpu_wait",
            Wait,
            fence,
            ring,
            timeout_ms,
            fault_status,
            reserved,
            fault_addr
        );
        // The command layout as vdevice's encoder writes it.
        let copy = Command::copy(
            Loc::Vram(0x1111_2222_3333_4400),
            Loc::Vram(0x5555_6666_7777_8800),
            0x0999_aaaa_bbbb_cc00,
        )
        .encode();
        let fence = Command::fence(Loc::Vram(0), 0x0ddd_eeee_ffff_0100, true).encode();
        for (f, at) in [
            ("opcode", 0),
            ("flags", 1),
            ("dst", offset_in(&copy, 0x1111_2222_3333_4400)),
            ("src", offset_in(&copy, 0x5555_6666_7777_8800)),
            ("len", offset_in(&copy, 0x0999_aaaa_bbbb_cc00)),
            ("value", offset_in(&fence, 0x0ddd_eeee_ffff_0100)),
        ] {
            v.push((format!("offsetof(struct drm_vgpu_cmd, {f})"), at as u64));
        }
        // FILL_RECT's and BLIT's rectangle (SPEC.md, the display head).
        for (f, at) in [
            ("width", 40u64),
            ("height", 44),
            ("dst_pitch", 48),
            ("src_pitch", 52),
        ] {
            v.push((format!("offsetof(struct drm_vgpu_cmd, {f})"), at));
        }
        for (c, n) in [
            ("DRM_VGPU_RINGS", RINGS as u64),
            ("DRM_VGPU_MAX_SUBMIT", MAX_SUBMIT as u64),
            ("DRM_VGPU_MAX_WAIT_MS", MAX_WAIT_MS as u64),
            ("DRM_VGPU_BUF_MMAP_OFFSET", BUF_MMAP_OFFSET),
            ("DRM_VGPU_IRQ_INTX", IRQ_INTX as u64),
            ("DRM_VGPU_IRQ_MSI", IRQ_MSI as u64),
            ("DRM_VGPU_IRQ_MSIX", IRQ_MSIX as u64),
            ("DRM_VGPU_INFO", VGPU_INFO as u64),
            ("DRM_VGPU_SUBMIT", VGPU_SUBMIT as u64),
            ("DRM_VGPU_WAIT_FENCE", VGPU_WAIT_FENCE as u64),
            ("DRM_VGPU_RESET", VGPU_RESET as u64),
            ("DRM_VGPU_GEM_VRAM", VGPU_GEM_VRAM as u64),
            ("DRM_VGPU_GEM_VRAM_PIN", GEM_VRAM_PIN as u64),
            ("DRM_IOCTL_VGPU_GEM_VRAM", IOCTL_GEM_VRAM),
            ("DRM_IOCTL_VGPU_INFO", IOCTL_INFO),
            ("DRM_IOCTL_VGPU_SUBMIT", IOCTL_SUBMIT),
            ("DRM_IOCTL_VGPU_WAIT_FENCE", IOCTL_WAIT_FENCE),
            ("DRM_IOCTL_VGPU_RESET", IOCTL_RESET),
        ] {
            v.push((c.to_string(), n));
        }
        v
    }

    /// The values of `exprs` as a C compiler sees them with the header
    /// included; None when there is no C compiler.
    fn c_side(header_dir: &Path, exprs: &[String]) -> Option<Vec<u64>> {
        let dir = std::env::temp_dir().join(format!("vgpu-uapi-layout-{}", std::process::id()));
        // The few lines of the kernel's uapi <drm/drm.h> the header uses
        // (fixed ABI; the kernel's drm.h is not among the host's headers).
        std::fs::create_dir_all(dir.join("drm")).expect("temp dir");
        std::fs::write(
            dir.join("drm/drm.h"),
            "#include <linux/ioctl.h>\n#include <linux/types.h>\n\
             #define DRM_IOCTL_BASE 'd'\n\
             #define DRM_IO(nr) _IO(DRM_IOCTL_BASE, nr)\n\
             #define DRM_IOR(nr, type) _IOR(DRM_IOCTL_BASE, nr, type)\n\
             #define DRM_IOWR(nr, type) _IOWR(DRM_IOCTL_BASE, nr, type)\n\
             #define DRM_COMMAND_BASE 0x40\n",
        )
        .expect("write drm.h");
        let mut src = String::from(
            "#include <stdio.h>\n#include <stddef.h>\n#include \"vgpu_drm.h\"\n\
             int main(void)\n{\n",
        );
        for e in exprs {
            src += &format!("\tprintf(\"%llu\\n\", (unsigned long long)({e}));\n");
        }
        src += "\treturn 0;\n}\n";
        let (c, exe) = (dir.join("layout.c"), dir.join("layout"));
        std::fs::write(&c, src).expect("write layout.c");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let built = match Cmd::new(&cc)
            .arg("-Wall")
            .arg("-Werror")
            .arg("-I")
            .arg(header_dir)
            .arg("-I")
            .arg(&dir)
            .arg("-o")
            .arg(&exe)
            .arg(&c)
            .output()
        {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("{cc}: {e}"),
            Ok(out) => out,
        };
        assert!(
            built.status.success(),
            "{cc} failed on the header:\n{}",
            String::from_utf8_lossy(&built.stderr)
        );
        let out = Cmd::new(&exe).output().expect("run the layout program");
        let _ = std::fs::remove_dir_all(&dir);
        let text = String::from_utf8(out.stdout).expect("utf-8");
        Some(text.lines().map(|l| l.parse().expect("number")).collect())
    }

    #[test]
    fn rust_uapi_matches_the_c_header() {
        let header_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("guest-driver");
        let rust = rust_side();
        let exprs: Vec<String> = rust.iter().map(|(e, _)| e.clone()).collect();
        let Some(c) = c_side(&header_dir, &exprs) else {
            eprintln!("SKIPPED rust_uapi_matches_the_c_header: no C compiler (cc, or $CC) found");
            return;
        };
        assert_eq!(c.len(), rust.len(), "the C program printed too few values");
        let wrong: Vec<String> = rust
            .iter()
            .zip(&c)
            .filter(|((_, r), c)| r != *c)
            .map(|((e, r), c)| format!("{e}: C {c:#x}, Rust {r:#x}"))
            .collect();
        assert!(wrong.is_empty(), "uapi drift:\n{}", wrong.join("\n"));
    }
}
