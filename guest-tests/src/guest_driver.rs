//! A client of the reference guest driver (vgpu_guest.ko, DRM driver
//! "vgpu"): its driver ioctls on the DRM render node as methods, and the DMA
//! buffer it lets user space mmap there.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;

use memmap2::{MmapOptions, MmapRaw};
use nix::errno::Errno;
use vdevice::command::{Command, COMMAND_BYTES};
use vdevice::regs::{self, RegId};

use crate::checks::{describe_fault, Window};
use crate::uapi::{self, Info, Submit, Wait};
use crate::{Bar, PciDev};

/// How long `Vgpu::run` waits for a fence.
pub const WAIT_MS: u32 = 30_000;

/// A failed WAIT_FENCE; the fault fields are meaningful with EIO only.
#[derive(Debug)]
pub struct WaitError {
    pub errno: Errno,
    pub status: u32,
    pub addr: u64,
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errno == Errno::EIO {
            write!(f, "EIO ({})", describe_fault(self.status, self.addr))
        } else {
            write!(f, "{:?}", self.errno)
        }
    }
}

/// The vGPU's DRM render node, /dev/dri/renderDN.
pub struct Vgpu {
    pub file: File,
}

impl Vgpu {
    pub fn open(path: &str) -> Result<Self, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("open {path}: {e}"))?;
        Ok(Self { file })
    }

    fn fd(&self) -> i32 {
        self.file.as_raw_fd()
    }

    pub fn info(&self) -> Result<Info, String> {
        let mut i = Info::default();
        // SAFETY: our open fd and an Info that lives across the call.
        unsafe { uapi::info(self.fd(), &mut i) }.map_err(|e| format!("INFO: {e:?}"))?;
        Ok(i)
    }

    /// SUBMIT raw commands to `ring`; the fence the driver appended.
    pub fn submit_raw(&self, ring: u32, cmds: &[[u8; COMMAND_BYTES]]) -> Result<u64, Errno> {
        assert!(!cmds.is_empty() && cmds.len() <= uapi::MAX_SUBMIT);
        let mut s = Submit {
            cmds: cmds.as_ptr() as u64,
            count: cmds.len() as u32,
            ring,
            fence: 0,
        };
        // SAFETY: `s.cmds` points at `count` commands that outlive the call.
        unsafe { uapi::submit(self.fd(), &mut s) }?;
        Ok(s.fence)
    }

    pub fn submit(&self, ring: u32, cmds: &[Command]) -> Result<u64, Errno> {
        let raw: Vec<[u8; COMMAND_BYTES]> = cmds.iter().map(Command::encode).collect();
        self.submit_raw(ring, &raw)
    }

    /// WAIT_FENCE: until `ring` signalled `fence`, or `timeout_ms` passed.
    pub fn wait(&self, ring: u32, fence: u64, timeout_ms: u32) -> Result<(), WaitError> {
        let mut w = Wait {
            fence,
            ring,
            timeout_ms,
            ..Wait::default()
        };
        // SAFETY: our open fd and a Wait that lives across the call.
        match unsafe { uapi::wait_fence(self.fd(), &mut w) } {
            Ok(_) => Ok(()),
            Err(errno) => Err(WaitError {
                errno,
                status: w.fault_status,
                addr: w.fault_addr,
            }),
        }
    }

    pub fn reset(&self) -> Result<(), String> {
        // SAFETY: RESET takes no argument.
        unsafe { uapi::reset(self.fd()) }
            .map(drop)
            .map_err(|e| format!("RESET: {e:?}"))
    }

    /// Submit and wait for the batch's fence.
    pub fn run(&self, ring: u32, cmds: &[Command]) -> Result<u64, String> {
        let f = self
            .submit(ring, cmds)
            .map_err(|e| format!("SUBMIT ring {ring}: {e:?}"))?;
        self.wait(ring, f, WAIT_MS)
            .map_err(|e| format!("fence {f} ring {ring}: {e}"))?;
        Ok(f)
    }

    /// mmap `len` bytes of the DMA buffer at `offset` (the driver refuses
    /// anything but BUF_MMAP_OFFSET and at most `buf_size`).
    pub fn map(&self, offset: u64, len: usize) -> std::io::Result<MmapRaw> {
        MmapOptions::new()
            .offset(offset)
            .len(len)
            .map_raw(&self.file)
    }
}

/// The driver's DMA buffer as mmap'ed from the DRM node (the device writes it
/// behind our back, so every access is a raw copy, never a reference).
pub struct DmaBuf {
    map: MmapRaw,
    len: usize,
    bus: u64,
}

impl DmaBuf {
    /// The whole buffer the driver describes in `info`.
    pub fn map(gpu: &Vgpu, info: &Info) -> Result<Self, String> {
        let len = info.buf_size as usize;
        let map = gpu
            .map(0, len)
            .map_err(|e| format!("mmap DMA buffer: {e}"))?;
        Ok(Self {
            map,
            len,
            bus: info.buf_bus_addr,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn at(&self, off: usize, n: usize) -> *mut u8 {
        assert!(
            off + n <= self.len,
            "DMA buffer access beyond {:#x}",
            self.len
        );
        // SAFETY: bounds checked above.
        unsafe { self.map.as_mut_ptr().add(off) }
    }

    pub fn write(&self, off: usize, data: &[u8]) {
        let p = self.at(off, data.len());
        // SAFETY: in bounds of our mapping.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) }
    }

    pub fn read(&self, off: usize, buf: &mut [u8]) {
        let p = self.at(off, buf.len());
        // SAFETY: in bounds of our mapping.
        unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) }
    }

    /// The little-endian u64 at `off` (8-aligned).
    pub fn get(&self, off: usize) -> u64 {
        let p = self.at(off, 8) as *const u64;
        // SAFETY: in bounds; callers use 8-aligned offsets of a page-aligned mapping.
        u64::from_le(unsafe { std::ptr::read_volatile(p) })
    }

    pub fn put(&self, off: usize, v: u64) {
        let p = self.at(off, 8) as *mut u64;
        // SAFETY: as for get.
        unsafe { std::ptr::write_volatile(p, v.to_le()) }
    }

    /// The bus address of byte `off`, for commands.
    pub fn bus(&self, off: usize) -> u64 {
        self.bus + off as u64
    }
}

/// The DRM node `prefix`N (`card`, `renderD`) the driver registered under
/// this PCI function, e.g. `renderD128`.
pub fn drm_node(dev: &PciDev, prefix: &str) -> Option<String> {
    fs::read_dir(dev.path.join("drm")).ok().and_then(|d| {
        d.filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| {
                n.strip_prefix(prefix)
                    .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
            })
    })
}

/// The render node of the vGPU at `dev`, `renderDN` (renderD128 when sysfs
/// does not say).
pub fn render_node(dev: &PciDev) -> String {
    drm_node(dev, "renderD").unwrap_or_else(|| "renderD128".into())
}

/// Stop the framebuffer console drawing into VRAM: unbind fbcon from the
/// virtual terminals. The L2 checks and the migration workload own all of
/// the partition's VRAM, and fbcon (its cursor blinks) writes the console's
/// buffer there behind their back. Returns whether fbcon was bound.
pub fn release_console() -> Result<bool, String> {
    let mut was_bound = false;
    let Ok(dir) = fs::read_dir("/sys/class/vtconsole") else {
        return Ok(false);
    };
    for e in dir.filter_map(|e| e.ok()) {
        let name = fs::read_to_string(e.path().join("name")).unwrap_or_default();
        if !name.contains("frame buffer") {
            continue;
        }
        let bind = e.path().join("bind");
        if fs::read_to_string(&bind).unwrap_or_default().trim() == "1" {
            was_bound = true;
            fs::write(&bind, "0").map_err(|err| format!("{}: {err}", bind.display()))?;
        }
    }
    Ok(was_bound)
}

/// A vGPU as a program in its guest opens it: the partition window (BAR0),
/// VRAM (BAR2, write-combined), the DRM render node with its INFO, and the
/// whole DMA buffer.
pub struct Opened {
    pub win: Window,
    pub vram: Bar,
    pub gpu: Vgpu,
    pub info: Info,
    pub buf: DmaBuf,
    /// The window's VRAM_SIZE.
    pub vram_size: u64,
}

impl Opened {
    /// Map and open the vGPU at `dev`, whose driver registered /dev/dri/`node`.
    pub fn open(dev: &PciDev, node: &str) -> Result<Self, String> {
        let win = Window(dev.map_bar(regs::REG_BAR as usize, false)?);
        if win.0.len < 0x1000 {
            return Err(format!("BAR0 of {:#x} bytes", win.0.len));
        }
        let vram = dev.map_bar(regs::VRAM_BAR as usize, true)?;
        let gpu = Vgpu::open(&format!("/dev/dri/{node}"))?;
        let info = gpu.info()?;
        let buf = DmaBuf::map(&gpu, &info)?;
        let vram_size = win.get(RegId::WVramSize);
        Ok(Self {
            win,
            vram,
            gpu,
            info,
            buf,
            vram_size,
        })
    }
}
