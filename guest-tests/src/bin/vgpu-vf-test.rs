//! vgpu-vf-test: SR-IOV VFs assigned through VFIO. Runs as root in L1 on a
//! GPU in SR-IOV mode (`-device vgpu-pci,...,sriov_vfs=N`, SPEC section 15)
//! behind a virtual IOMMU (`intel_iommu=on`): enables the VFs on the PF,
//! gives partitions 0 and 1 slices of different sizes through the PF's
//! partition table, binds VF0 and VF1 to vfio-pci and then drives each VF
//! as a VMM does that assigns it to a guest: its own type1 container, DMA
//! buffers mapped with VFIO_IOMMU_MAP_DMA, a ring in its VRAM (BAR2,
//! mmap'ed), commands whose system-memory addresses are IOVAs (no device
//! translation on a VF: the platform IOMMU translates them), MSI-X through
//! eventfds, a DMA the IOMMU refuses (only that VF's partition faults, with
//! DMA_ERROR) and FLR through VFIO_DEVICE_RESET. Prints a transcript and
//! exits non-zero on any failure.
//!
//! Usage: vgpu-vf-test [--no-refused-dma]
//!
//! Run in L1 (from the repository; vf-run.sh adds IOMMU and lspci views):
//!
//! ```sh
//! B=target/x86_64-unknown-linux-gnu/release
//! RUSTFLAGS="-C target-feature=+crt-static" cargo build --release \
//!     --target x86_64-unknown-linux-gnu -p vgpu-guest-tests
//! IMAGES=$(LINK_CURRENT=0 MODULES="vfio vfio_iommu_type1 vfio-pci mdev pci-pf-stub" \
//!     scripts/build-images.sh $B/vgpu-vf-test:/bin/vgpu-vf-test \
//!     guest-tests/vf-run.sh:/bin/vf-run.sh) \
//! RUN=/bin/vf-run.sh ACCEL=tcg SMP=1 APPEND=intel_iommu=on scripts/run-l1.sh -M q35 \
//!     -device intel-iommu,caching-mode=on,intremap=on \
//!     -device pcie-root-port,id=rp0,chassis=1 \
//!     -device vgpu-pci,bus=rp0,vram_size=256M,partitions=8,sriov_vfs=4
//! ```
//!
//! With virtio-iommu instead (`-device virtio-iommu-pci`, add virtio_iommu
//! to MODULES): it has no interrupt remapping, so VFIO type1 wants
//! `APPEND=vfio_iommu_type1.allow_unsafe_interrupts=1`, which vf-run.sh
//! applies.
//!
//! A refused DMA needs a shim that translates a VF's DMA through its own
//! copy of the vIOMMU's mappings (an IOMMU notifier): QEMU's intel-iommu
//! raises its fault interrupt on the engine thread that made the access,
//! which under TCG asserts the BQL and aborts QEMU. `--no-refused-dma`
//! skips those checks (each then fails as skipped).

use std::fs::File;
use vdevice::command::{Command, Loc};
use vdevice::driver::{Driver, Hardware};
use vdevice::pci;
use vdevice::regs::{
    self, AccessError, AccessErrorInfo, FaultCode, FaultLogInfo, PartCaps, PartIntr,
    PartitionState, PtCtrl, PtState, RegId,
};
use vgpu_guest_tests::checks::{describe_fault, vram_dirty_pages};
use vgpu_guest_tests::vfio::{self, Container, DmaBuf, EventFd, VfioVgpu};
use vgpu_guest_tests::vgpu::{
    fatal, fault_code, sys_u64, vram_u32, vram_u64, VfioDriver, TIMEOUT as T, TIMEOUT_MS,
};
use vgpu_guest_tests::{ensure, Check, DmaBuffer, MappedGpu, PciDev, Report};

/// VFs the test enables (it drives VF0 and VF1).
const NUM_VFS: u32 = 2;
/// Each VF's DMA buffer, mapped at its own IOVA in its own container.
const DMA_BYTES: usize = 2 << 20;
const IOVA: [u64; 2] = [0x1000_0000, 0x2000_0000];
/// Mapped in no container.
const NEVER_MAPPED: u64 = 0x7000_0000;
const RING_ENTRIES: u32 = 64;

// ---- the PF side: what an RM PF driver will do itself ---------------------------

/// Enable `n` VFs on the PF. A PF without a driver is bound to pci-pf-stub
/// first (whose only job is `sriov_configure`); a later RM PF driver does
/// this itself. Returns the VFs in order.
fn pf_enable_vfs(pf: &PciDev, n: u32) -> Result<Vec<PciDev>, String> {
    if pf.driver().is_none() {
        if !std::path::Path::new("/sys/bus/pci/drivers/pci-pf-stub").exists() {
            let st = std::process::Command::new("modprobe")
                .arg("pci-pf-stub")
                .status()
                .map_err(|e| format!("modprobe pci-pf-stub: {e}"))?;
            ensure!(st.success(), "modprobe pci-pf-stub: {st}");
        }
        let id = format!("{:04x} {:04x}", pci::VENDOR_ID, pci::DEVICE_ID);
        // EEXIST when the ID is known already: the bind below tells.
        let _ = std::fs::write("/sys/bus/pci/drivers/pci-pf-stub/new_id", id);
        pf.bind_override("pci-pf-stub")?;
    }
    let now = pf.attr("sriov_numvfs").map(|v| v as u32);
    if now != Some(n) {
        if now.unwrap_or(0) != 0 {
            pf.write_attr("sriov_numvfs", "0")?;
        }
        pf.write_attr("sriov_numvfs", &n.to_string())?;
    }
    (0..n).map(|i| pf.linked(&format!("virtfn{i}"))).collect()
}

/// Map the PF's register and VRAM BARs, memory decoding on in its command
/// register (pci-pf-stub does not enable the device, and sysfs `enable`
/// is refused while a driver is bound).
fn map_pf(pf: &PciDev) -> Result<Driver<MappedGpu>, String> {
    pf.enable_mem_and_bus_master()?;
    Ok(Driver::new(MappedGpu {
        regs: pf.map_bar(regs::REG_BAR as usize, false)?,
        vram: pf.map_bar(regs::VRAM_BAR as usize, true)?,
        // The PF does no DMA here; MappedGpu wants a buffer.
        dma: std::sync::Mutex::new(DmaBuffer::new(1)?),
    }))
}

/// S of SPEC 15 without `vf_vram_bar_size`: VRAM / TotalVFs rounded
/// down to a power of two.
fn vf_vram_bar(vram: u64, total_vfs: u64) -> Option<u64> {
    Some(1u64 << vram.checked_div(total_vfs)?.checked_ilog2()?)
}

/// Decimal attribute (`sriov_totalvfs` is decimal; `attr` reads hex).
fn dec_attr(dev: &PciDev, name: &str) -> Option<u64> {
    std::fs::read_to_string(dev.path.join(name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The PF, its VFs, and the two partitions' slices.
struct Pf {
    dev: PciDev,
    g: Driver<MappedGpu>,
    vfs: Vec<PciDev>,
    /// The VF VRAM BAR size S (SPEC 15).
    vf_bar: u64,
    /// (VRAM base, size) of partitions 0 and 1.
    slices: [(u64, u64); 2],
}

impl Pf {
    fn access_error(&self) -> AccessErrorInfo {
        AccessErrorInfo::from_bits(self.g.reg(RegId::AccessErrorInfo, 0, 0) as u32)
    }

    fn pt_state(&self, p: usize) -> PartitionState {
        PtState::from_bits(self.g.reg(RegId::PtState, p, 0) as u32).state()
    }
}

const PF_CHECKS: &[Check<Pf>] = &[
    Check {
        name: "PF: SR-IOV capability, VF identity and BAR sizes",
        run: vf_identity_and_bars,
    },
    Check {
        name: "PF: a VF partition refuses a slice larger than its VRAM BAR, and XLATE",
        run: vf_partition_refusals,
    },
    Check {
        name: "PF: partitions 0 and 1 get slices of different sizes",
        run: give_slices,
    },
    Check {
        name: "VFs bound to vfio-pci, each in its own IOMMU group",
        run: bind_vfs,
    },
];

/// TotalVFs and the VF BARs are what SPEC 15 says: S = VRAM / TotalVFs
/// rounded down to a power of two, an 8 KiB window, 4 KiB MSI-X BAR.
fn vf_identity_and_bars(c: &mut Pf) -> Result<String, String> {
    let total = dec_attr(&c.dev, "sriov_totalvfs").ok_or("no sriov_totalvfs")?;
    let vram = c.g.reg(RegId::VramSize, 0, 0);
    ensure!(total >= NUM_VFS as u64, "TotalVFs {total}");
    let want = vf_vram_bar(vram, total).ok_or("VRAM smaller than TotalVFs bytes")?;
    for (i, vf) in c.vfs.iter().enumerate() {
        ensure!(
            vf.attr("vendor") == Some(pci::VENDOR_ID as u64)
                && vf.attr("device") == Some(pci::VGPU_DEVICE_ID as u64),
            "VF{i} {:x?}:{:x?}",
            vf.attr("vendor"),
            vf.attr("device")
        );
        let sizes = [0, 2, 4].map(|b| vf.bar_size(b).unwrap_or(0));
        ensure!(
            sizes == [regs::VF_REG_BAR_SIZE, want, regs::VF_MSIX_BAR_SIZE],
            "VF{i} BAR sizes {sizes:#x?}, want S = {want:#x}"
        );
    }
    c.vf_bar = want;
    Ok(format!(
        "TotalVFs {total}, VRAM {} MiB, S {} MiB",
        vram >> 20,
        want >> 20
    ))
}

/// Enabling partition 0 (VF0's) with a slice of 2 S, or with XLATE, is
/// refused with BAD_VALUE and leaves it disabled.
fn vf_partition_refusals(c: &mut Pf) -> Result<String, String> {
    let s = c.vf_bar;
    ensure!(
        !c.g.try_enable(0, 0, 2 * s, PtCtrl::new()),
        "a 2 S slice was enabled"
    );
    let e = c.access_error();
    ensure!(
        e.reason() == AccessError::BadValue && c.g.reg(RegId::PtCtrl, 0, 0) == 0,
        "after 2 S: reason {} CTRL {:#x}",
        e.reason(),
        c.g.reg(RegId::PtCtrl, 0, 0)
    );
    ensure!(
        !c.g.try_enable(0, 0, s, PtCtrl::new().with_xlate(true)),
        "XLATE enabled on a VF partition"
    );
    ensure!(
        c.access_error().reason() == AccessError::BadValue
            && c.pt_state(0) == PartitionState::Disabled,
        "after XLATE: reason {} state {}",
        c.access_error().reason(),
        c.pt_state(0)
    );
    Ok(String::new())
}

/// Partition 0 gets S at 0, partition 1 S / 2 at S; both enable (XLATE
/// off), their windows say the sizes, CAPS.XLATE reads 0 and MSIX_BASE 0.
fn give_slices(c: &mut Pf) -> Result<String, String> {
    let s = c.vf_bar;
    c.slices = [(0, s), (s, s / 2)];
    for (p, &(base, size)) in c.slices.iter().enumerate() {
        ensure!(
            c.g.try_enable(p, base, size, PtCtrl::new()),
            "partition {p} ({size:#x} at {base:#x}) refused: {}",
            c.access_error().reason()
        );
        ensure!(
            c.g.reg(RegId::WVramSize, p, 0) == size,
            "window {p} VRAM_SIZE {:#x}",
            c.g.reg(RegId::WVramSize, p, 0)
        );
        let caps = PartCaps::from_bits(c.g.reg(RegId::WCaps, p, 0) as u32);
        ensure!(!caps.xlate(), "window {p} CAPS.XLATE");
        ensure!(
            c.g.reg(RegId::PtMsixBase, p, 0) == 0,
            "PT {p} MSIX_BASE {}",
            c.g.reg(RegId::PtMsixBase, p, 0)
        );
    }
    Ok(format!(
        "{} MiB and {} MiB",
        c.slices[0].1 >> 20,
        c.slices[1].1 >> 20
    ))
}

/// VF0 and VF1 are bound to vfio-pci through driver_override and sit in
/// two different IOMMU groups.
fn bind_vfs(c: &mut Pf) -> Result<String, String> {
    let mut groups = Vec::new();
    for vf in &c.vfs {
        vf.bind_override("vfio-pci")?;
        groups.push(
            vf.iommu_group()
                .ok_or(format!("{} has no IOMMU group", vf.name()))?,
        );
    }
    ensure!(
        groups[0] != groups[1],
        "VF0 and VF1 share group {}",
        groups[0]
    );
    Ok(format!("groups {groups:?}"))
}

// ---- the VFs through VFIO, as a VMM drives them ------------------------------------

/// One VF opened as a VMM opens an assigned device: its own container (its
/// guest's IOVA space), its DMA buffer, ring 0 in its VRAM.
struct Vf {
    g: VfioDriver,
    container: Container,
    _group: File,
    dma: DmaBuf,
    iova: u64,
    /// MSI-X vectors 0 (engine) and 1 (fault).
    efd: [EventFd; 2],
}

impl Vf {
    fn open(dev: &PciDev, iova: u64) -> Result<Self, String> {
        let group = dev.iommu_group().ok_or("no IOMMU group")?;
        let container = Container::open().map_err(|e| format!("/dev/vfio/vfio: {e}"))?;
        let dma = DmaBuf::new(DMA_BYTES)?;
        let (hw, gf) = VfioVgpu::open_in_group(&container, group, &dev.name(), true, dma, iova)?;
        let g = Driver::new(hw);
        // Memory decoding and bus mastering, as the guest's driver would
        // set them through the VMM's config space.
        let cfg =
            g.hw.dev
                .region(vfio::CONFIG_REGION)
                .map_err(|e| e.to_string())?;
        let mut cmd = [0u8; 2];
        g.hw.dev
            .read(&cfg, 4, &mut cmd)
            .map_err(|e| e.to_string())?;
        let v = u16::from_le_bytes(cmd) | 0x6;
        g.hw.dev
            .write(&cfg, 4, &v.to_le_bytes())
            .map_err(|e| format!("command register: {e}"))?;
        let efd = [EventFd::new(), EventFd::new()];
        let [Ok(e0), Ok(e1)] = efd else {
            return Err("eventfds".into());
        };
        g.hw.dev
            .set_irq_eventfds(vfio::IRQ_MSIX, &[e0.raw(), e1.raw()])
            .map_err(|e| format!("SET_IRQS MSI-X: {e}"))?;
        let mask = PartIntr::new().with_fence(true).with_fault(true);
        g.set(RegId::WIntrMask, 0, 0, mask.into_bits() as u64);
        g.ring_in_vram(0, 0, 0, RING_ENTRIES);
        Ok(Self {
            g,
            container,
            _group: gf,
            dma,
            iova,
            efd: [e0, e1],
        })
    }

    /// Drain both eventfds (interrupts of earlier checks).
    fn drain(&self) {
        for e in &self.efd {
            e.wait(0);
        }
    }
}

struct Vfs {
    pf: Pf,
    vf: [Vf; 2],
    /// Run the checks whose DMA the IOMMU refuses.
    refused_dma: bool,
}

const VF_CHECKS: &[Check<Vfs>] = &[
    Check {
        name: "VFIO: each VF is a resettable 1234:7691 with its window, its slice and 2 MSI-X vectors",
        run: vfio_view,
    },
    Check {
        name: "VRAM: a VF's BAR2 is its slice (the PF's VRAM at the slice base), nothing past it",
        run: vram_is_the_slice,
    },
    Check {
        name: "dirty log: VF1's BAR2 writes are in partition 1's VRAM log, read through the PF",
        run: vf_bar2_writes_are_logged,
    },
    Check {
        name: "DMA: FILL/COPY/FENCE at IOVAs through the IOMMU on both VFs, fence interrupt on each",
        run: dma_through_the_iommu,
    },
    Check {
        name: "IOMMU refusal: VF0 writing VF1's IOVA faults only partition 0 (DMA_ERROR) while VF1 works",
        run: refused_write_faults_only_vf0,
    },
    Check {
        name: "FLR: VFIO_DEVICE_RESET of VF0 recovers it; slice, VRAM and VF1 untouched",
        run: flr_recovers_vf0,
    },
    Check {
        name: "IOMMU refusal: VF1 reading a never-mapped IOVA faults only partition 1; FLR recovers it",
        run: refused_read_faults_only_vf1,
    },
    Check {
        name: "DMA unmap: once VFIO_IOMMU_UNMAP_DMA returns, VF0's write there faults; mapped again it works",
        run: unmap_then_write_faults,
    },
    Check {
        name: "PF: taking partition 1 back (CTRL=0, SCRUB) leaves VF1's BAR2 without VRAM",
        run: take_back_partition_1,
    },
];

/// Device info, config space IDs, region sizes, the window's INDEX and
/// VRAM_SIZE, the MSI-X count; the PF's window p is the same window.
fn vfio_view(c: &mut Vfs) -> Result<String, String> {
    for (p, vf) in c.vf.iter().enumerate() {
        let (d, hw) = (&vf.g.hw.dev, &vf.g.hw);
        ensure!(
            d.flags & vfio::DEVICE_FLAGS_PCI != 0 && d.flags & vfio::DEVICE_FLAGS_RESET != 0,
            "VF{p} flags {:#x}",
            d.flags
        );
        let cfg = d.region(vfio::CONFIG_REGION).map_err(|e| e.to_string())?;
        let mut id = [0u8; 4];
        d.read(&cfg, 0, &mut id).map_err(|e| e.to_string())?;
        ensure!(
            id == [0x34, 0x12, 0x91, 0x76],
            "VF{p} vendor/device {id:02x?}"
        );
        ensure!(
            hw.bar0.size == regs::VF_REG_BAR_SIZE && hw.bar2.size == c.pf.vf_bar,
            "VF{p} BAR0 {:#x} BAR2 {:#x}",
            hw.bar0.size,
            hw.bar2.size
        );
        ensure!(
            vf.g.reg(RegId::WId, 0, 0) == regs::WINDOW_MAGIC as u64
                && vf.g.reg(RegId::WIndex, 0, 0) == p as u64,
            "VF{p} ID {:#x} INDEX {}",
            vf.g.reg(RegId::WId, 0, 0),
            vf.g.reg(RegId::WIndex, 0, 0)
        );
        let size = c.pf.slices[p].1;
        ensure!(
            vf.g.reg(RegId::WVramSize, 0, 0) == size,
            "VF{p} VRAM_SIZE {:#x}, slice {size:#x}",
            vf.g.reg(RegId::WVramSize, 0, 0)
        );
        let n = d.irq_count(vfio::IRQ_MSIX).map_err(|e| e.to_string())?;
        ensure!(n == 2, "VF{p} MSI-X vectors {n}");
        let mark = 0x5ca1_0000 + p as u64;
        vf.g.set(RegId::WScratch, 0, 0, mark);
        ensure!(
            c.pf.g.reg(RegId::WScratch, p, 0) == mark,
            "PF window {p} SCRATCH {:#x}",
            c.pf.g.reg(RegId::WScratch, p, 0)
        );
    }
    Ok(format!(
        "BAR2 {} MiB, slices {} and {} MiB",
        c.pf.vf_bar >> 20,
        c.pf.slices[0].1 >> 20,
        c.pf.slices[1].1 >> 20
    ))
}

/// A word written through each VF's mmap'ed BAR2 is in the PF's VRAM at
/// the slice base; VF1's BAR2 past its half-size slice reads all ones.
fn vram_is_the_slice(c: &mut Vfs) -> Result<String, String> {
    for (p, vf) in c.vf.iter().enumerate() {
        let (base, size) = c.pf.slices[p];
        let word = 0xcafe_0000u32 + p as u32;
        vf.g.hw.vram_write(size - 0x100, &word.to_le_bytes());
        let mut b = [0u8; 4];
        c.pf.g.hw.vram.copy_out(base + size - 0x100, &mut b);
        ensure!(
            u32::from_le_bytes(b) == word,
            "VF{p}: PF VRAM at {:#x} reads {:#x}",
            base + size - 0x100,
            u32::from_le_bytes(b)
        );
    }
    let past = vram_u32(&c.vf[1].g, c.pf.slices[1].1);
    ensure!(past == u32::MAX, "VF1 BAR2 past its slice reads {past:#x}");
    Ok(String::new())
}

/// SPEC 16: with partition 1's DIRTY_LOG on, what the CPU writes through
/// VF1's mmap'ed BAR2 (in L0 an alias of the PF's VRAM) is in partition
/// 1's VRAM log; VF0's writes are not. Puts back what it wrote.
fn vf_bar2_writes_are_logged(c: &mut Vfs) -> Result<String, String> {
    let (pf, vf0, vf1) = (&c.pf.g, &c.vf[0].g, &c.vf[1].g);
    let size = c.pf.slices[1].1;
    let last = size / 4096 - 1;
    let (a, b) = (5 * 4096 + 4, size - 4);
    let saved = [vram_u32(vf1, a), vram_u32(vf1, b), vram_u32(vf0, 0x7000)];
    let ctrl = PtCtrl::from_bits(pf.reg(RegId::PtCtrl, 1, 0) as u32);
    pf.set(
        RegId::PtCtrl,
        1,
        0,
        ctrl.with_dirty_log(true).into_bits() as u64,
    );
    let before = vram_dirty_pages(&c.pf.g, 1, c.pf.slices[1].1);
    let put = |g: &VfioDriver, off: u64, v: u32| g.hw.vram_write(off, &v.to_le_bytes());
    put(vf1, a, 0x1111);
    put(vf1, b, 0x2222);
    put(vf0, 0x7000, 0x3333); // partition 0: its log is off
    let (pages, count) = vram_dirty_pages(&c.pf.g, 1, c.pf.slices[1].1);
    put(vf1, a, saved[0]);
    put(vf1, b, saved[1]);
    put(vf0, 0x7000, saved[2]);
    pf.set(RegId::PtCtrl, 1, 0, ctrl.into_bits() as u64);
    ensure!(before == (vec![], 0), "fresh log holds {before:?}");
    ensure!(pages == [5, last], "pages {pages:x?}");
    ensure!(count == 2, "DIRTY_COUNT {count}");
    Ok(format!("pages (hex) {pages:x?}"))
}

/// Run `cmds` on a VF and wait for its fence interrupt (engine vector) and
/// for it to leave BUSY; Err with the state and fault otherwise.
fn run_with_fence(vf: &Vf, cmds: &[Command]) -> Result<(), String> {
    vf.drain();
    vf.g.submit(0, 0, cmds);
    let n = vf.efd[0].wait(TIMEOUT_MS);
    let st = vf.g.wait_not_busy(0, T);
    ensure!(
        st == PartitionState::Idle,
        "state {st}: {}",
        describe_fault(
            vf.g.reg(RegId::WFaultStatus, 0, 0) as u32,
            vf.g.reg(RegId::WFaultAddr, 0, 0)
        )
    );
    ensure!(n >= 1, "no fence interrupt on MSI-X vector 0");
    Ok(())
}

/// Work that touches system memory only at the VF's IOVAs: VRAM FILL,
/// COPY VRAM -> IOVA, FILL at an IOVA, COPY IOVA -> VRAM of bytes the
/// "guest" wrote, FENCE to an IOVA with an interrupt.
fn dma_work(vf: &Vf, p: usize) -> Result<(), String> {
    let (iova, pat) = (vf.iova, 0x600d_0000 + p as u32);
    let guest = 0x7e57_0000 + p as u32;
    vf.dma.fill(0, DMA_BYTES as u64, 0);
    vf.dma.fill(0x40000, 0x8000, guest);
    let fence = 0xf00d_0000 + p as u64;
    run_with_fence(
        vf,
        &[
            Command::fill(Loc::Vram(0x10000), 0x10000, pat),
            Command::copy(Loc::Sys(iova + 0x1000), Loc::Vram(0x10000), 0x10000),
            Command::fill(Loc::Sys(iova + 0x20000), 0x8000, !pat),
            Command::copy(Loc::Vram(0x30000), Loc::Sys(iova + 0x40000), 0x8000),
            Command::fence(Loc::Sys(iova + 0x60000), fence, true),
        ],
    )?;
    ensure!(
        vf.dma.count_not(0x1000, 0x10000, pat) == 0,
        "COPY to IOVA {:#x}: {} words wrong",
        iova + 0x1000,
        vf.dma.count_not(0x1000, 0x10000, pat)
    );
    ensure!(
        vf.dma.count_not(0x20000, 0x8000, !pat) == 0,
        "FILL at IOVA {:#x}",
        iova + 0x20000
    );
    ensure!(
        vf.dma.u32_at(0x1000 + 0x10000) == 0 && vf.dma.u32_at(0x28000) == 0,
        "bytes written past the commands' ranges"
    );
    let mut v = vec![0u8; 0x8000];
    vf.g.hw.vram_read(0x30000, &mut v);
    ensure!(
        v.chunks(4).all(|w| w == guest.to_le_bytes()),
        "COPY from IOVA into VRAM"
    );
    ensure!(
        sys_u64(&vf.g, iova + 0x60000) == fence && vf.g.reg(RegId::WFenceValue, 0, 0) == fence,
        "fence {:#x} in memory, FENCE_VALUE {:#x}",
        sys_u64(&vf.g, iova + 0x60000),
        vf.g.reg(RegId::WFenceValue, 0, 0)
    );
    Ok(())
}

/// Each VF's buffer is mapped in its own container at its own IOVA; both
/// VFs' work lands there and in their VRAM.
fn dma_through_the_iommu(c: &mut Vfs) -> Result<String, String> {
    for (p, vf) in c.vf.iter().enumerate() {
        vf.container
            .map_dma(vf.dma.vaddr(0), vf.iova, DMA_BYTES as u64)
            .map_err(|e| format!("VF{p} MAP_DMA: {e}"))?;
    }
    for (p, vf) in c.vf.iter().enumerate() {
        dma_work(vf, p).map_err(|e| format!("VF{p}: {e}"))?;
    }
    Ok(format!("IOVAs {:#x} and {:#x}", IOVA[0], IOVA[1]))
}

/// The PF's view of a partition's fault: FAULTED_PARTITIONS is exactly
/// `bit`, and the fault log's head is partition p with `code`; popped.
fn pf_sees_fault(pf: &Pf, p: usize, code: FaultCode) -> Result<(), String> {
    let faulted = pf.g.reg(RegId::FaultedPartitions, 0, 0);
    ensure!(faulted == 1 << p, "FAULTED_PARTITIONS {faulted:#x}");
    let info = FaultLogInfo::from_bits(pf.g.reg(RegId::FaultLogInfo, 0, 0) as u32);
    ensure!(
        info.valid() && info.partition() as usize == p && info.code() == code,
        "fault log head: partition {} {} valid {}",
        info.partition(),
        info.code(),
        info.valid()
    );
    pf.g.set(RegId::FaultLogPop, 0, 0, 1);
    Ok(())
}

/// A faulted VF: FAULTED with DMA_ERROR at `addr`, and its fault vector
/// (MSI-X 1) fired.
fn faulted_with_dma_error(vf: &Vf, addr: u64, fired: u64) -> Result<String, String> {
    let st = vf.g.wait_not_busy(0, T);
    let (fs, fa) = (
        vf.g.reg(RegId::WFaultStatus, 0, 0) as u32,
        vf.g.reg(RegId::WFaultAddr, 0, 0),
    );
    ensure!(
        st == PartitionState::Faulted && fault_code(&vf.g) == FaultCode::DmaError && fa == addr,
        "state {st}: {}",
        describe_fault(fs, fa)
    );
    ensure!(fired >= 1, "no interrupt on the fault vector");
    Ok(describe_fault(fs, fa))
}

/// VF0's FENCE to IOVA[1] (mapped only in VF1's container) is refused by
/// the IOMMU: partition 0 faults DMA_ERROR, while VF1 runs its work.
fn refused_write_faults_only_vf0(c: &mut Vfs) -> Result<String, String> {
    ensure!(c.refused_dma, "skipped (--no-refused-dma)");
    let [a, b] = &c.vf;
    a.drain();
    a.g.submit(0, 0, &[Command::fence(Loc::Sys(IOVA[1] + 0x100), 1, false)]);
    let fired = a.efd[1].wait(TIMEOUT_MS);
    let what =
        faulted_with_dma_error(a, IOVA[1] + 0x100, fired).map_err(|e| format!("VF0: {e}"))?;
    ensure!(b.dma.u64_at(0x100) == 0, "VF0's write reached VF1's buffer");
    dma_work(b, 1).map_err(|e| format!("VF1 beside faulted VF0: {e}"))?;
    pf_sees_fault(&c.pf, 0, FaultCode::DmaError).map_err(|e| format!("PF: {e}"))?;
    Ok(what)
}

/// FLR (VFIO_DEVICE_RESET) of VF0: IDLE, rings off, fault cleared; the
/// partition stays enabled with its VRAM; VF0 works again; VF1's state
/// and window are untouched.
fn flr_recovers_vf0(c: &mut Vfs) -> Result<String, String> {
    flr_recovers(c, 0)
}

fn flr_recovers(c: &mut Vfs, p: usize) -> Result<String, String> {
    let other = &c.vf[1 - p];
    other.g.set(RegId::WScratch, 0, 0, 0x07e4);
    let vf = &c.vf[p];
    let before = vram_u64(&vf.g, 0x10000);
    vf.g.hw
        .dev
        .reset()
        .map_err(|e| format!("VFIO_DEVICE_RESET: {e}"))?;
    ensure!(
        vf.g.state(0) == PartitionState::Idle
            && vf.g.reg(RegId::WRingSize, 0, 0) == 0
            && vf.g.reg(RegId::WFaultStatus, 0, 0) == 0,
        "after FLR: state {} RING_SIZE {} FAULT_STATUS {:#x}",
        vf.g.state(0),
        vf.g.reg(RegId::WRingSize, 0, 0),
        vf.g.reg(RegId::WFaultStatus, 0, 0)
    );
    ensure!(
        c.pf.pt_state(p) == PartitionState::Idle
            && c.pf.g.reg(RegId::PtVramSize, p, 0) == c.pf.slices[p].1,
        "PT {p} after FLR: {} size {:#x}",
        c.pf.pt_state(p),
        c.pf.g.reg(RegId::PtVramSize, p, 0)
    );
    ensure!(
        vram_u64(&vf.g, 0x10000) == before,
        "VRAM changed by FLR: {:#x} -> {:#x}",
        before,
        vram_u64(&vf.g, 0x10000)
    );
    ensure!(
        other.g.reg(RegId::WScratch, 0, 0) == 0x07e4 && other.g.state(0) == PartitionState::Idle,
        "VF{} disturbed: {}",
        1 - p,
        other.g.state(0)
    );
    ensure!(
        c.pf.g.reg(RegId::FaultedPartitions, 0, 0) == 0,
        "FAULTED_PARTITIONS"
    );
    // The reset turned the window's interrupts off too.
    let mask = PartIntr::new().with_fence(true).with_fault(true);
    vf.g.set(RegId::WIntrMask, 0, 0, mask.into_bits() as u64);
    vf.g.forget_rings(0);
    vf.g.ring_in_vram(0, 0, 0, RING_ENTRIES);
    dma_work(vf, p).map_err(|e| format!("VF{p} after FLR: {e}"))?;
    Ok(String::new())
}

/// VF1's COPY from a never-mapped IOVA: partition 1 faults DMA_ERROR (a
/// read), VF0 runs its work meanwhile; FLR recovers VF1.
fn refused_read_faults_only_vf1(c: &mut Vfs) -> Result<String, String> {
    ensure!(c.refused_dma, "skipped (--no-refused-dma)");
    let [a, b] = &c.vf;
    b.drain();
    b.g.submit(
        0,
        0,
        &[Command::copy(
            Loc::Vram(0x50000),
            Loc::Sys(NEVER_MAPPED),
            0x1000,
        )],
    );
    let fired = b.efd[1].wait(TIMEOUT_MS);
    let what = faulted_with_dma_error(b, NEVER_MAPPED, fired).map_err(|e| format!("VF1: {e}"))?;
    dma_work(a, 0).map_err(|e| format!("VF0 beside faulted VF1: {e}"))?;
    pf_sees_fault(&c.pf, 1, FaultCode::DmaError).map_err(|e| format!("PF: {e}"))?;
    flr_recovers(c, 1)?;
    Ok(what)
}

/// VF0's buffer unmapped from its container: a FENCE into it faults
/// DMA_ERROR and leaves the page's canary; mapped again and after FLR, the
/// same work lands (the IOMMU's mapping changes reach the device).
fn unmap_then_write_faults(c: &mut Vfs) -> Result<String, String> {
    ensure!(c.refused_dma, "skipped (--no-refused-dma)");
    let vf = &c.vf[0];
    let (iova, size) = (vf.iova, DMA_BYTES as u64);
    vf.container
        .unmap_dma(iova, size)
        .map_err(|e| format!("UNMAP_DMA: {e}"))?;
    vf.dma.fill(0x60000, 8, 0xcafe_f00d);
    vf.drain();
    vf.g.submit(0, 0, &[Command::fence(Loc::Sys(iova + 0x60000), 9, true)]);
    let fired = vf.efd[1].wait(TIMEOUT_MS);
    let what = faulted_with_dma_error(vf, iova + 0x60000, fired)?;
    ensure!(
        vf.dma.u64_at(0x60000) == 0xcafe_f00d_cafe_f00d,
        "the unmapped page was written: {:#x}",
        vf.dma.u64_at(0x60000)
    );
    pf_sees_fault(&c.pf, 0, FaultCode::DmaError).map_err(|e| format!("PF: {e}"))?;
    vf.container
        .map_dma(vf.dma.vaddr(0), iova, size)
        .map_err(|e| format!("MAP_DMA again: {e}"))?;
    flr_recovers(c, 0)?;
    Ok(what)
}

/// The PF disables partition 1: VF1's BAR2 reads all ones; after SCRUB and
/// enabling it again the slice reads zero through VF1.
fn take_back_partition_1(c: &mut Vfs) -> Result<String, String> {
    let (pf, vf) = (&c.pf, &c.vf[1]);
    ensure!(
        vram_u32(&vf.g, 0x10000) != 0,
        "nothing in VF1's VRAM to lose"
    );
    pf.g.set(RegId::PtCtrl, 1, 0, 0);
    let gone = vram_u32(&vf.g, 0x10000);
    ensure!(
        gone == u32::MAX,
        "VF1 BAR2 with the partition disabled reads {gone:#x}"
    );
    pf.g.set(RegId::PtScrub, 1, 0, 1);
    let (base, size) = pf.slices[1];
    ensure!(
        pf.g.try_enable(1, base, size, PtCtrl::new()),
        "re-enable refused"
    );
    let back = vram_u32(&vf.g, 0x10000);
    ensure!(back == 0, "VF1 VRAM after SCRUB reads {back:#x}");
    Ok(String::new())
}

// ---- main ---------------------------------------------------------------------

const USAGE: &str = "\
Runs as root in L1 on vgpu-pci with sriov_vfs >= 2 behind a virtual IOMMU.
  --no-refused-dma   skip the checks whose DMA the IOMMU refuses (they fail
                     as skipped)";

fn parse_args() -> Result<bool, lexopt::Error> {
    use lexopt::prelude::*;
    let mut refused_dma = true;
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("no-refused-dma") => refused_dma = false,
            Short('h') | Long("help") => {
                println!("usage: vgpu-vf-test [--no-refused-dma]\n{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(refused_dma)
}

fn main() {
    let refused_dma = parse_args().unwrap_or_else(|e| {
        eprintln!("vgpu-vf-test: {e}\n{USAGE}");
        std::process::exit(2);
    });
    let mut r = Report::default();
    let dev = PciDev::find(pci::VENDOR_ID, pci::DEVICE_ID)
        .unwrap_or_else(|e| fatal(format!("find the PF: {e}")));
    let vfs = pf_enable_vfs(&dev, NUM_VFS).unwrap_or_else(|e| fatal(format!("enable VFs: {e}")));
    let g = map_pf(&dev).unwrap_or_else(|e| fatal(format!("map the PF: {e}")));
    let mut pf = Pf {
        dev,
        g,
        vfs,
        vf_bar: 0,
        slices: [(0, 0); 2],
    };
    if !r.run(&mut pf, PF_CHECKS) {
        std::process::exit(r.finish());
    }
    let open = |i: usize| {
        Vf::open(&pf.vfs[i], IOVA[i]).unwrap_or_else(|e| fatal(format!("open VF{i}: {e}")))
    };
    let vf = [open(0), open(1)];
    let mut c = Vfs {
        pf,
        vf,
        refused_dma,
    };
    r.run(&mut c, VF_CHECKS);
    std::process::exit(r.finish());
}

#[cfg(test)]
mod tests {
    use super::vf_vram_bar;

    /// SPEC 15's examples, and no size where there is none.
    #[test]
    fn vf_vram_bar_is_a_power_of_two_share() {
        assert_eq!(vf_vram_bar(256 << 20, 4), Some(64 << 20));
        assert_eq!(vf_vram_bar(256 << 20, 3), Some(64 << 20));
        assert_eq!(vf_vram_bar(1 << 30, 64), Some(16 << 20));
        assert_eq!(vf_vram_bar(1 << 20, 0), None);
        assert_eq!(vf_vram_bar(3, 4), None);
    }
}
