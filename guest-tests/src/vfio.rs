//! A small VFIO client (type1 container, groups, device regions, mmap,
//! DMA maps, eventfd interrupts) for the L1 VFIO test tier. The structs
//! mirror <linux/vfio.h>.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::FileExt;
use vdevice::driver::Hardware;
use vdevice::regs::{WINDOW_BASE, WINDOW_STRIDE};

const VFIO_BASE: u64 = (b';' as u64) << 8 | 100;
const GET_API_VERSION: u64 = VFIO_BASE;
const SET_IOMMU: u64 = VFIO_BASE + 2;
const GROUP_GET_STATUS: u64 = VFIO_BASE + 3;
const GROUP_SET_CONTAINER: u64 = VFIO_BASE + 4;
const GROUP_GET_DEVICE_FD: u64 = VFIO_BASE + 6;
const DEVICE_GET_INFO: u64 = VFIO_BASE + 7;
const DEVICE_GET_REGION_INFO: u64 = VFIO_BASE + 8;
const DEVICE_GET_IRQ_INFO: u64 = VFIO_BASE + 9;
const DEVICE_SET_IRQS: u64 = VFIO_BASE + 10;
const DEVICE_RESET: u64 = VFIO_BASE + 11;
const IOMMU_MAP_DMA: u64 = VFIO_BASE + 13;
const IOMMU_UNMAP_DMA: u64 = VFIO_BASE + 14;

const TYPE1V2_IOMMU: u64 = 3;
const DMA_MAP_FLAG_READ: u32 = 1;
const DMA_MAP_FLAG_WRITE: u32 = 2;
pub const DEVICE_FLAGS_RESET: u32 = 1;
pub const DEVICE_FLAGS_PCI: u32 = 2;
pub const REGION_FLAG_MMAP: u32 = 4;
pub const REGION_FLAG_CAPS: u32 = 8;
const CAP_SPARSE_MMAP: u16 = 1;
pub const CONFIG_REGION: u32 = 7;
pub const IRQ_INTX: u32 = 0;
pub const IRQ_MSI: u32 = 1;
pub const IRQ_MSIX: u32 = 2;
const IRQ_SET_DATA_NONE: u32 = 1;
const IRQ_SET_DATA_EVENTFD: u32 = 4;
const IRQ_SET_ACTION_TRIGGER: u32 = 32;

fn ioctl<T>(fd: RawFd, req: u64, arg: *mut T) -> io::Result<i32> {
    // SAFETY: the request numbers and argument structs mirror linux/vfio.h.
    let r = unsafe { libc::ioctl(fd, req as _, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub struct Container {
    fd: File,
}

impl Container {
    pub fn open() -> io::Result<Self> {
        let fd = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/vfio/vfio")?;
        let v = ioctl::<u8>(fd.as_raw_fd(), GET_API_VERSION, std::ptr::null_mut())?;
        if v != 0 {
            return Err(io::Error::other(format!("VFIO API version {v}")));
        }
        Ok(Self { fd })
    }

    /// Attach a group (by number); the first one also selects type1 IOMMU.
    pub fn add_group(&self, group: u32, first: bool) -> io::Result<File> {
        let g = OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/dev/vfio/{group}"))?;
        let mut status = [8u32, 0];
        ioctl(g.as_raw_fd(), GROUP_GET_STATUS, status.as_mut_ptr())?;
        if status[1] & 1 == 0 {
            return Err(io::Error::other("group not viable"));
        }
        let mut cfd: i32 = self.fd.as_raw_fd();
        ioctl(g.as_raw_fd(), GROUP_SET_CONTAINER, &mut cfd)?;
        if first {
            // SAFETY: SET_IOMMU takes its argument by value.
            let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), SET_IOMMU as _, TYPE1V2_IOMMU) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(g)
    }

    /// Map `size` bytes at `vaddr` for device reads and writes at `iova`.
    pub fn map_dma(&self, vaddr: u64, iova: u64, size: u64) -> io::Result<()> {
        self.map_dma_flags(vaddr, iova, size, DMA_MAP_FLAG_READ | DMA_MAP_FLAG_WRITE)
    }

    /// As `map_dma`, for device reads only.
    pub fn map_dma_read_only(&self, vaddr: u64, iova: u64, size: u64) -> io::Result<()> {
        self.map_dma_flags(vaddr, iova, size, DMA_MAP_FLAG_READ)
    }

    fn map_dma_flags(&self, vaddr: u64, iova: u64, size: u64, flags: u32) -> io::Result<()> {
        #[repr(C)]
        struct Map {
            argsz: u32,
            flags: u32,
            vaddr: u64,
            iova: u64,
            size: u64,
        }
        let mut m = Map {
            argsz: std::mem::size_of::<Map>() as u32,
            flags,
            vaddr,
            iova,
            size,
        };
        ioctl(self.fd.as_raw_fd(), IOMMU_MAP_DMA, &mut m).map(|_| ())
    }

    pub fn unmap_dma(&self, iova: u64, size: u64) -> io::Result<()> {
        #[repr(C)]
        struct Unmap {
            argsz: u32,
            flags: u32,
            iova: u64,
            size: u64,
        }
        let mut m = Unmap {
            argsz: std::mem::size_of::<Unmap>() as u32,
            flags: 0,
            iova,
            size,
        };
        ioctl(self.fd.as_raw_fd(), IOMMU_UNMAP_DMA, &mut m).map(|_| ())
    }
}

#[derive(Clone, Debug, Default)]
pub struct Region {
    pub flags: u32,
    pub size: u64,
    pub offset: u64,
    /// Sparse mmap areas (offset, size) when the region has that capability.
    pub sparse: Option<Vec<(u64, u64)>>,
}

pub struct Device {
    pub file: File,
    pub flags: u32,
    pub num_regions: u32,
    pub num_irqs: u32,
}

impl Device {
    pub fn open(group: &File, name: &str) -> io::Result<Self> {
        let c = std::ffi::CString::new(name).expect("no NUL");
        // SAFETY: GET_DEVICE_FD takes a C string.
        let fd = unsafe { libc::ioctl(group.as_raw_fd(), GROUP_GET_DEVICE_FD as _, c.as_ptr()) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new fd we own.
        let file = unsafe { File::from_raw_fd(fd) };
        let mut info = [24u32, 0, 0, 0, 0, 0];
        ioctl(file.as_raw_fd(), DEVICE_GET_INFO, info.as_mut_ptr())?;
        Ok(Self {
            file,
            flags: info[1],
            num_regions: info[2],
            num_irqs: info[3],
        })
    }

    pub fn region(&self, index: u32) -> io::Result<Region> {
        let mut buf = vec![0u8; 32];
        loop {
            let argsz = buf.len() as u32;
            buf[0..4].copy_from_slice(&argsz.to_le_bytes());
            buf[8..12].copy_from_slice(&index.to_le_bytes());
            ioctl(
                self.file.as_raw_fd(),
                DEVICE_GET_REGION_INFO,
                buf.as_mut_ptr(),
            )?;
            let need = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
            if need <= buf.len() {
                break;
            }
            buf = vec![0u8; need];
        }
        let u32_at = |o: usize| u32::from_le_bytes(buf[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(buf[o..o + 8].try_into().unwrap());
        let mut r = Region {
            flags: u32_at(4),
            size: u64_at(16),
            offset: u64_at(24),
            sparse: None,
        };
        let mut cap = u32_at(12) as usize;
        while r.flags & REGION_FLAG_CAPS != 0 && cap != 0 && cap + 16 <= buf.len() {
            let id = u16::from_le_bytes(buf[cap..cap + 2].try_into().unwrap());
            if id == CAP_SPARSE_MMAP {
                let n = u32_at(cap + 8) as usize;
                let areas = (0..n)
                    .map(|i| (u64_at(cap + 16 + i * 16), u64_at(cap + 24 + i * 16)))
                    .collect();
                r.sparse = Some(areas);
            }
            cap = u32_at(cap + 4) as usize;
        }
        Ok(r)
    }

    pub fn irq_count(&self, index: u32) -> io::Result<u32> {
        let mut info = [16u32, 0, index, 0];
        ioctl(
            self.file.as_raw_fd(),
            DEVICE_GET_IRQ_INFO,
            info.as_mut_ptr(),
        )?;
        Ok(info[3])
    }

    /// Route `eventfds.len()` vectors of `index` from vector 0 to eventfds.
    pub fn set_irq_eventfds(&self, index: u32, eventfds: &[RawFd]) -> io::Result<()> {
        let mut buf: Vec<u32> = vec![0; 5 + eventfds.len()];
        buf[0] = (buf.len() * 4) as u32;
        buf[1] = IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER;
        buf[2] = index;
        buf[3] = 0;
        buf[4] = eventfds.len() as u32;
        for (i, fd) in eventfds.iter().enumerate() {
            buf[5 + i] = *fd as u32;
        }
        ioctl(self.file.as_raw_fd(), DEVICE_SET_IRQS, buf.as_mut_ptr()).map(|_| ())
    }

    /// Disable all vectors of `index`.
    pub fn disable_irqs(&self, index: u32) -> io::Result<()> {
        let mut buf = [
            20u32,
            IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER,
            index,
            0,
            0,
        ];
        ioctl(self.file.as_raw_fd(), DEVICE_SET_IRQS, buf.as_mut_ptr()).map(|_| ())
    }

    /// VFIO_DEVICE_SET_IRQS with caller-built words (argsz first): for the
    /// randomized tier, where the kernel must refuse whatever is malformed.
    /// The kernel reads at most argsz bytes, so `words` must be that long.
    pub fn set_irqs_raw(&self, words: &mut [u32]) -> io::Result<i32> {
        assert!(
            words[0] as usize <= words.len() * 4,
            "argsz past the buffer"
        );
        ioctl(self.file.as_raw_fd(), DEVICE_SET_IRQS, words.as_mut_ptr())
    }

    /// VFIO_DEVICE_GET_REGION_INFO with a caller-built buffer (argsz first).
    pub fn region_info_raw(&self, buf: &mut [u32]) -> io::Result<i32> {
        assert!(buf[0] as usize <= buf.len() * 4, "argsz past the buffer");
        ioctl(
            self.file.as_raw_fd(),
            DEVICE_GET_REGION_INFO,
            buf.as_mut_ptr(),
        )
    }

    /// VFIO_DEVICE_GET_IRQ_INFO with caller-built words (argsz first).
    pub fn irq_info_raw(&self, words: &mut [u32]) -> io::Result<i32> {
        assert!(
            words[0] as usize <= words.len() * 4,
            "argsz past the buffer"
        );
        ioctl(
            self.file.as_raw_fd(),
            DEVICE_GET_IRQ_INFO,
            words.as_mut_ptr(),
        )
    }

    /// Read or write at a raw device-fd offset (region index in bits 40+).
    pub fn pread_raw(&self, off: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read_at(buf, off)
    }

    pub fn pwrite_raw(&self, off: u64, buf: &[u8]) -> io::Result<usize> {
        self.file.write_at(buf, off)
    }

    /// mmap at a raw device-fd offset.
    pub fn mmap_raw(&self, off: u64, len: usize) -> io::Result<memmap2::MmapRaw> {
        memmap2::MmapOptions::new()
            .offset(off)
            .len(len)
            .map_raw(&self.file)
    }

    pub fn reset(&self) -> io::Result<()> {
        ioctl::<u8>(self.file.as_raw_fd(), DEVICE_RESET, std::ptr::null_mut()).map(|_| ())
    }

    pub fn read(&self, r: &Region, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, r.offset + off)
    }

    pub fn write(&self, r: &Region, off: u64, buf: &[u8]) -> io::Result<()> {
        self.file.write_all_at(buf, r.offset + off)
    }

    pub fn mmap(&self, r: &Region, off: u64, len: usize) -> io::Result<memmap2::MmapRaw> {
        memmap2::MmapOptions::new()
            .offset(r.offset + off)
            .len(len)
            .map_raw(&self.file)
    }
}

/// An eventfd to receive interrupts.
pub struct EventFd {
    pub file: File,
}

impl EventFd {
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: new fd we own.
        Ok(Self {
            file: unsafe { File::from_raw_fd(fd) },
        })
    }

    pub fn raw(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Wait up to `timeout_ms` for the counter; returns it (0 on timeout).
    pub fn wait(&self, timeout_ms: i32) -> u64 {
        let mut p = libc::pollfd {
            fd: self.raw(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, timeout_ms) } <= 0 {
            return 0;
        }
        let mut b = [0u8; 8];
        match (&self.file).read(&mut b) {
            Ok(8) => u64::from_le_bytes(b),
            _ => 0,
        }
    }
}

/// One opened vGPU as `vdevice::driver::Hardware`: its VFIO device, BAR0
/// trapped through the region, BAR2 mmap'ed, and the user's DMA buffer
/// (`dma_bytes` at `dma`, mapped at `iova` in the container).
pub struct VfioVgpu {
    pub dev: Device,
    pub bar0: Region,
    pub bar2: Region,
    pub vram: memmap2::MmapRaw,
    dma: *mut u8,
    iova: u64,
    dma_bytes: usize,
}

impl VfioVgpu {
    /// # Safety
    /// `dma` must point at `dma_bytes` bytes of memory that stay mapped and
    /// writable for as long as the value lives.
    pub unsafe fn new(
        dev: Device,
        bar0: Region,
        bar2: Region,
        vram: memmap2::MmapRaw,
        dma: *mut u8,
        iova: u64,
        dma_bytes: usize,
    ) -> Self {
        Self {
            dev,
            bar0,
            bar2,
            vram,
            dma,
            iova,
            dma_bytes,
        }
    }
}

impl VfioVgpu {
    fn window_off(offset: u64) -> u64 {
        assert!(
            (WINDOW_BASE..WINDOW_BASE + WINDOW_STRIDE).contains(&offset),
            "a vGPU has only its window"
        );
        offset - WINDOW_BASE
    }
}

impl Hardware for VfioVgpu {
    fn reg_read(&self, offset: u64, size: u32) -> u64 {
        let mut b = [0u8; 8];
        self.dev
            .read(
                &self.bar0,
                Self::window_off(offset),
                &mut b[..size as usize],
            )
            .expect("BAR0 read");
        u64::from_le_bytes(b)
    }

    fn reg_write(&self, offset: u64, value: u64, size: u32) {
        self.dev
            .write(
                &self.bar0,
                Self::window_off(offset),
                &value.to_le_bytes()[..size as usize],
            )
            .expect("BAR0 write");
    }

    fn vram_write(&self, offset: u64, data: &[u8]) {
        assert!(offset as usize + data.len() <= self.vram.len());
        // SAFETY: bounds checked against the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.vram.as_mut_ptr().add(offset as usize),
                data.len(),
            )
        }
    }

    fn vram_read(&self, offset: u64, buf: &mut [u8]) {
        assert!(offset as usize + buf.len() <= self.vram.len());
        // SAFETY: bounds checked against the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.vram.as_ptr().add(offset as usize),
                buf.as_mut_ptr(),
                buf.len(),
            )
        }
    }

    fn sys_write(&self, iova: u64, data: &[u8]) {
        let off = (iova - self.iova) as usize;
        assert!(off + data.len() <= self.dma_bytes);
        // SAFETY: inside the DMA buffer.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.dma.add(off), data.len()) }
    }

    fn sys_read(&self, iova: u64, buf: &mut [u8]) {
        let off = (iova - self.iova) as usize;
        assert!(off + buf.len() <= self.dma_bytes);
        // SAFETY: inside the DMA buffer.
        unsafe { std::ptr::copy_nonoverlapping(self.dma.add(off), buf.as_mut_ptr(), buf.len()) }
    }

    fn partition_vram_base(&self, _p: usize) -> Option<u64> {
        Some(0)
    }
}

/// Anonymous memory for VFIO_IOMMU_MAP_DMA: `bytes` long, populated, and
/// never unmapped (it lives as long as the process, as DMA buffers of a
/// VMM do), so raw pointers into it stay valid.
pub fn dma_buffer(bytes: usize) -> io::Result<*mut u8> {
    // SAFETY: a fresh anonymous private mapping; nothing else refers to it.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(p as *mut u8)
}
