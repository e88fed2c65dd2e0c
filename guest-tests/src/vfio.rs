//! A small VFIO client (type1 container, groups, device regions, mmap,
//! DMA maps, eventfd interrupts) for the L1 VFIO test tier. The structs and
//! constants are <linux/vfio.h> as the `vfio-bindings` crate generates it;
//! the ioctl request numbers are encoded from them by `vmm-sys-util`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::FileExt;
use vdevice::driver::Hardware;
use vdevice::regs::{WINDOW_BASE, WINDOW_STRIDE};
use vfio_bindings::bindings::vfio::{
    vfio_device_info, vfio_group_status, vfio_info_cap_header, vfio_iommu_type1_dma_map,
    vfio_iommu_type1_dma_unmap, vfio_irq_info, vfio_irq_set, vfio_precopy_info, vfio_region_info,
    vfio_region_info_cap_sparse_mmap, vfio_region_info_cap_type, vfio_region_sparse_mmap_area,
    VFIO_TYPE1v2_IOMMU, VFIO_API_VERSION, VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
    VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
    VFIO_DEVICE_FEATURE_GET, VFIO_DEVICE_FEATURE_MIGRATION, VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
    VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, VFIO_DEVICE_FEATURE_SET, VFIO_DMA_MAP_FLAG_READ,
    VFIO_DMA_MAP_FLAG_WRITE, VFIO_GROUP_FLAGS_VIABLE, VFIO_IRQ_SET_ACTION_TRIGGER,
    VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE, VFIO_REGION_INFO_CAP_SPARSE_MMAP,
    VFIO_REGION_INFO_CAP_TYPE,
};
use vmm_sys_util::ioctl::{
    ioctl, ioctl_with_mut_ptr, ioctl_with_mut_ref, ioctl_with_ptr, ioctl_with_val,
};

pub use vfio_bindings::bindings::vfio::{
    VFIO_DEVICE_FLAGS_PCI as DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET as DEVICE_FLAGS_RESET,
    VFIO_PCI_CONFIG_REGION_INDEX as CONFIG_REGION, VFIO_PCI_INTX_IRQ_INDEX as IRQ_INTX,
    VFIO_PCI_MSIX_IRQ_INDEX as IRQ_MSIX, VFIO_PCI_MSI_IRQ_INDEX as IRQ_MSI,
    VFIO_REGION_INFO_FLAG_CAPS as REGION_FLAG_CAPS, VFIO_REGION_INFO_FLAG_MMAP as REGION_FLAG_MMAP,
};

/// The ioctl request numbers: `_IO(VFIO_TYPE, VFIO_BASE + n)` as
/// <linux/vfio.h> defines them (bindgen cannot expand `_IO`).
#[allow(non_snake_case)]
mod nr {
    use vfio_bindings::bindings::vfio::{VFIO_BASE, VFIO_TYPE};
    use vmm_sys_util::ioctl_io_nr;

    const TY: u32 = VFIO_TYPE as u32;
    ioctl_io_nr!(VFIO_GET_API_VERSION, TY, VFIO_BASE);
    ioctl_io_nr!(VFIO_SET_IOMMU, TY, VFIO_BASE + 2);
    ioctl_io_nr!(VFIO_GROUP_GET_STATUS, TY, VFIO_BASE + 3);
    ioctl_io_nr!(VFIO_GROUP_SET_CONTAINER, TY, VFIO_BASE + 4);
    ioctl_io_nr!(VFIO_GROUP_GET_DEVICE_FD, TY, VFIO_BASE + 6);
    ioctl_io_nr!(VFIO_DEVICE_GET_INFO, TY, VFIO_BASE + 7);
    ioctl_io_nr!(VFIO_DEVICE_GET_REGION_INFO, TY, VFIO_BASE + 8);
    ioctl_io_nr!(VFIO_DEVICE_GET_IRQ_INFO, TY, VFIO_BASE + 9);
    ioctl_io_nr!(VFIO_DEVICE_SET_IRQS, TY, VFIO_BASE + 10);
    ioctl_io_nr!(VFIO_DEVICE_RESET, TY, VFIO_BASE + 11);
    ioctl_io_nr!(VFIO_IOMMU_MAP_DMA, TY, VFIO_BASE + 13);
    ioctl_io_nr!(VFIO_IOMMU_UNMAP_DMA, TY, VFIO_BASE + 14);
    ioctl_io_nr!(VFIO_DEVICE_QUERY_GFX_PLANE, TY, VFIO_BASE + 14);
    ioctl_io_nr!(VFIO_DEVICE_FEATURE, TY, VFIO_BASE + 17);
    ioctl_io_nr!(VFIO_MIG_GET_PRECOPY_INFO, TY, VFIO_BASE + 21);
}

/// Migration states (`enum vfio_device_mig_state`).
pub use vfio_bindings::bindings::vfio::{
    vfio_device_mig_state_VFIO_DEVICE_STATE_PRE_COPY as MIG_PRE_COPY,
    vfio_device_mig_state_VFIO_DEVICE_STATE_PRE_COPY_P2P as MIG_PRE_COPY_P2P,
    vfio_device_mig_state_VFIO_DEVICE_STATE_RESUMING as MIG_RESUMING,
    vfio_device_mig_state_VFIO_DEVICE_STATE_RUNNING as MIG_RUNNING,
    vfio_device_mig_state_VFIO_DEVICE_STATE_RUNNING_P2P as MIG_RUNNING_P2P,
    vfio_device_mig_state_VFIO_DEVICE_STATE_STOP as MIG_STOP,
    vfio_device_mig_state_VFIO_DEVICE_STATE_STOP_COPY as MIG_STOP_COPY,
    VFIO_MIGRATION_P2P as MIGRATION_P2P, VFIO_MIGRATION_PRE_COPY as MIGRATION_PRE_COPY,
    VFIO_MIGRATION_STOP_COPY as MIGRATION_STOP_COPY,
};

/// vfio-pci's layout of a device fd, which vgpu_vfio follows: region
/// `index` starts at `index << 40` (a convention of the driver, not uapi).
pub const REGION_INDEX_SHIFT: u32 = 40;

/// The device-fd offset where region `index` starts.
pub fn region_offset(index: u64) -> u64 {
    index << REGION_INDEX_SHIFT
}

/// An ioctl's return value, or errno as an error.
fn check(r: i32) -> io::Result<i32> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// An ioctl's error, naming the ioctl (errno kept).
fn step(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// `argsz` of a fixed-size argument struct.
fn argsz<T>() -> u32 {
    size_of::<T>() as u32
}

/// A type1 IOMMU container: one IOVA space for the groups added to it.
pub struct Container {
    fd: File,
}

impl Container {
    pub fn open() -> io::Result<Self> {
        let fd = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/vfio/vfio")?;
        // SAFETY: GET_API_VERSION takes no argument.
        let v = check(unsafe { ioctl(&fd, nr::VFIO_GET_API_VERSION()) })?;
        if v as u32 != VFIO_API_VERSION {
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
        let mut status = vfio_group_status {
            argsz: argsz::<vfio_group_status>(),
            flags: 0,
        };
        // SAFETY: GROUP_GET_STATUS fills a vfio_group_status.
        check(unsafe { ioctl_with_mut_ref(&g, nr::VFIO_GROUP_GET_STATUS(), &mut status) })
            .map_err(|e| step("GROUP_GET_STATUS", e))?;
        if status.flags & VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(io::Error::other("group not viable"));
        }
        let cfd: i32 = self.fd.as_raw_fd();
        // SAFETY: GROUP_SET_CONTAINER reads the container fd as an int.
        check(unsafe { ioctl_with_ptr(&g, nr::VFIO_GROUP_SET_CONTAINER(), &cfd) })
            .map_err(|e| step("GROUP_SET_CONTAINER", e))?;
        if first {
            // SAFETY: SET_IOMMU takes its argument by value.
            check(unsafe {
                ioctl_with_val(&self.fd, nr::VFIO_SET_IOMMU(), VFIO_TYPE1v2_IOMMU.into())
            })
            .map_err(|e| step("SET_IOMMU type1v2", e))?;
        }
        Ok(g)
    }

    /// Map `size` bytes at `vaddr` for device reads and writes at `iova`.
    pub fn map_dma(&self, vaddr: u64, iova: u64, size: u64) -> io::Result<()> {
        self.map_dma_flags(
            vaddr,
            iova,
            size,
            VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        )
    }

    /// As `map_dma`, for device reads only.
    pub fn map_dma_read_only(&self, vaddr: u64, iova: u64, size: u64) -> io::Result<()> {
        self.map_dma_flags(vaddr, iova, size, VFIO_DMA_MAP_FLAG_READ)
    }

    fn map_dma_flags(&self, vaddr: u64, iova: u64, size: u64, flags: u32) -> io::Result<()> {
        let m = vfio_iommu_type1_dma_map {
            argsz: argsz::<vfio_iommu_type1_dma_map>(),
            flags,
            vaddr,
            iova,
            size,
        };
        // SAFETY: MAP_DMA reads a vfio_iommu_type1_dma_map.
        check(unsafe { ioctl_with_ptr(&self.fd, nr::VFIO_IOMMU_MAP_DMA(), &m) }).map(|_| ())
    }

    pub fn unmap_dma(&self, iova: u64, size: u64) -> io::Result<()> {
        let mut m = vfio_iommu_type1_dma_unmap {
            argsz: argsz::<vfio_iommu_type1_dma_unmap>(),
            flags: 0,
            iova,
            size,
            ..Default::default()
        };
        // SAFETY: UNMAP_DMA reads and updates a vfio_iommu_type1_dma_unmap
        // (no bitmap: flags 0, argsz without the trailing data).
        check(unsafe { ioctl_with_mut_ref(&self.fd, nr::VFIO_IOMMU_UNMAP_DMA(), &mut m) })
            .map(|_| ())
    }
}

#[derive(Clone, Debug, Default)]
pub struct Region {
    pub flags: u32,
    pub size: u64,
    pub offset: u64,
    /// Sparse mmap areas (offset, size) when the region has that capability.
    pub sparse: Option<Vec<(u64, u64)>>,
    /// (type, subtype) of a device-specific region (VFIO_REGION_INFO_CAP_TYPE).
    pub cap_type: Option<(u32, u32)>,
}

/// `struct vfio_device_gfx_plane_info` as 32-bit words (its union makes
/// the bindgen struct awkward): the word index of each field.
pub mod plane {
    pub const WORDS: usize = 16;
    pub const ARGSZ: usize = 0;
    pub const FLAGS: usize = 1;
    pub const PLANE_TYPE: usize = 2;
    pub const DRM_FORMAT: usize = 3;
    pub const WIDTH: usize = 6;
    pub const HEIGHT: usize = 7;
    pub const STRIDE: usize = 8;
    pub const SIZE: usize = 9;
    pub const REGION_INDEX: usize = 14;
    pub const TYPE_PROBE: u32 = 1;
    pub const TYPE_DMABUF: u32 = 2;
    pub const TYPE_REGION: u32 = 4;
    /// DRM_PLANE_TYPE_PRIMARY, DRM_PLANE_TYPE_CURSOR
    pub const PRIMARY: u32 = 1;
    pub const CURSOR: u32 = 2;
}

/// A primary plane as VFIO_DEVICE_QUERY_GFX_PLANE reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GfxPlane {
    pub drm_format: u32,
    pub width: u32,
    pub height: u32,
    pub stride: u32,
    pub size: u32,
    pub region_index: u32,
}

/// A `T` at byte `at` of `buf`, if it fits (capability chains are unaligned
/// as far as the type system knows).
fn read_at<T>(buf: &[u8], at: usize) -> Option<T> {
    let bytes = buf.get(at..at.checked_add(size_of::<T>())?)?;
    // SAFETY: `bytes` holds size_of::<T>() bytes; callers read plain C
    // structs of integers, for which any bytes are a value.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// The areas of a VFIO_REGION_INFO_CAP_SPARSE_MMAP capability at `cap`.
fn sparse_areas(buf: &[u8], cap: usize) -> Option<Vec<(u64, u64)>> {
    let head: vfio_region_info_cap_sparse_mmap = read_at(buf, cap)?;
    let first = cap + size_of::<vfio_region_info_cap_sparse_mmap>();
    (0..head.nr_areas as usize)
        .map(|i| {
            let a: vfio_region_sparse_mmap_area =
                read_at(buf, first + i * size_of::<vfio_region_sparse_mmap_area>())?;
            Some((a.offset, a.size))
        })
        .collect()
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
        let fd =
            check(unsafe { ioctl_with_ptr(group, nr::VFIO_GROUP_GET_DEVICE_FD(), c.as_ptr()) })?;
        // SAFETY: a new fd we own.
        let file = unsafe { File::from_raw_fd(fd) };
        let mut info = vfio_device_info {
            argsz: argsz::<vfio_device_info>(),
            ..Default::default()
        };
        // SAFETY: DEVICE_GET_INFO fills a vfio_device_info.
        check(unsafe { ioctl_with_mut_ref(&file, nr::VFIO_DEVICE_GET_INFO(), &mut info) })?;
        Ok(Self {
            file,
            flags: info.flags,
            num_regions: info.num_regions,
            num_irqs: info.num_irqs,
        })
    }

    /// A second handle on the same device (a dup of its fd), for another
    /// thread.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            file: self.file.try_clone()?,
            flags: self.flags,
            num_regions: self.num_regions,
            num_irqs: self.num_irqs,
        })
    }

    /// VFIO_DEVICE_GET_REGION_INFO, with the capability chain when the
    /// region has one (asked again with the argsz the kernel wants).
    pub fn region(&self, index: u32) -> io::Result<Region> {
        // u64 words: the buffer is aligned for vfio_region_info.
        let mut buf = vec![0u64; size_of::<vfio_region_info>().div_ceil(8)];
        let info = loop {
            let head = vfio_region_info {
                argsz: (buf.len() * 8) as u32,
                index,
                ..Default::default()
            };
            let p = buf.as_mut_ptr().cast::<vfio_region_info>();
            // SAFETY: the buffer is argsz long and aligned for the header.
            unsafe { p.write(head) };
            // SAFETY: GET_REGION_INFO writes at most argsz bytes.
            check(unsafe { ioctl_with_mut_ptr(&self.file, nr::VFIO_DEVICE_GET_REGION_INFO(), p) })?;
            // SAFETY: as above; the kernel filled the header.
            let info = unsafe { p.read() };
            if info.argsz as usize <= buf.len() * 8 {
                break info;
            }
            buf = vec![0u64; (info.argsz as usize).div_ceil(8)];
        };
        // SAFETY: plain bytes of the u64 buffer.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), buf.len() * 8) };
        let mut r = Region {
            flags: info.flags,
            size: info.size,
            offset: info.offset,
            sparse: None,
            cap_type: None,
        };
        let mut cap = info.cap_offset as usize;
        while r.flags & REGION_FLAG_CAPS != 0 && cap != 0 {
            let Some(h) = read_at::<vfio_info_cap_header>(bytes, cap) else {
                break;
            };
            if u32::from(h.id) == VFIO_REGION_INFO_CAP_TYPE {
                let t: vfio_region_info_cap_type = read_at(bytes, cap).ok_or_else(|| {
                    io::Error::other(format!("region {index}: type capability past argsz"))
                })?;
                r.cap_type = Some((t.type_, t.subtype));
            }
            if u32::from(h.id) == VFIO_REGION_INFO_CAP_SPARSE_MMAP {
                r.sparse = Some(sparse_areas(bytes, cap).ok_or_else(|| {
                    io::Error::other(format!("region {index}: sparse mmap areas past argsz"))
                })?);
            }
            cap = h.next as usize;
        }
        Ok(r)
    }

    pub fn irq_count(&self, index: u32) -> io::Result<u32> {
        let mut info = vfio_irq_info {
            argsz: argsz::<vfio_irq_info>(),
            index,
            ..Default::default()
        };
        // SAFETY: GET_IRQ_INFO fills a vfio_irq_info.
        check(unsafe {
            ioctl_with_mut_ref(&self.file, nr::VFIO_DEVICE_GET_IRQ_INFO(), &mut info)
        })?;
        Ok(info.count)
    }

    /// VFIO_DEVICE_SET_IRQS of vectors `0..data.len()` of `index` with
    /// `flags`, `data` the int array that follows the header.
    fn set_irqs(&self, index: u32, flags: u32, data: &[i32]) -> io::Result<()> {
        let head = size_of::<vfio_irq_set>();
        // u32 words: aligned for vfio_irq_set, and for the ints after it.
        let mut buf = vec![0u32; (head + 4 * data.len()).div_ceil(4)];
        let set = vfio_irq_set {
            argsz: (buf.len() * 4) as u32,
            flags,
            index,
            start: 0,
            count: data.len() as u32,
            ..Default::default()
        };
        // SAFETY: the buffer holds the header and is aligned for it.
        unsafe { buf.as_mut_ptr().cast::<vfio_irq_set>().write(set) };
        for (i, fd) in data.iter().enumerate() {
            buf[head / 4 + i] = *fd as u32;
        }
        // SAFETY: SET_IRQS reads argsz bytes: the header and the data.
        check(unsafe {
            ioctl_with_mut_ptr(&self.file, nr::VFIO_DEVICE_SET_IRQS(), buf.as_mut_ptr())
        })
        .map(|_| ())
    }

    /// Route `eventfds.len()` vectors of `index` from vector 0 to eventfds.
    pub fn set_irq_eventfds(&self, index: u32, eventfds: &[RawFd]) -> io::Result<()> {
        self.set_irqs(
            index,
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            eventfds,
        )
    }

    /// Disable all vectors of `index`.
    pub fn disable_irqs(&self, index: u32) -> io::Result<()> {
        self.set_irqs(
            index,
            VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
            &[],
        )
    }

    /// VFIO_DEVICE_SET_IRQS with caller-built words (argsz first): for the
    /// randomized tier, where the kernel must refuse whatever is malformed.
    /// The kernel reads at most argsz bytes, so `words` must be that long.
    pub fn set_irqs_raw(&self, words: &mut [u32]) -> io::Result<i32> {
        self.raw(nr::VFIO_DEVICE_SET_IRQS(), words)
    }

    /// VFIO_DEVICE_GET_REGION_INFO with a caller-built buffer (argsz first).
    pub fn region_info_raw(&self, buf: &mut [u32]) -> io::Result<i32> {
        self.raw(nr::VFIO_DEVICE_GET_REGION_INFO(), buf)
    }

    /// VFIO_DEVICE_GET_IRQ_INFO with caller-built words (argsz first).
    pub fn irq_info_raw(&self, words: &mut [u32]) -> io::Result<i32> {
        self.raw(nr::VFIO_DEVICE_GET_IRQ_INFO(), words)
    }

    fn raw(&self, req: std::os::raw::c_ulong, words: &mut [u32]) -> io::Result<i32> {
        assert!(
            words[0] as usize <= words.len() * 4,
            "argsz past the buffer"
        );
        // SAFETY: the kernel reads and writes at most argsz bytes, which
        // the buffer holds.
        check(unsafe { ioctl_with_mut_ptr(&self.file, req, words.as_mut_ptr()) })
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

    /// VFIO_DEVICE_FEATURE `feature` with `flags` (GET/SET/PROBE) and its
    /// payload `data` (read back for GET).
    fn feature(&self, feature: u32, flags: u32, data: &mut [u8]) -> io::Result<()> {
        let mut buf = vec![0u8; 8 + data.len()];
        let argsz = u32::try_from(buf.len()).expect("small payload");
        buf[0..4].copy_from_slice(&argsz.to_ne_bytes());
        buf[4..8].copy_from_slice(&(feature | flags).to_ne_bytes());
        buf[8..].copy_from_slice(data);
        // SAFETY: a vfio_device_feature header followed by its payload.
        check(unsafe {
            ioctl_with_mut_ptr(&self.file, nr::VFIO_DEVICE_FEATURE(), buf.as_mut_ptr())
        })?;
        data.copy_from_slice(&buf[8..]);
        Ok(())
    }

    /// VFIO_DEVICE_FEATURE_MIGRATION: the migration flags it offers.
    pub fn migration_flags(&self) -> io::Result<u64> {
        let mut d = [0u8; 8];
        self.feature(
            VFIO_DEVICE_FEATURE_MIGRATION,
            VFIO_DEVICE_FEATURE_GET,
            &mut d,
        )?;
        Ok(u64::from_ne_bytes(d))
    }

    /// The migration state (VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, GET).
    pub fn mig_state(&self) -> io::Result<u32> {
        let mut d = [0u8; 8];
        self.feature(
            VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
            VFIO_DEVICE_FEATURE_GET,
            &mut d,
        )?;
        Ok(u32::from_ne_bytes(d[0..4].try_into().expect("4 bytes")))
    }

    /// Move to migration state `state`; the data file of STOP_COPY and
    /// RESUMING.
    pub fn set_mig_state(&self, state: u32) -> io::Result<Option<File>> {
        let mut d = [0u8; 8];
        d[0..4].copy_from_slice(&state.to_ne_bytes());
        d[4..8].copy_from_slice(&(-1i32).to_ne_bytes());
        self.feature(
            VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
            VFIO_DEVICE_FEATURE_SET,
            &mut d,
        )?;
        let fd = i32::from_ne_bytes(d[4..8].try_into().expect("4 bytes"));
        // SAFETY: the kernel gave us this fd (or none: -1).
        Ok((fd >= 0).then(|| unsafe { File::from_raw_fd(fd) }))
    }

    /// VFIO_DEVICE_FEATURE_DMA_LOGGING_START for one IOVA range, at
    /// `page` bytes per bit.
    pub fn dma_logging_start(&self, iova: u64, len: u64, page: u64) -> io::Result<()> {
        let range = [iova, len];
        let mut d = [0u8; 24];
        d[0..8].copy_from_slice(&page.to_ne_bytes());
        d[8..12].copy_from_slice(&1u32.to_ne_bytes());
        d[16..24].copy_from_slice(&(range.as_ptr() as u64).to_ne_bytes());
        self.feature(
            VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
            VFIO_DEVICE_FEATURE_SET,
            &mut d,
        )
    }

    pub fn dma_logging_stop(&self) -> io::Result<()> {
        self.feature(
            VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
            VFIO_DEVICE_FEATURE_SET,
            &mut [],
        )
    }

    /// VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT of `[iova, iova + len)`: the
    /// dirty pages' offsets from `iova`, in pages of `page` bytes.
    pub fn dma_logging_report(&self, iova: u64, len: u64, page: u64) -> io::Result<Vec<u64>> {
        let pages = len / page;
        let mut bitmap = vec![0u64; pages.div_ceil(64) as usize];
        let mut d = [0u8; 32];
        d[0..8].copy_from_slice(&iova.to_ne_bytes());
        d[8..16].copy_from_slice(&len.to_ne_bytes());
        d[16..24].copy_from_slice(&page.to_ne_bytes());
        d[24..32].copy_from_slice(&(bitmap.as_mut_ptr() as u64).to_ne_bytes());
        self.feature(
            VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
            VFIO_DEVICE_FEATURE_GET,
            &mut d,
        )?;
        Ok((0..pages)
            .filter(|p| bitmap[(p / 64) as usize] & 1 << (p % 64) != 0)
            .collect())
    }

    /// VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: bytes STOP_COPY will send.
    pub fn mig_data_size(&self) -> io::Result<u64> {
        let mut d = [0u8; 8];
        self.feature(
            VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
            VFIO_DEVICE_FEATURE_GET,
            &mut d,
        )?;
        Ok(u64::from_ne_bytes(d))
    }

    /// VFIO_DEVICE_QUERY_GFX_PLANE with the caller's words (see [`plane`]),
    /// argsz and flags included.
    pub fn query_gfx_plane_raw(&self, words: &mut [u32; plane::WORDS]) -> io::Result<i32> {
        self.raw(nr::VFIO_DEVICE_QUERY_GFX_PLANE(), words)
    }

    /// The primary plane as a region plane.
    pub fn query_gfx_plane(&self) -> io::Result<GfxPlane> {
        let mut w = [0u32; plane::WORDS];
        w[plane::ARGSZ] = (plane::WORDS * 4) as u32;
        w[plane::FLAGS] = plane::TYPE_REGION;
        w[plane::PLANE_TYPE] = plane::PRIMARY;
        self.query_gfx_plane_raw(&mut w)?;
        Ok(GfxPlane {
            drm_format: w[plane::DRM_FORMAT],
            width: w[plane::WIDTH],
            height: w[plane::HEIGHT],
            stride: w[plane::STRIDE],
            size: w[plane::SIZE],
            region_index: w[plane::REGION_INDEX],
        })
    }

    /// The first region of device-specific `(type, subtype)`, by index.
    pub fn find_region(&self, ty: (u32, u32)) -> io::Result<(u32, Region)> {
        for index in 0..self.num_regions {
            let r = self.region(index)?;
            if r.cap_type == Some(ty) {
                return Ok((index, r));
            }
        }
        Err(io::Error::other(format!("no region of type {ty:x?}")))
    }

    pub fn reset(&self) -> io::Result<()> {
        // SAFETY: DEVICE_RESET takes no argument.
        check(unsafe { ioctl(&self.file, nr::VFIO_DEVICE_RESET()) }).map(|_| ())
    }

    pub fn read(&self, r: &Region, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, r.offset + off)
    }

    pub fn write(&self, r: &Region, off: u64, buf: &[u8]) -> io::Result<()> {
        self.file.write_all_at(buf, r.offset + off)
    }

    /// A read-only shared mapping (a region without FLAG_WRITE).
    pub fn mmap_read_only(&self, r: &Region, off: u64, len: usize) -> io::Result<memmap2::MmapRaw> {
        memmap2::MmapOptions::new()
            .offset(r.offset + off)
            .len(len)
            .map_raw_read_only(&self.file)
    }

    pub fn mmap(&self, r: &Region, off: u64, len: usize) -> io::Result<memmap2::MmapRaw> {
        memmap2::MmapOptions::new()
            .offset(r.offset + off)
            .len(len)
            .map_raw(&self.file)
    }
}

/// VFIO_MIG_GET_PRECOPY_INFO on a PRE_COPY data fd: (initial_bytes,
/// dirty_bytes) still to read.
pub fn precopy_info(data: &File) -> io::Result<(u64, u64)> {
    precopy_info_argsz(data, argsz::<vfio_precopy_info>())
}

/// As `precopy_info`, with the caller's `argsz` (the kernel must refuse a
/// short one).
pub fn precopy_info_argsz(data: &File, argsz: u32) -> io::Result<(u64, u64)> {
    let mut info = vfio_precopy_info {
        argsz,
        ..Default::default()
    };
    // SAFETY: GET_PRECOPY_INFO reads argsz and fills a vfio_precopy_info.
    check(unsafe { ioctl_with_mut_ref(data, nr::VFIO_MIG_GET_PRECOPY_INFO(), &mut info) })?;
    Ok((info.initial_bytes, info.dirty_bytes))
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
/// (`dma`, mapped at `iova` in the container).
pub struct VfioVgpu {
    pub dev: Device,
    pub bar0: Region,
    pub bar2: Region,
    pub vram: memmap2::MmapRaw,
    dma: DmaBuf,
    iova: u64,
}

impl VfioVgpu {
    /// Open the vGPU `uuid` in `container` (adding its group, the first
    /// group also choosing the IOMMU) and map its BAR2; `dma` is the buffer
    /// the caller maps at `iova` for system-memory accesses. Returns the
    /// group file too: closing it would detach the group.
    pub fn open(
        container: &Container,
        uuid: &str,
        first: bool,
        dma: DmaBuf,
        iova: u64,
    ) -> Result<(Self, File), String> {
        let v = vgpuctl::Vgpu::get(uuid).map_err(|e| e.to_string())?;
        let group = v.iommu_group.ok_or("no iommu_group")?;
        Self::open_in_group(container, group, uuid, first, dma, iova)
    }

    /// As `open`, for any VFIO device: `name` (a vGPU's UUID, a PCI
    /// function's address such as an SR-IOV VF's) in IOMMU group `group`.
    pub fn open_in_group(
        container: &Container,
        group: u32,
        name: &str,
        first: bool,
        dma: DmaBuf,
        iova: u64,
    ) -> Result<(Self, File), String> {
        let gf = container
            .add_group(group, first)
            .map_err(|e| format!("group {group}: {e}"))?;
        let dev = Device::open(&gf, name).map_err(|e| format!("device fd: {e}"))?;
        let bar0 = dev.region(0).map_err(|e| format!("BAR0 info: {e}"))?;
        let bar2 = dev.region(2).map_err(|e| format!("BAR2 info: {e}"))?;
        let vram = dev
            .mmap(&bar2, 0, bar2.size as usize)
            .map_err(|e| format!("BAR2 mmap: {e}"))?;
        let hw = Self {
            dev,
            bar0,
            bar2,
            vram,
            dma,
            iova,
        };
        Ok((hw, gf))
    }

    /// Offset of `iova` in the DMA buffer.
    fn dma_off(&self, iova: u64) -> u64 {
        iova.checked_sub(self.iova)
            .expect("an IOVA below the DMA buffer")
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
        self.dma.write(self.dma_off(iova), data)
    }

    fn sys_read(&self, iova: u64, buf: &mut [u8]) {
        self.dma.read(self.dma_off(iova), buf)
    }

    fn partition_vram_base(&self, _p: usize) -> Option<u64> {
        Some(0)
    }
}

/// Memory of the VMM that it maps for DMA: anonymous, populated, and never
/// unmapped from the process (it lives as long as the process, as DMA
/// buffers of a VMM do), and written by the device behind the program's
/// back, so it is only ever copied through raw pointers. Copies share it.
#[derive(Clone, Copy)]
pub struct DmaBuf {
    ptr: *mut u8,
    len: usize,
}

impl DmaBuf {
    pub fn new(len: usize) -> Result<Self, String> {
        // SAFETY: a fresh anonymous private mapping; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!("DMA buffer: {}", io::Error::last_os_error()));
        }
        Ok(Self { ptr: p.cast(), len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The process address of byte `off`, for VFIO_IOMMU_MAP_DMA.
    pub fn vaddr(&self, off: u64) -> u64 {
        assert!(off as usize <= self.len);
        self.ptr as u64 + off
    }

    pub fn read(&self, off: u64, out: &mut [u8]) {
        assert!(off as usize + out.len() <= self.len);
        // SAFETY: inside the buffer, which lives as long as the process.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.add(off as usize), out.as_mut_ptr(), out.len())
        }
    }

    pub fn write(&self, off: u64, data: &[u8]) {
        assert!(off as usize + data.len() <= self.len);
        // SAFETY: as for read.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(off as usize), data.len())
        }
    }

    pub fn u32_at(&self, off: u64) -> u32 {
        assert!(off & 3 == 0 && off as usize + 4 <= self.len);
        // SAFETY: inside the buffer, aligned (the buffer is page aligned).
        unsafe { std::ptr::read_volatile(self.ptr.add(off as usize) as *const u32) }
    }

    pub fn u64_at(&self, off: u64) -> u64 {
        let mut b = [0u8; 8];
        self.read(off, &mut b);
        u64::from_le_bytes(b)
    }

    /// `len` bytes of the little-endian word `pattern` repeated, from `off`.
    pub fn fill(&self, off: u64, len: u64, pattern: u32) {
        const BLOCK: u64 = 1 << 20;
        let block: Vec<u8> = pattern
            .to_le_bytes()
            .iter()
            .cycle()
            .take(len.min(BLOCK) as usize)
            .copied()
            .collect();
        let mut at = 0;
        while at < len {
            let n = (len - at).min(BLOCK);
            self.write(off + at, &block[..n as usize]);
            at += n;
        }
    }

    /// Words of `[off, off + len)` that are not `pattern`.
    pub fn count_not(&self, off: u64, len: u64, pattern: u32) -> usize {
        let mut b = vec![0u8; len as usize];
        self.read(off, &mut b);
        b.chunks(4).filter(|w| *w != pattern.to_le_bytes()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request numbers as <linux/vfio.h>'s `_IO(';', 100 + n)` gives
    /// them on x86_64 (no size, no direction).
    #[test]
    fn request_numbers_match_the_header() {
        assert_eq!(nr::VFIO_GET_API_VERSION(), 0x3b64);
        assert_eq!(nr::VFIO_GROUP_GET_DEVICE_FD(), 0x3b6a);
        assert_eq!(nr::VFIO_DEVICE_RESET(), 0x3b6f);
        assert_eq!(nr::VFIO_IOMMU_UNMAP_DMA(), 0x3b72);
        assert_eq!(nr::VFIO_MIG_GET_PRECOPY_INFO(), 0x3b79);
    }

    #[test]
    fn sparse_areas_are_read_within_the_buffer() {
        let mut buf = vec![0u8; 48];
        buf[8..12].copy_from_slice(&1u32.to_le_bytes()); // nr_areas
        buf[16..24].copy_from_slice(&0x2000u64.to_le_bytes());
        buf[24..32].copy_from_slice(&0x1000u64.to_le_bytes());
        assert_eq!(sparse_areas(&buf, 0), Some(vec![(0x2000, 0x1000)]));
        buf[8..12].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(sparse_areas(&buf, 0), None, "areas past the buffer");
    }

    #[test]
    fn dma_buffer_fills_and_counts() {
        let b = DmaBuf::new(8192).unwrap();
        b.fill(4, 4096, 0xa5a5_0001);
        assert_eq!(b.u32_at(4), 0xa5a5_0001);
        assert_eq!(b.count_not(4, 4096, 0xa5a5_0001), 0);
        assert_eq!(b.count_not(0, 8, 0xa5a5_0001), 1);
    }
}
