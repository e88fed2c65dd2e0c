//! vgpu-vfio-test: the L1 VFIO tier. Runs as root in L1 with vgpu_rm and
//! vgpu_vfio loaded: checks the mdev sysfs ABI (types, available_instances,
//! create/remove, bad input), then opens two vGPUs through VFIO as a VMM
//! would and drives them: config space, regions, register window, VRAM
//! mmap, engine work with DMA into its own VFIO-mapped memory (translated
//! on demand by the RM), read-only mappings, MSI-X through eventfds, reset,
//! isolation between the two (one's held-up fault service does not stall
//! the other), the fault paths, DMA unmap under the vGPU's own writes, and
//! removal while open. Prints a transcript with benchmarks and exits
//! non-zero on any failure.
//!
//! The program is four tables of named checks, run in order on a context
//! that grows: the parent's types, then the chosen types, then two vGPUs
//! opened through VFIO, then their removal.
//!
//! Usage: vgpu-vfio-test (no arguments)

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vdevice::command::{Command, Loc};
use vdevice::driver::{Driver, Hardware};
use vdevice::regs::{
    self, DispMode, DispStatus, FaultCode, FaultStatus, PartIntr, PartitionState, RegId,
    DISP_FORMAT_XRGB8888 as XRGB8888, WINDOW_STRIDE,
};
use vfio_bindings::bindings::vfio::{
    VFIO_PCI_NUM_REGIONS, VFIO_REGION_INFO_FLAG_WRITE as REGION_FLAG_WRITE,
};
use vgpu_guest_tests::vfio::{self, Container, Device, DmaBuf, EventFd, VfioVgpu};
use vgpu_guest_tests::vgpu::{
    fatal, fault_code, max_instances, sys_u64, vram_u64, VfioDriver, TIMEOUT as T, TIMEOUT_MS,
};
use vgpu_guest_tests::{bench, best_of, ensure, Check, Report};
use vgpuctl::{Gpu, Vgpu, VgpuType};

const IOVA: u64 = 0x1000_0000;
const DMA_BYTES: usize = 2 << 20;
/// A second buffer, mapped for device reads only.
const RO_IOVA: u64 = 0x2000_0000;
const RO_BYTES: usize = 0x10000;
/// How long the held-up vGPU's fault service sleeps (RM debugfs knob).
const HELD_UP_MS: u32 = 3000;
const UUID_A: &str = "0a0a0a0a-0000-4000-8000-00000000000a";
const UUID_B: &str = "0b0b0b0b-0000-4000-8000-00000000000b";

// ---- the parent's types -----------------------------------------------------

/// The mdev parent and the types it lists.
struct Parent {
    gpu: Gpu,
    types: Vec<VgpuType>,
}

const PARENT_CHECKS: &[Check<Parent>] = &[Check {
    name: "mdev: parent registered with types",
    run: parent_lists_types,
}];

/// The parent lists types, each a vfio-pci device whose description gives
/// its framebuffer and max_instances, with every instance available.
fn parent_lists_types(c: &mut Parent) -> Result<String, String> {
    c.types = c.gpu.types().map_err(|e| e.to_string())?;
    ensure!(!c.types.is_empty(), "no types");
    for t in &c.types {
        ensure!(
            t.device_api == "vfio-pci",
            "{} device_api {:?}",
            t.id,
            t.device_api
        );
        ensure!(
            t.desc_value("framebuffer").is_some() && t.desc_value("max_instances").is_some(),
            "{} description {:?}",
            t.id,
            t.description
        );
        let max: u32 = t
            .desc_value("max_instances")
            .unwrap()
            .parse()
            .map_err(|_| "max_instances")?;
        ensure!(
            t.available == max,
            "{}: available {} != max {}",
            t.id,
            t.available,
            max
        );
    }
    Ok(format!("{} types", c.types.len()))
}

// ---- the chosen types: create and remove --------------------------------------

/// The type the VFIO checks use and the one with the most instances.
struct Types {
    gpu: Gpu,
    /// The quarter-GPU type if there is one, else the one with most instances.
    ty: VgpuType,
    small: VgpuType,
}

impl Types {
    /// None when the parent lists no types.
    fn choose(p: Parent) -> Option<Self> {
        let ty = p
            .types
            .iter()
            .find(|t| max_instances(t) == 4)
            .or_else(|| p.types.iter().max_by_key(|t| max_instances(t)))?
            .clone();
        let small = p.types.iter().max_by_key(|t| max_instances(t))?.clone();
        Some(Self {
            gpu: p.gpu,
            ty,
            small,
        })
    }

    fn create_file(&self) -> PathBuf {
        self.gpu
            .path
            .join("mdev_supported_types")
            .join(&self.ty.id)
            .join("create")
    }
}

const TYPE_CHECKS: &[Check<Types>] = &[
    Check {
        name: "mdev: bad UUID, unknown type and over-creation are refused",
        run: bad_input_refused,
    },
    Check {
        name: "mdev: create and destroy the most vGPUs at once",
        run: most_vgpus_at_once,
    },
];

/// Write to a sysfs file, returning the errno name on failure.
fn sysfs_write(p: &Path, v: &str) -> Result<(), String> {
    std::fs::write(p, v).map_err(|e| format!("{:?}", e.kind()))
}

/// A malformed UUID, an unknown type and a creation beyond
/// available_instances are refused; available_instances counts down to 0
/// and back up as vGPUs come and go.
fn bad_input_refused(c: &mut Types) -> Result<String, String> {
    let (gpu, ty) = (&c.gpu, &c.ty);
    let e = sysfs_write(&c.create_file(), "not-a-uuid");
    ensure!(e.is_err(), "bad UUID accepted");
    let bad = e.unwrap_err();
    ensure!(
        vgpuctl::check_uuid("not-a-uuid").is_err(),
        "vgpuctl accepts a bad UUID"
    );
    let unknown = gpu.create("no-such-type", UUID_A);
    ensure!(unknown.is_err(), "unknown type accepted");
    let max = max_instances(ty);
    let mut made = Vec::new();
    for i in 0..max {
        let u = format!("0c0c0c0c-0000-4000-8000-{i:012x}");
        gpu.create(&ty.id, &u)
            .map_err(|e| format!("create {i}/{max}: {e}"))?;
        made.push(u);
    }
    let avail = gpu.find_type(&ty.id).map_err(|e| e.to_string())?.available;
    let over = sysfs_write(&c.create_file(), "0c0c0c0c-0000-4000-8000-ffffffffffff");
    for u in &made {
        Vgpu::destroy(u).map_err(|e| e.to_string())?;
    }
    ensure!(avail == 0, "available {avail} after creating max");
    ensure!(
        over.is_err(),
        "creation beyond available_instances accepted"
    );
    let after = gpu.find_type(&ty.id).map_err(|e| e.to_string())?.available;
    ensure!(
        after == max,
        "available {after} after removing all, want {max}"
    );
    Ok(format!(
        "bad uuid: {bad}; over-create: {}",
        over.unwrap_err()
    ))
}

/// As many vGPUs of the smallest type as it allows can be created at once
/// (and no more than 64 are tried), and all destroyed again.
fn most_vgpus_at_once(c: &mut Types) -> Result<String, String> {
    let (gpu, small) = (&c.gpu, &c.small);
    let t0 = Instant::now();
    let mut made = Vec::new();
    loop {
        let u = format!("0d0d0d0d-0000-4000-8000-{:012x}", made.len());
        if gpu.create(&small.id, &u).is_err() {
            break;
        }
        made.push(u);
        if made.len() > 64 {
            break;
        }
    }
    let n = made.len();
    for u in &made {
        Vgpu::destroy(u).map_err(|e| e.to_string())?;
    }
    let ms = t0.elapsed().as_secs_f64() * 1000.0 / n.max(1) as f64;
    ensure!(
        n as u32 == max_instances(small),
        "made {n}, type allows {}",
        max_instances(small)
    );
    bench("max_vgpus", n.to_string());
    bench("vgpu_create_destroy_ms", format!("{ms:.2}"));
    Ok(format!("{n} vGPUs of {}", small.id))
}

// ---- two vGPUs through VFIO -----------------------------------------------------

/// Two vGPUs of the chosen type opened through one container, sharing one
/// DMA buffer mapped at IOVA (by the DMA + MSI-X check).
struct Vfio {
    types: Types,
    container: Container,
    dma: DmaBuf,
    /// The read-only mapping's buffer (its check fails if there is none).
    ro: Result<DmaBuf, String>,
    /// Some until the removal checks close it.
    a: Option<VfioDriver>,
    b: Option<VfioDriver>,
    /// A's group, kept open to open A again after it was closed.
    group_a: File,
    /// B's group, open as long as the program runs (as before: only the
    /// device fd is closed by the removal check).
    _group_b: File,
    /// A's MSI-X vectors 0 (engine) and 1 (fault).
    efd: [EventFd; 2],
    /// A's display region, mapped as QEMU maps it: once, kept across flips.
    display_map: Option<memmap2::MmapRaw>,
}

/// Open one vGPU through the container with ring 0 in its VRAM.
fn open_vgpu(
    container: &Container,
    uuid: &str,
    first: bool,
    dma: DmaBuf,
) -> Result<(VfioDriver, File), String> {
    let (hw, group) = VfioVgpu::open(container, uuid, first, dma, IOVA)?;
    let g = Driver::new(hw);
    g.ring_in_vram(0, 0, 0, 64);
    Ok((g, group))
}

impl Vfio {
    /// Create and open the two vGPUs; a failure ends the program.
    fn open(types: Types, r: &Report) -> Self {
        let made = [UUID_A, UUID_B]
            .iter()
            .all(|u| types.gpu.create(&types.ty.id, u).is_ok());
        if !made {
            fatal("create the two test vGPUs");
        }
        let container =
            Container::open().unwrap_or_else(|e| fatal(format!("open /dev/vfio/vfio: {e}")));
        let dma = DmaBuf::new(DMA_BYTES)
            .unwrap_or_else(|e| fatal(format!("allocate the DMA buffer: {e}")));
        let ro = DmaBuf::new(RO_BYTES);
        let opened = open_vgpu(&container, UUID_A, true, dma)
            .and_then(|a| Ok((a, open_vgpu(&container, UUID_B, false, dma)?)));
        let ((a, group_a), (b, group_b)) = opened.unwrap_or_else(|e| {
            println!("FAIL open the vGPUs through VFIO: {e}");
            std::process::exit(r.finish().max(1));
        });
        let efd = [EventFd::new(), EventFd::new()];
        let [Ok(e0), Ok(e1)] = efd else {
            fatal("create the eventfds");
        };
        Self {
            types,
            container,
            dma,
            ro,
            a: Some(a),
            b: Some(b),
            group_a,
            _group_b: group_b,
            efd: [e0, e1],
            display_map: None,
        }
    }

    fn a(&self) -> &VfioDriver {
        self.a.as_ref().expect("vGPU A is open")
    }

    fn b(&self) -> &VfioDriver {
        self.b.as_ref().expect("vGPU B is open")
    }

    /// Both vGPUs' framebuffer (BAR2) size.
    fn fb(&self) -> u64 {
        self.a().hw.bar2.size
    }

    fn map_dma(&self) -> Result<(), String> {
        self.container
            .map_dma(self.dma.vaddr(0), IOVA, DMA_BYTES as u64)
            .map_err(|e| format!("MAP_DMA: {e}"))
    }
}

const VFIO_CHECKS: &[Check<Vfio>] = &[
    Check {
        name: "VFIO: device info, config space and regions",
        run: device_info_and_regions,
    },
    Check {
        name: "VFIO: register window through the trapped BAR0",
        run: register_window,
    },
    Check {
        name: "display: with the head off QUERY_GFX_PLANE shows no plane; region planes only",
        run: display_off,
    },
    Check {
        name: "display: the RM's default EDID is valid, 1024x768 preferred, link connected",
        run: display_default_edid,
    },
    Check {
        name:
            "display: a committed head is the plane; the display region reads and maps its pixels",
        run: display_shows_the_pattern,
    },
    Check {
        name: "display: a flip moves the display region to the new buffer after the vblank",
        run: display_flip,
    },
    Check {
        name: "display: an EDID and link state through the EDID region reach the window, HOTPLUG",
        run: display_edid_region,
    },
    Check {
        name:
            "display: bad plane queries, EDID sizes and offsets, mmaps past the region are refused",
        run: display_hostile,
    },
    Check {
        name: "display: a reset turns the head off, the plane is empty again",
        run: display_reset,
    },
    Check {
        name: "isolation: each vGPU sees only its own VRAM",
        run: vram_isolated,
    },
    Check {
        name: "DMA + MSI-X: engine work into VFIO-mapped memory, fence interrupt via eventfd",
        run: dma_and_msix,
    },
    Check {
        name:
            "faults: out-of-slice and unmapped DMA fault only the offender, with its fault vector",
        run: faults_hit_only_the_offender,
    },
    Check {
        name: "reset: VFIO_DEVICE_RESET recovers a faulted vGPU",
        run: reset_recovers,
    },
    Check {
        name: "DMA: a page the device read first takes a write later (a semaphore's page)",
        run: read_page_takes_a_write,
    },
    Check {
        name: "DMA: a read-only mapping is read, and a write to it faults SYSMEM_READ_ONLY",
        run: read_only_mapping,
    },
    Check {
        name:
            "translation faults: a vGPU whose fault service is held up does not stall another's DMA",
        run: held_up_fault_service,
    },
    Check {
        name: "DMA unmap under the vGPU's own writes: nothing is written once it returns",
        run: unmap_under_writes,
    },
    Check {
        name: "DMA unmap: pages dropped, later access faults",
        run: unmap_drops_pages,
    },
];

/// The device is a resettable PCI device with the regions and interrupts
/// of vfio-pci, its config space names the GPU, BAR0 is one window with
/// only the doorbell page mmap-able, BAR2 (VRAM) is mmap-able.
fn device_info_and_regions(c: &mut Vfio) -> Result<String, String> {
    let a = c.a();
    let d = &a.hw.dev;
    ensure!(
        d.flags & vfio::DEVICE_FLAGS_PCI != 0 && d.flags & vfio::DEVICE_FLAGS_RESET != 0,
        "flags {:#x}",
        d.flags
    );
    ensure!(
        d.num_regions >= 9 && d.num_irqs >= 3,
        "regions {} irqs {}",
        d.num_regions,
        d.num_irqs
    );
    let cfg = d.region(vfio::CONFIG_REGION).map_err(|e| e.to_string())?;
    let mut id = [0u8; 4];
    d.read(&cfg, 0, &mut id).map_err(|e| e.to_string())?;
    ensure!(id == [0x34, 0x12, 0x91, 0x76], "vendor/device {id:02x?}");
    ensure!(
        a.hw.bar0.size == WINDOW_STRIDE,
        "BAR0 size {:#x}",
        a.hw.bar0.size
    );
    let sparse = a.hw.bar0.sparse.clone().unwrap_or_default();
    ensure!(
        sparse == vec![(regs::DOORBELL_PAGE, 0x1000)],
        "BAR0 sparse mmap {sparse:x?}"
    );
    ensure!(
        a.hw.bar2.flags & vfio::REGION_FLAG_MMAP != 0,
        "BAR2 not mmap-able"
    );
    let want_fb = c.types.ty.desc_value("framebuffer").unwrap_or("?");
    let irqs = |index| d.irq_count(index).map_err(|e| e.to_string());
    ensure!(irqs(vfio::IRQ_MSIX)? == 2, "MSI-X vectors");
    ensure!(irqs(vfio::IRQ_MSI)? >= 1, "MSI");
    ensure!(irqs(vfio::IRQ_INTX)? == 1, "INTx");
    Ok(format!(
        "BAR2 {} MiB (type framebuffer {want_fb})",
        c.fb() >> 20
    ))
}

/// Through the trapped BAR0 each vGPU reads its own window: ID, VRAM size,
/// its own partition, IDLE, and a scratch register the other does not see.
fn register_window(c: &mut Vfio) -> Result<String, String> {
    let (a, b) = (c.a(), c.b());
    ensure!(
        a.reg(RegId::WId, 0, 0) == regs::WINDOW_MAGIC as u64,
        "ID {:#x}",
        a.reg(RegId::WId, 0, 0)
    );
    ensure!(a.reg(RegId::WVramSize, 0, 0) == c.fb(), "VRAM_SIZE");
    ensure!(
        a.reg(RegId::WIndex, 0, 0) != b.reg(RegId::WIndex, 0, 0),
        "same partition"
    );
    ensure!(a.state(0) == PartitionState::Idle, "state {}", a.state(0));
    a.set(RegId::WScratch, 0, 0, 0x5ca1ab1e);
    ensure!(
        a.reg(RegId::WScratch, 0, 0) == 0x5ca1ab1e && b.reg(RegId::WScratch, 0, 0) == 0,
        "scratch"
    );
    Ok(String::new())
}

// ---- the display head (issue 14) ----------------------------------------------

/// The test's mode: small, so the patterns cost little under TCG.
const DISP_W: u32 = 320;
const DISP_H: u32 = 200;
/// A stride with padding, as drivers often have.
const DISP_STRIDE: u32 = DISP_W * 4 + 256;
/// The two framebuffers (clear of the ring, the fences and the other
/// checks' VRAM until the reset check turns the head off).
const FB0: u64 = 0x10_0000;
const FB1: u64 = 0x20_0000;
/// vgpu-pci's display region type: vendor-specific, its vendor ID; and
/// VFIO_REGION_TYPE_GFX / SUBTYPE_GFX_EDID.
const DISPLAY_REGION_TYPE: (u32, u32) = (0x8000_0000 | 0x1234, 1);
const EDID_REGION_TYPE: (u32, u32) = (1, 1);
const LINK_UP: u32 = 1;
const LINK_DOWN: u32 = 2;

/// DISP_STATUS of `g`'s head.
fn disp_status(g: &VfioDriver) -> DispStatus {
    DispStatus::from_bits(g.reg(RegId::WDispStatus, 0, 0) as u32)
}

/// INTR_STATUS.HOTPLUG alone, as a mask.
fn hotplug_bit() -> u64 {
    PartIntr::new().with_hotplug(true).into_bits() as u64
}

/// The first `words` words of `g`'s DISP_EDID, as bytes.
fn disp_edid(g: &VfioDriver, words: usize) -> Vec<u8> {
    (0..words)
        .flat_map(|i| (g.reg(RegId::WDispEdid, 0, i) as u32).to_le_bytes())
        .collect()
}

/// The framebuffer's bytes: each pixel names its place and the buffer.
fn fb_pattern(salt: u32) -> Vec<u8> {
    let mut v = vec![0u8; (DISP_STRIDE * DISP_H) as usize];
    for y in 0..DISP_H {
        for x in 0..DISP_W {
            let at = (y * DISP_STRIDE + x * 4) as usize;
            let px = (y << 16 | x) ^ salt;
            v[at..at + 4].copy_from_slice(&px.to_le_bytes());
        }
    }
    v
}

/// Whether `got` shows the pattern: every pixel of every line (the
/// padding past each line is not the plane's).
fn shows(got: &[u8], want: &[u8]) -> bool {
    (0..DISP_H as usize).all(|y| {
        let line = y * DISP_STRIDE as usize..y * DISP_STRIDE as usize + DISP_W as usize * 4;
        got.get(line.clone()) == want.get(line)
    })
}

/// Program the head's pending state and commit it.
fn disp_commit(g: &VfioDriver, base: u64) {
    let mode = DispMode::new()
        .with_width(DISP_W as u16)
        .with_height(DISP_H as u16);
    g.set(RegId::WDispFormat, 0, 0, XRGB8888 as u64);
    g.set(RegId::WDispMode, 0, 0, mode.into_bits() as u64);
    g.set(RegId::WDispStride, 0, 0, DISP_STRIDE as u64);
    g.set(RegId::WDispBase, 0, 0, base);
    g.set(RegId::WDispCtrl, 0, 0, 1);
    g.set(RegId::WDispCommit, 0, 0, 1);
}

fn display_region(g: &VfioDriver) -> Result<(u32, vfio::Region), String> {
    g.hw.dev
        .find_region(DISPLAY_REGION_TYPE)
        .map_err(|e| format!("display region: {e}"))
}

fn edid_region(g: &VfioDriver) -> Result<vfio::Region, String> {
    g.hw.dev
        .find_region(EDID_REGION_TYPE)
        .map(|(_, r)| r)
        .map_err(|e| format!("EDID region: {e}"))
}

/// The errno of an io::Error, for the transcript.
fn errno(e: &std::io::Error) -> String {
    format!("{:?}", e.kind())
}

/// A fresh head is off: the primary plane is empty (QEMU shows nothing),
/// the display region is read-only, mmap-able and shows nothing yet; the
/// probes say region planes and no dma-buf.
fn display_off(c: &mut Vfio) -> Result<String, String> {
    let a = c.a();
    let d = &a.hw.dev;
    let plane = d
        .query_gfx_plane()
        .map_err(|e| format!("QUERY_GFX_PLANE: {e}"))?;
    ensure!(
        plane.drm_format == 0 && plane.size == 0,
        "head off, plane {plane:?}"
    );
    let probe = |flags| {
        let mut w = [0u32; vfio::plane::WORDS];
        w[vfio::plane::ARGSZ] = (vfio::plane::WORDS * 4) as u32;
        w[vfio::plane::FLAGS] = flags;
        d.query_gfx_plane_raw(&mut w).map(|_| ())
    };
    ensure!(
        probe(vfio::plane::TYPE_PROBE | vfio::plane::TYPE_REGION).is_ok(),
        "PROBE|REGION refused"
    );
    let dmabuf = probe(vfio::plane::TYPE_PROBE | vfio::plane::TYPE_DMABUF);
    ensure!(
        dmabuf.as_ref().err().and_then(|e| e.raw_os_error()) == Some(libc::EINVAL),
        "PROBE|DMABUF: {dmabuf:?}"
    );
    let (index, r) = display_region(a)?;
    ensure!(
        index == plane.region_index && index >= VFIO_PCI_NUM_REGIONS && d.num_regions > index,
        "display region {index}, plane says {}, {} regions",
        plane.region_index,
        d.num_regions
    );
    ensure!(
        r.flags & vfio::REGION_FLAG_MMAP != 0 && r.flags & REGION_FLAG_WRITE == 0,
        "display region flags {:#x}",
        r.flags
    );
    let mut b = [0u8; 64];
    let early = d.read(&r, 0, &mut b);
    ensure!(early.is_err(), "the display region read with nothing shown");
    Ok(format!(
        "display region {index}: {} KiB; dma-buf probe {}",
        r.size >> 10,
        errno(&dmabuf.unwrap_err())
    ))
}

/// The EDID a vGPU starts with: a valid base block (header, checksum,
/// version 1.4) whose first detailed timing, the preferred mode, is
/// 1024x768; the head reports the link connected.
fn display_default_edid(c: &mut Vfio) -> Result<String, String> {
    let a = c.a();
    let edid = disp_edid(a, 32);
    ensure!(
        edid[..8] == [0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0],
        "header {:02x?}",
        &edid[..8]
    );
    let sum = edid.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    ensure!(sum == 0, "checksum: the block sums to {sum:#x}");
    ensure!(
        edid[18] == 1 && edid[19] == 4,
        "version {}.{}",
        edid[18],
        edid[19]
    );
    let dtd = &edid[54..72];
    let hactive = dtd[2] as u32 | ((dtd[4] as u32) >> 4) << 8;
    let vactive = dtd[5] as u32 | ((dtd[7] as u32) >> 4) << 8;
    let clock_khz = u16::from_le_bytes([dtd[0], dtd[1]]) as u32 * 10;
    ensure!(
        (hactive, vactive, clock_khz) == (1024, 768, 65000),
        "preferred mode {hactive}x{vactive} at {clock_khz} kHz"
    );
    let st = disp_status(a);
    ensure!(st.connected(), "DISP_STATUS {st:?}");
    Ok(format!("{hactive}x{vactive}, {clock_khz} kHz"))
}

/// The test draws a pattern through BAR2, programs the head through BAR0
/// and commits: the plane is that mode, and the display region (read and
/// mapped, as QEMU maps it) shows exactly the pattern.
fn display_shows_the_pattern(c: &mut Vfio) -> Result<String, String> {
    let a = c.a();
    let want = fb_pattern(0);
    a.hw.vram_write(FB0, &want);
    disp_commit(a, FB0);
    let st = disp_status(a);
    ensure!(st.active(), "head not active: DISP_STATUS {st:?}");
    let p = a.hw.dev.query_gfx_plane().map_err(|e| e.to_string())?;
    let size = (DISP_STRIDE * DISP_H).next_multiple_of(4096);
    ensure!(
        (p.drm_format, p.width, p.height, p.stride, p.size)
            == (XRGB8888, DISP_W, DISP_H, DISP_STRIDE, size),
        "plane {p:?}"
    );
    let (index, r) = display_region(a)?;
    ensure!(p.region_index == index, "plane region {}", p.region_index);
    let mut got = vec![0u8; want.len()];
    a.hw.dev
        .read(&r, 0, &mut got)
        .map_err(|e| format!("read: {e}"))?;
    ensure!(shows(&got, &want), "read() of the display region differs");
    let map =
        a.hw.dev
            .mmap_read_only(&r, 0, r.size as usize)
            .map_err(|e| format!("mmap: {e}"))?;
    // SAFETY: want.len() <= p.size <= r.size, inside the mapping.
    let mapped = unsafe { std::slice::from_raw_parts(map.as_ptr(), want.len()) };
    ensure!(shows(mapped, &want), "the mapped display region differs");
    c.display_map = Some(map);
    Ok(format!("{}x{} stride {}", p.width, p.height, p.stride))
}

/// A commit of another base while the head shows one is a flip: pending
/// until the next vblank, then the plane query moves the display region,
/// and the mapping taken before the flip shows the new buffer.
fn display_flip(c: &mut Vfio) -> Result<String, String> {
    let a = c.a();
    let want = fb_pattern(0x00ff_00ff);
    a.hw.vram_write(FB1, &want);
    a.set(RegId::WDispBase, 0, 0, FB1);
    a.set(RegId::WDispCommit, 0, 0, 1);
    let t0 = Instant::now();
    while disp_status(a).flip_pending() {
        ensure!(t0.elapsed() < T, "FLIP_PENDING did not clear");
        std::thread::sleep(Duration::from_millis(5));
    }
    let base = a.reg(RegId::WDispActiveBase, 0, 0);
    ensure!(base == FB1, "ACTIVE_BASE {base:#x} after the flip");
    let p = a.hw.dev.query_gfx_plane().map_err(|e| e.to_string())?;
    ensure!(p.drm_format == XRGB8888 && p.size > 0, "plane {p:?}");
    let map = c
        .display_map
        .as_ref()
        .ok_or("no mapping from the last check")?;
    // SAFETY: as in display_shows_the_pattern: inside the mapping.
    let mapped = unsafe { std::slice::from_raw_parts(map.as_ptr(), want.len()) };
    ensure!(
        shows(mapped, &want),
        "the mapping still shows the old buffer"
    );
    let (_, r) = display_region(a)?;
    let mut got = vec![0u8; want.len()];
    a.hw.dev.read(&r, 0, &mut got).map_err(|e| e.to_string())?;
    ensure!(shows(&got, &want), "read() still shows the old buffer");
    Ok(String::new())
}

fn edid_reg(g: &VfioDriver, r: &vfio::Region, off: u64) -> Result<u32, String> {
    let mut b = [0u8; 4];
    g.hw.dev
        .read(r, off, &mut b)
        .map_err(|e| format!("EDID region read {off:#x}: {e}"))?;
    Ok(u32::from_le_bytes(b))
}

fn edid_reg_set(g: &VfioDriver, r: &vfio::Region, off: u64, v: u32) -> std::io::Result<()> {
    g.hw.dev.write(r, off, &v.to_le_bytes())
}

/// The VMM's EDID update (link down, size and blob, link up) through the
/// EDID region: the window's DISP_EDID holds the blob (the rest zero),
/// DISP_STATUS says connected and INTR_STATUS.HOTPLUG is set.
fn display_edid_region(c: &mut Vfio) -> Result<String, String> {
    let a = c.a();
    let r = edid_region(a)?;
    let (blob_at, max, xres, yres) = (
        edid_reg(a, &r, 0)?,
        edid_reg(a, &r, 4)?,
        edid_reg(a, &r, 12)?,
        edid_reg(a, &r, 16)?,
    );
    ensure!(
        max == 256 && xres > 0 && yres > 0,
        "max {max} res {xres}x{yres}"
    );
    a.set(RegId::WIntrStatus, 0, 0, hotplug_bit());
    let before = a.reg(RegId::WIntrStatus, 0, 0);
    ensure!(
        before & hotplug_bit() == 0,
        "HOTPLUG not cleared: {before:#x}"
    );
    let blob: Vec<u8> = (0..128u32).map(|i| (i * 7 + 1) as u8).collect();
    let step = |what: &str, res: std::io::Result<()>| res.map_err(|e| format!("{what}: {e}"));
    step("link down", edid_reg_set(a, &r, 20, LINK_DOWN))?;
    step("edid_size", edid_reg_set(a, &r, 8, blob.len() as u32))?;
    step("blob", a.hw.dev.write(&r, blob_at as u64, &blob))?;
    step("link up", edid_reg_set(a, &r, 20, LINK_UP))?;
    let shown = disp_edid(a, 64);
    ensure!(shown[..128] == blob[..], "DISP_EDID differs from the blob");
    ensure!(
        shown[128..].iter().all(|&b| b == 0),
        "DISP_EDID past the blob not zero"
    );
    let intr = a.reg(RegId::WIntrStatus, 0, 0);
    ensure!(
        intr & hotplug_bit() != 0,
        "no HOTPLUG: INTR_STATUS {intr:#x}"
    );
    let st = disp_status(a);
    ensure!(st.connected(), "not connected: {st:?}");
    ensure!(edid_reg(a, &r, 20)? == LINK_UP, "link_state");
    Ok(format!("max_xres {xres} max_yres {yres}"))
}

/// Hostile inputs get errors, never a crash: a plane query with a short
/// argsz, no type, dma-buf or an unknown plane type; an EDID bigger than
/// the blob, a blob write past it, a short or misaligned register access,
/// a write to a read-only register, a bad link state; reads and mmaps past
/// the display region and a writable mapping of it.
fn display_hostile(c: &mut Vfio) -> Result<String, String> {
    let a = c.a();
    let d = &a.hw.dev;
    let mut refused = Vec::new();
    let mut expect = |what: &str, res: std::io::Result<()>| -> Result<(), String> {
        match res {
            Ok(()) => Err(format!("{what}: accepted")),
            Err(e) => {
                refused.push(format!("{what}: {}", errno(&e)));
                Ok(())
            }
        }
    };
    let query = |argsz: u32, flags: u32, ty: u32| {
        let mut w = [0u32; vfio::plane::WORDS];
        w[vfio::plane::ARGSZ] = argsz;
        w[vfio::plane::FLAGS] = flags;
        w[vfio::plane::PLANE_TYPE] = ty;
        d.query_gfx_plane_raw(&mut w).map(|_| ())
    };
    let full = (vfio::plane::WORDS * 4) as u32;
    expect(
        "plane argsz 8",
        query(8, vfio::plane::TYPE_REGION, vfio::plane::PRIMARY),
    )?;
    expect("plane flags 0", query(full, 0, vfio::plane::PRIMARY))?;
    expect(
        "plane dma-buf",
        query(full, vfio::plane::TYPE_DMABUF, vfio::plane::PRIMARY),
    )?;
    expect("plane type 7", query(full, vfio::plane::TYPE_REGION, 7))?;
    let r = edid_region(a)?;
    let blob_at = edid_reg(a, &r, 0)? as u64;
    expect("edid_size 257", edid_reg_set(a, &r, 8, 257))?;
    expect("blob past its end", d.write(&r, blob_at + 250, &[0u8; 16]))?;
    expect("2-byte register write", d.write(&r, 8, &[1, 0]))?;
    expect("misaligned register", edid_reg_set(a, &r, 9, 1))?;
    expect("write max_xres", edid_reg_set(a, &r, 12, 1))?;
    expect("link_state 3", edid_reg_set(a, &r, 20, 3))?;
    expect("EDID region past its end", d.write(&r, r.size, &[0u8; 4]))?;
    let (_, fb) = display_region(a)?;
    let mut b = [0u8; 8];
    expect("read past the display region", d.read(&fb, fb.size, &mut b))?;
    expect(
        "mmap past the display region",
        d.mmap_read_only(&fb, fb.size, 4096).map(|_| ()),
    )?;
    expect("writable mmap", d.mmap(&fb, 0, 4096).map(|_| ()))?;
    ensure!(
        edid_reg(a, &r, 8)? == 128,
        "edid_size changed by the refused writes"
    );
    Ok(refused.join("; "))
}

/// VFIO_DEVICE_RESET turns the head off: the plane is empty, the EDID and
/// link (host settings) stay. The mapping of the display region is let go,
/// and ring 0 set up again for the checks that follow.
fn display_reset(c: &mut Vfio) -> Result<String, String> {
    c.display_map = None;
    let a = c.a();
    reset_vgpu(a)?;
    let st = disp_status(a);
    ensure!(
        !st.active() && st.connected(),
        "DISP_STATUS {st:?} after reset"
    );
    let p = a.hw.dev.query_gfx_plane().map_err(|e| e.to_string())?;
    ensure!(p.drm_format == 0 && p.size == 0, "plane {p:?} after reset");
    Ok(String::new())
}

/// The same offset of the two vGPUs' mmap'ed VRAM holds what each wrote.
fn vram_isolated(c: &mut Vfio) -> Result<String, String> {
    let (a, b, fb) = (c.a(), c.b(), c.fb());
    a.hw.vram_write(fb - 4096, &[0xaa; 4096]);
    b.hw.vram_write(fb - 4096, &[0xbb; 4096]);
    let (mut x, mut y) = ([0u8; 4096], [0u8; 4096]);
    a.hw.vram_read(fb - 4096, &mut x);
    b.hw.vram_read(fb - 4096, &mut y);
    ensure!(
        x == [0xaa; 4096] && y == [0xbb; 4096],
        "VRAM patterns mixed"
    );
    Ok(String::new())
}

/// With MSI-X routed to eventfds and the buffer mapped, FILL, COPY into
/// system memory, CRC32 of it and a fence with an interrupt all land, and
/// the engine vector's eventfd fires.
fn dma_and_msix(c: &mut Vfio) -> Result<String, String> {
    let a = c.a();
    a.hw.dev
        .set_irq_eventfds(vfio::IRQ_MSIX, &[c.efd[0].raw(), c.efd[1].raw()])
        .map_err(|e| format!("SET_IRQS: {e}"))?;
    c.map_dma()?;
    let mask = PartIntr::new().with_fence(true).with_fault(true);
    a.set(RegId::WIntrMask, 0, 0, mask.into_bits() as u64);
    a.submit(
        0,
        0,
        &[
            Command::fill(Loc::Vram(0x10000), 0x10000, 0x600d_f00d),
            Command::copy(Loc::Sys(IOVA + 0x1000), Loc::Vram(0x10000), 0x10000),
            Command::crc32(Loc::Sys(IOVA + 0x20000), Loc::Sys(IOVA + 0x1000), 0x10000),
            Command::fence(Loc::Sys(IOVA + 0x20008), 42, true),
        ],
    );
    let n = c.efd[0].wait(TIMEOUT_MS);
    let st = a.wait_not_busy(0, T);
    ensure!(
        n >= 1,
        "no interrupt on the eventfd (state {}, fault {})",
        st,
        fault_code(a)
    );
    ensure!(
        st == PartitionState::Idle,
        "state {} fault {}",
        st,
        fault_code(a)
    );
    ensure!(sys_u64(a, IOVA + 0x20008) == 42, "fence not in memory");
    let mut data = vec![0u8; 0x10000];
    a.hw.sys_read(IOVA + 0x1000, &mut data);
    ensure!(
        data.chunks(4).all(|c| c == 0x600d_f00du32.to_le_bytes()),
        "copied data"
    );
    ensure!(
        sys_u64(a, IOVA + 0x20000) == crc32fast::hash(&data) as u64,
        "crc"
    );
    Ok(String::new())
}

/// B copying from past its slice faults VRAM_OUT_OF_BOUNDS and leaves A
/// alone; A writing an unmapped IOVA faults XLATE_CANCELLED and fires its
/// fault vector.
fn faults_hit_only_the_offender(c: &mut Vfio) -> Result<String, String> {
    let (a, b, fb) = (c.a(), c.b(), c.fb());
    b.submit(0, 0, &[Command::copy(Loc::Vram(fb), Loc::Vram(0), 64)]);
    let st = b.wait_not_busy(0, T);
    ensure!(
        st == PartitionState::Faulted && fault_code(b) == FaultCode::VramOutOfBounds,
        "B: {} {}",
        st,
        fault_code(b)
    );
    ensure!(
        a.state(0) == PartitionState::Idle,
        "A disturbed: {}",
        a.state(0)
    );
    a.submit(
        0,
        0,
        &[Command::fence(Loc::Sys(IOVA + 0x4000_0000), 1, false)],
    );
    let n = c.efd[1].wait(TIMEOUT_MS);
    let st = a.wait_not_busy(0, T);
    ensure!(st == PartitionState::Faulted, "A: {}", st);
    ensure!(
        fault_code(a) == FaultCode::XlateCancelled,
        "A fault {}",
        fault_code(a)
    );
    ensure!(n >= 1, "no fault interrupt");
    Ok(String::new())
}

/// VFIO_DEVICE_RESET brings both faulted vGPUs back to IDLE without rings;
/// A then runs a fence with an interrupt, and its VRAM survived the reset.
fn reset_recovers(c: &mut Vfio) -> Result<String, String> {
    let (a, b, fb) = (c.a(), c.b(), c.fb());
    for g in [a, b] {
        g.hw.dev.reset().map_err(|e| format!("reset: {e}"))?;
        ensure!(g.state(0) == PartitionState::Idle, "state {}", g.state(0));
        ensure!(g.reg(RegId::WRingSize, 0, 0) == 0, "ring kept");
        g.forget_rings(0);
        g.ring_in_vram(0, 0, 0, 64);
    }
    let mask = PartIntr::new().with_fence(true);
    a.set(RegId::WIntrMask, 0, 0, mask.into_bits() as u64);
    a.submit(0, 0, &[Command::fence(Loc::Vram(0x8000), 5, true)]);
    ensure!(c.efd[0].wait(TIMEOUT_MS) >= 1, "no interrupt after reset");
    ensure!(vram_u64(a, 0x8000) == 5, "fence");
    ensure!(
        vram_u64(a, fb - 8) == 0xaaaa_aaaa_aaaa_aaaa,
        "VRAM lost on reset"
    );
    Ok(String::new())
}

/// A semaphore wait reads a page first (pinned for reading); a fence then
/// writes the same page, which must be re-translated writable, not fault.
fn read_page_takes_a_write(c: &mut Vfio) -> Result<String, String> {
    let a = c.a();
    let page = IOVA + 0x30000;
    a.submit(
        0,
        0,
        &[
            Command::sem_wait(Loc::Sys(page), 0),
            Command::fence(Loc::Sys(page + 8), 7, false),
        ],
    );
    let st = a.wait_settled(0, T);
    ensure!(
        st == PartitionState::Idle,
        "state {} fault {}",
        st,
        fault_code(a)
    );
    ensure!(sys_u64(a, page + 8) == 7, "fence not in memory");
    Ok(String::new())
}

/// VFIO_DEVICE_RESET, then the ring bookkeeping and ring 0 again.
fn reset_vgpu(g: &VfioDriver) -> Result<(), String> {
    g.hw.dev.reset().map_err(|e| format!("reset: {e}"))?;
    g.forget_rings(0);
    g.ring_in_vram(0, 0, 0, 64);
    Ok(())
}

/// A buffer mapped for device reads only is read into VRAM exactly; writes
/// to it fault (see [`read_only_faults`]) and leave it unchanged.
fn read_only_mapping(c: &mut Vfio) -> Result<String, String> {
    let ro = *c.ro.as_ref().map_err(|e| format!("buffer: {e}"))?;
    let pattern: Vec<u8> = (0..RO_BYTES).map(|i| (i * 7 + 3) as u8).collect();
    ro.write(0, &pattern);
    c.container
        .map_dma_read_only(ro.vaddr(0), RO_IOVA, RO_BYTES as u64)
        .map_err(|e| format!("MAP_DMA read-only: {e}"))?;
    let res = read_only_faults(c.a(), &pattern);
    c.container
        .unmap_dma(RO_IOVA, RO_BYTES as u64)
        .map_err(|e| format!("UNMAP_DMA: {e}"))?;
    res?;
    let mut now = vec![0u8; RO_BYTES];
    ro.read(0, &mut now);
    ensure!(now == pattern, "the device wrote the read-only mapping");
    Ok(String::new())
}

/// `a` reads the read-only mapping at RO_IOVA (holding `pattern`), then
/// writes a page it read and one it never touched: each faults with
/// SYSMEM_READ_ONLY, reported in the window's FAULT_STATUS and FAULT_ADDR.
fn read_only_faults(a: &VfioDriver, pattern: &[u8]) -> Result<(), String> {
    let len = 0x2000;
    a.submit(
        0,
        0,
        &[Command::copy(Loc::Vram(0x40000), Loc::Sys(RO_IOVA), len)],
    );
    let st = a.wait_settled(0, T);
    ensure!(
        st == PartitionState::Idle,
        "read: state {} fault {}",
        st,
        fault_code(a)
    );
    let mut got = vec![0u8; len as usize];
    a.hw.vram_read(0x40000, &mut got);
    ensure!(got[..] == pattern[..len as usize], "read: VRAM differs");
    for (what, off) in [
        ("a page it read", 0x1000),
        ("a page it never touched", 0x8000),
    ] {
        let at = RO_IOVA + off;
        a.submit(0, 0, &[Command::fence(Loc::Sys(at), 0xbad, false)]);
        let st = a.wait_settled(0, T);
        let fs = FaultStatus::from_bits(a.reg(RegId::WFaultStatus, 0, 0) as u32);
        let addr = a.reg(RegId::WFaultAddr, 0, 0);
        reset_vgpu(a)?;
        ensure!(
            st == PartitionState::Faulted
                && fs.code() == FaultCode::SysmemReadOnly
                && fs.write()
                && addr == at,
            "write to {what}: state {} fault {} write {} at {addr:#x}",
            st,
            fs.code(),
            fs.write()
        );
    }
    Ok(())
}

/// Hold up the translation-fault service of the vGPU on partition `p` by
/// `ms` before each fault (vgpu_rm's debugfs knob; 0 turns it off).
fn hold_up_faults(gpu: &Gpu, p: u64, ms: u32) -> Result<(), String> {
    let knob = Path::new(vgpuctl::RM_DEBUGFS)
        .join(&gpu.name)
        .join("xlate_delay_ms");
    std::fs::write(&knob, format!("{p} {ms}")).map_err(|e| format!("{}: {e}", knob.display()))
}

/// With A's fault service held up, B's translation fault is serviced while
/// A still waits (see [`neighbour_fault`]), and A finishes afterwards.
fn held_up_fault_service(c: &mut Vfio) -> Result<String, String> {
    let (a, b) = (c.a(), c.b());
    let pa = a.reg(RegId::WIndex, 0, 0);
    hold_up_faults(&c.types.gpu, pa, HELD_UP_MS)?;
    let res = neighbour_fault(a, b);
    hold_up_faults(&c.types.gpu, pa, 0)?;
    let ms = res?;
    let st = a.wait_settled(0, T);
    ensure!(
        st == PartitionState::Idle && sys_u64(a, IOVA + 0x50000) == 0xa,
        "the held-up vGPU did not finish: {} fault {}",
        st,
        fault_code(a)
    );
    bench("xlate_fault_beside_held_up_ms", format!("{ms:.1}"));
    Ok(String::new())
}

/// `a`'s fault service is held up: `a` faults, then `b` faults and must be
/// serviced (its fence in memory) while `a` still waits. Returns how long
/// `b` took, in milliseconds.
fn neighbour_fault(a: &VfioDriver, b: &VfioDriver) -> Result<f64, String> {
    a.submit(
        0,
        0,
        &[Command::fence(Loc::Sys(IOVA + 0x50000), 0xa, false)],
    );
    let st = a.wait_not_busy(0, T);
    ensure!(
        st == PartitionState::XlateWait,
        "the held-up vGPU: state {}",
        st
    );
    let t0 = Instant::now();
    b.submit(
        0,
        0,
        &[Command::fence(Loc::Sys(IOVA + 0x51000), 0xb, false)],
    );
    let st = b.wait_settled(0, T);
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    let a_state = a.state(0);
    ensure!(
        st == PartitionState::Idle && sys_u64(b, IOVA + 0x51000) == 0xb,
        "the other vGPU: state {} fault {} after {ms:.0} ms",
        st,
        fault_code(b)
    );
    ensure!(
        a_state == PartitionState::XlateWait,
        "the other vGPU's fault was serviced only after the held-up one ({ms:.0} ms; held-up vGPU {})",
        a_state
    );
    Ok(ms)
}

/// The buffer unmapped while A copies into it (see [`unmap_in_flight`]);
/// then mapped again and A reset for what follows.
fn unmap_under_writes(c: &mut Vfio) -> Result<String, String> {
    let res = unmap_in_flight(&c.container, c.a());
    c.container
        .map_dma(c.dma.vaddr(0), IOVA, DMA_BYTES as u64)
        .map_err(|e| format!("MAP_DMA again: {e}"))?;
    reset_vgpu(c.a())?;
    res
}

/// `a` copies VRAM into the whole DMA buffer again and again (every page
/// pinned writable first) while the test unmaps the buffer: once the unmap
/// returns, no byte of it may change.
///
/// The second half of the copies waits behind a `SEM_WAIT` on a word in
/// VRAM that the test releases only once the unmap has returned, so the
/// unmap always lands with writes to the buffer still queued (the engine
/// either in the first half's copies or stopped at the gate, its
/// translations cached), however fast the engine or slow the vCPU: a run
/// can no longer find every copy done before the unmap and test nothing.
fn unmap_in_flight(container: &Container, a: &VfioDriver) -> Result<String, String> {
    const COPIES: u64 = 62;
    const BEFORE_GATE: u64 = COPIES / 2;
    let len = DMA_BYTES as u64;
    let (vx, vy, gate) = (0x40_0000, 0x60_0000, 0x80_0000);
    a.hw.vram_write(gate, &0u64.to_le_bytes());
    a.submit(
        0,
        0,
        &[
            Command::fill(Loc::Vram(vx), len, 0x1111_1111),
            Command::fill(Loc::Vram(vy), len, 0x2222_2222),
            Command::copy(Loc::Sys(IOVA), Loc::Vram(vx), len),
        ],
    );
    let st = a.wait_settled(0, T);
    ensure!(
        st == PartitionState::Idle,
        "pinning the buffer: state {} fault {}",
        st,
        fault_code(a)
    );
    let before = a.reg(RegId::WStatCommands, 0, 0);
    let copy = |i: u64| {
        Command::copy(
            Loc::Sys(IOVA),
            Loc::Vram(if i.is_multiple_of(2) { vy } else { vx }),
            len,
        )
    };
    let mut work: Vec<Command> = (0..BEFORE_GATE).map(copy).collect();
    work.push(Command::sem_wait(Loc::Vram(gate), 1));
    work.extend((BEFORE_GATE..COPIES).map(copy));
    a.submit(0, 0, &work);
    let busy = a.state(0) == PartitionState::Busy;
    let unmapped = container.unmap_dma(IOVA, len);
    // Counted before the gate opens: what ran while the unmap was under way.
    let done = a.reg(RegId::WStatCommands, 0, 0) - before;
    let mut then = vec![0u8; DMA_BYTES];
    a.hw.sys_read(IOVA, &mut then);
    a.hw.vram_write(gate, &1u64.to_le_bytes());
    unmapped.map_err(|e| format!("UNMAP_DMA: {e}"))?;
    let st = a.wait_settled(0, T);
    let mut now = vec![0u8; DMA_BYTES];
    a.hw.sys_read(IOVA, &mut now);
    let changed = then.iter().zip(&now).filter(|(x, y)| x != y).count();
    ensure!(
        busy && done <= BEFORE_GATE,
        "the gate did not hold the copies back ({done} of {COPIES} done, busy {busy}): nothing tested"
    );
    ensure!(
        changed == 0,
        "{changed} bytes written after the unmap returned ({done} of {COPIES} copies done by then)"
    );
    ensure!(
        st == PartitionState::Faulted && fault_code(a) == FaultCode::XlateCancelled,
        "after the unmap: state {} fault {}",
        st,
        fault_code(a)
    );
    bench("unmap_in_flight_copies_done", done);
    Ok(String::new())
}

/// After VFIO_IOMMU_UNMAP_DMA the device's write to a page it wrote before
/// faults and does not land.
fn unmap_drops_pages(c: &mut Vfio) -> Result<String, String> {
    let a = c.a();
    a.submit(0, 0, &[Command::fence(Loc::Sys(IOVA + 0x3000), 9, false)]);
    ensure!(a.wait_settled(0, T) == PartitionState::Idle, "before unmap");
    c.container
        .unmap_dma(IOVA, DMA_BYTES as u64)
        .map_err(|e| format!("UNMAP_DMA: {e}"))?;
    a.submit(0, 0, &[Command::fence(Loc::Sys(IOVA + 0x3000), 10, false)]);
    let st = a.wait_settled(0, T);
    ensure!(st == PartitionState::Faulted, "after unmap: {}", st);
    ensure!(sys_u64(a, IOVA + 0x3000) == 9, "device wrote after unmap");
    a.hw.dev.reset().map_err(|e| e.to_string())?;
    Ok(String::new())
}

/// Benchmarks, not checks: a trapped register read against one of the PF's
/// BAR mapped directly, and VRAM writes through the mmap against memcpy.
fn benchmarks(c: &Vfio) {
    let a = c.a();
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(a.reg(RegId::WStatus, 0, 0));
    }
    let trapped = t.elapsed().as_nanos() as f64 / n as f64;
    let pf = vgpu_guest_tests::PciDev::find(vdevice::pci::VENDOR_ID, vdevice::pci::DEVICE_ID)
        .and_then(|d| d.map_bar(0, false));
    match pf {
        Ok(bar) => {
            let off = regs::offset_of(RegId::WStatus, a.reg(RegId::WIndex, 0, 0) as usize, 0);
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(bar.read(off, 4));
            }
            let direct = t.elapsed().as_nanos() as f64 / n as f64;
            bench("vgpu_reg_read_ns", format!("{trapped:.0}"));
            bench("pf_reg_read_ns", format!("{direct:.0}"));
            bench("vgpu_reg_read_vs_pf", format!("{:.2}", trapped / direct));
        }
        Err(e) => println!("FAIL map the PF BAR for vgpu_reg_read_vs_pf: {e}"),
    }
    let len = (c.fb() as usize).min(16 << 20);
    let src = vec![0x3cu8; len];
    let mut dst = vec![0u8; len];
    let ram = best_of(3, || dst.copy_from_slice(std::hint::black_box(&src)));
    let vram = best_of(3, || a.hw.vram_write(0, std::hint::black_box(&src)));
    bench("vgpu_vram_mmap_vs_memcpy", format!("{:.3}", ram / vram));
}

// ---- removal ----------------------------------------------------------------------

const CLOSE_CHECKS: &[Check<Vfio>] = &[
    Check {
        name: "mdev: removing an open vGPU waits for the user to close it",
        run: removal_waits_for_close,
    },
    Check {
        name: "VFIO: the next user of a closed vGPU finds its VRAM scrubbed",
        run: closed_vgpu_scrubbed,
    },
    Check {
        name: "mdev: all vGPUs gone, every instance available again",
        run: all_gone,
    },
];

/// Removing B while it is open blocks until the test closes B, then B is
/// gone.
fn removal_waits_for_close(c: &mut Vfio) -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(Vgpu::destroy(UUID_B).map_err(|e| e.to_string()));
    });
    std::thread::sleep(Duration::from_millis(300));
    ensure!(rx.try_recv().is_err(), "removed while open");
    drop(c.b.take());
    let res = rx
        .recv_timeout(T)
        .map_err(|_| "remove did not finish after close")?;
    res?;
    ensure!(Vgpu::get(UUID_B).is_err(), "still listed");
    Ok(String::new())
}

/// A wrote patterns into its VRAM (isolation check, benchmark); closing the
/// device must scrub it for whoever opens this vGPU next.
fn closed_vgpu_scrubbed(c: &mut Vfio) -> Result<String, String> {
    drop(c.a.take());
    let dev = Device::open(&c.group_a, UUID_A).map_err(|e| format!("reopen: {e}"))?;
    let bar2 = dev.region(2).map_err(|e| format!("BAR2 info: {e}"))?;
    let vram = dev
        .mmap(&bar2, 0, bar2.size as usize)
        .map_err(|e| format!("BAR2 mmap: {e}"))?;
    let len = vram.len();
    for off in [0, len / 2, len - 4096] {
        let mut page = [0u8; 4096];
        // SAFETY: off + 4096 <= len, inside the mapping.
        unsafe { std::ptr::copy_nonoverlapping(vram.as_ptr().add(off), page.as_mut_ptr(), 4096) };
        ensure!(
            page.iter().all(|&x| x == 0),
            "VRAM at {off:#x} still holds the last user's data"
        );
    }
    Ok(String::new())
}

/// Once A is destroyed too no vGPU is left and the type has every instance
/// available again.
fn all_gone(c: &mut Vfio) -> Result<String, String> {
    let _ = Vgpu::destroy(UUID_A);
    ensure!(
        Vgpu::all().map_err(|e| e.to_string())?.is_empty(),
        "vGPUs left"
    );
    let ty = &c.types.ty;
    let t = c.types.gpu.find_type(&ty.id).map_err(|e| e.to_string())?;
    ensure!(
        t.available == max_instances(ty),
        "available {}",
        t.available
    );
    Ok(String::new())
}

/// The command line: nothing but --help.
fn parse_args() -> Result<(), lexopt::Error> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    if let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => {
                println!("usage: vgpu-vfio-test\n{}", USAGE);
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(())
}

const USAGE: &str = "Runs as root in L1 with vgpu_rm and vgpu_vfio loaded; takes no arguments.";

fn main() {
    if let Err(e) = parse_args() {
        eprintln!("vgpu-vfio-test: {e}\nusage: vgpu-vfio-test\n{USAGE}");
        std::process::exit(2);
    }
    let mut r = Report::default();
    let gpu = Gpu::find(None).unwrap_or_else(|e| fatal(format!("find an mdev parent: {e}")));
    let mut parent = Parent { gpu, types: vec![] };
    r.run(&mut parent, PARENT_CHECKS);
    for t in &parent.types {
        println!(
            "type {} name=\"{}\" {} available={}",
            t.id, t.name, t.description, t.available
        );
    }
    let Some(mut types) = Types::choose(parent) else {
        std::process::exit(r.finish());
    };
    r.run(&mut types, TYPE_CHECKS);
    let mut v = Vfio::open(types, &r);
    r.run(&mut v, VFIO_CHECKS);
    benchmarks(&v);
    r.run(&mut v, CLOSE_CHECKS);
    std::process::exit(r.finish());
}
