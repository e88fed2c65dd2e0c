//! vgpu-vf-mig-test: VFIO migration v2 of SR-IOV VFs (`make test-sriov`,
//! after vgpu-vf-test in the same L1, behind intel-iommu). The RM is the
//! PF's driver in SR-IOV mode and the VFs are bound to its variant driver
//! vgpu_vfio_pci (vf-run.sh loads vgpu_rm, vgpu_vfio and vgpu_vfio_pci and
//! hands the PF over from pci-pf-stub): VF0 (A, the source) and VF1 (B, the
//! destination) get one vGPU type, VF2 (C) a type of another size, and all
//! three are opened through VFIO in one container, as one VMM's devices.
//! The checks are vgpu-mig-test's (guest-tests/src/migration.rs: the same
//! engine migrates both frontends), and the VF's own: its FLR ends a
//! migration, and closing a destination while it resumes.
//!
//! Usage: vgpu-vf-mig-test (no arguments). Prints `ok`/`FAIL` per check
//! and `bench` lines; exit status 1 if a check failed.

use std::io::Read;
use vdevice::driver::Hardware;
use vdevice::pci;
use vdevice::regs::RegId;
use vgpu_guest_tests::migration::{
    cancelled, close_while_resuming, corrupted, dev, dma_logging, driver, fence_runs, migrates,
    offered, other_type, precopy_cancelled, precopy_info_refused, precopy_migrates, state, Mig,
    DMA_BYTES, IOVA,
};
use vgpu_guest_tests::vfio::{
    self, Container, DmaBuf, VfioVgpu, MIG_RUNNING, MIG_STOP, MIG_STOP_COPY,
};
use vgpu_guest_tests::vgpu::{fatal, VfioDriver};
use vgpu_guest_tests::{ensure, Check, PciDev, Report};

/// VF0 and VF1 of one type, VF2 of another.
const NUM_VFS: u32 = 3;
const VARIANT_DRIVER: &str = "vgpu_vfio_pci";

/// The PF under the RM and its VFs with their types.
struct Setup {
    pf: PciDev,
    vfs: Vec<PciDev>,
    /// (ID, name) of A and B's type and of C's.
    types: Vec<(u32, String)>,
}

const SETUP: &[Check<Setup>] = &[
    Check {
        name: "VF migration setup: the RM drives the PF in SR-IOV mode with 3 VFs",
        run: sriov_mode,
    },
    Check {
        name: "VF migration setup: VF0 and VF1 take one type, VF2 another size; all bound to vgpu_vfio_pci",
        run: give_types,
    },
];

fn sriov_mode(s: &mut Setup) -> Result<String, String> {
    let drv = s.pf.driver();
    ensure!(
        drv.as_deref() == Some("vgpu_rm"),
        "the PF is bound to {drv:?}, not vgpu_rm"
    );
    s.pf.write_attr("vgpu_mode", "sriov")?;
    s.pf.write_attr("sriov_numvfs", &NUM_VFS.to_string())?;
    s.vfs = (0..NUM_VFS)
        .map(|i| s.pf.linked(&format!("virtfn{i}")))
        .collect::<Result<_, _>>()?;
    Ok(String::new())
}

/// The types VF0 can take ("ID : name" lines after a header): A and B get
/// the last (smallest), C the first of another name.
fn give_types(s: &mut Setup) -> Result<String, String> {
    let list = std::fs::read_to_string(s.vfs[0].path.join("creatable_vgpu_types"))
        .map_err(|e| format!("creatable_vgpu_types: {e}"))?;
    let types: Vec<(u32, String)> = list
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (id, name) = l.split_once(" : ")?;
            Some((id.trim().parse().ok()?, name.trim().to_string()))
        })
        .collect();
    let ab = types.last().ok_or("VF0 can take no type")?.clone();
    let c = types
        .iter()
        .find(|t| t.1 != ab.1)
        .ok_or("no second type")?
        .clone();
    for (vf, t) in s.vfs.iter().zip([&ab, &ab, &c]) {
        vf.write_attr("current_vgpu_type", &t.0.to_string())?;
        let drv = vf.driver();
        ensure!(
            drv.as_deref() == Some(VARIANT_DRIVER),
            "{} is bound to {drv:?}",
            vf.name()
        );
    }
    s.types = vec![ab.clone(), c.clone()];
    Ok(format!("A and B {}, C {}", ab.1, c.1))
}

/// Open VF `vf` in `container` as a VMM does, memory decoding and bus
/// mastering on (as the guest's driver sets them through the VMM).
fn open_vf(
    container: &Container,
    vf: &PciDev,
    first: bool,
    dma: DmaBuf,
) -> Result<(VfioDriver, std::fs::File), String> {
    let group = vf.iommu_group().ok_or("no IOMMU group")?;
    let (hw, gf) = VfioVgpu::open_in_group(container, group, &vf.name(), first, dma, IOVA)?;
    let cfg = hw
        .dev
        .region(vfio::CONFIG_REGION)
        .map_err(|e| e.to_string())?;
    let mut cmd = [0u8; 2];
    hw.dev.read(&cfg, 4, &mut cmd).map_err(|e| e.to_string())?;
    let v = u16::from_le_bytes(cmd) | 0x6;
    hw.dev
        .write(&cfg, 4, &v.to_le_bytes())
        .map_err(|e| format!("command register: {e}"))?;
    Ok((driver(hw), gf))
}

/// A VF's FLR ends a migration as a reset of an mdev vGPU does: from
/// STOP_COPY through VFIO_DEVICE_RESET (vfio-pci-core's FLR, reported by
/// reset_done) and from STOP through the VF's sysfs `reset`: RUNNING
/// again, the data fd dead, the partition runs, its slice kept.
fn flr_ends_migration(m: &mut Mig, vf: &PciDev) -> Result<String, String> {
    let a = &m.a;
    fence_runs(a, 0x0f1)?;
    a.hw.vram_write(0x10_0000, &[0x5a; 64]);
    state(a, MIG_STOP)?;
    let mut f = state(a, MIG_STOP_COPY)?.ok_or("STOP_COPY gave no data fd")?;
    let mut part = vec![0u8; 4096];
    f.read_exact(&mut part).map_err(|e| format!("read: {e}"))?;
    dev(a).reset().map_err(|e| format!("reset: {e}"))?;
    let st = dev(a).mig_state().map_err(|e| e.to_string())?;
    ensure!(st == MIG_RUNNING, "state {st} after VFIO_DEVICE_RESET");
    let e = f.read(&mut part);
    ensure!(
        matches!(&e, Err(e) if e.raw_os_error() == Some(libc::ENODEV)),
        "the data fd after the reset: {e:?}, want ENODEV"
    );
    drop(f);
    a.forget_rings(0);
    a.ring_in_vram(0, 0, 0, 64);
    fence_runs(a, 0x0f2)?;
    let mut got = [0u8; 64];
    a.hw.vram_read(0x10_0000, &mut got);
    ensure!(got == [0x5a; 64], "the slice changed across the FLR");

    state(a, MIG_STOP)?;
    vf.write_attr("reset", "1")?;
    let st = dev(a).mig_state().map_err(|e| e.to_string())?;
    ensure!(st == MIG_RUNNING, "state {st} after the sysfs reset");
    a.forget_rings(0);
    a.ring_in_vram(0, 0, 0, 64);
    fence_runs(a, 0x0f3)?;
    ensure!(
        a.reg(RegId::WVramSize, 0, 0) == m.b.reg(RegId::WVramSize, 0, 0),
        "A's slice size changed"
    );
    Ok(String::new())
}

/// C closed while resuming: its data fd fails from then on, and the VF
/// opens again RUNNING.
fn closed_while_resuming(m: &mut Mig, vf: &PciDev) -> Result<String, String> {
    close_while_resuming(m.c.take().ok_or("no VF C")?)?;
    let group = m.groups.get(2).ok_or("no group of C")?;
    let d = vfio::Device::open(group, &vf.name()).map_err(|e| format!("open C again: {e}"))?;
    let st = d.mig_state().map_err(|e| e.to_string())?;
    ensure!(st == MIG_RUNNING, "C opened again in state {st}");
    Ok(String::new())
}

const CHECKS: &[Check<Mig>] = &[
    Check {
        name: "VF migration: offered (STOP_COPY, P2P, PRE_COPY), RUNNING at open, its data size",
        run: offered,
    },
    Check {
        name: "VF migration: DMA logging reports exactly the IOVA pages the VF wrote, once",
        run: dma_logging,
    },
    Check {
        name: "VF migration: a save abandoned in STOP_COPY leaves the source running",
        run: cancelled,
    },
    Check {
        name: "VF migration: work queued behind a semaphore and VRAM move from VF0 to VF1 and run there once",
        run: migrates,
    },
    Check {
        name: "VF migration: pre-copy while VF0's engine writes VRAM; VF1 gets its VRAM exactly and runs its work once",
        run: precopy_migrates,
    },
    Check {
        name: "VF migration: a pre-copy cancelled back to RUNNING leaves the source running",
        run: precopy_cancelled,
    },
    Check {
        name: "VF migration: PRECOPY_INFO outside PRE_COPY or with a short argsz is refused",
        run: precopy_info_refused,
    },
    Check {
        name: "VF migration: corrupted, cut and foreign streams are refused; VF1 recovers by FLR",
        run: corrupted,
    },
    Check {
        name: "VF migration: a stream of another vGPU type is refused by VF2",
        run: other_type,
    },
];

fn main() {
    if std::env::args().len() > 1 {
        eprintln!("usage: vgpu-vf-mig-test");
        std::process::exit(2);
    }
    let mut r = Report::default();
    let pf = PciDev::find(pci::VENDOR_ID, pci::DEVICE_ID).unwrap_or_else(|e| fatal(e));
    let mut s = Setup {
        pf,
        vfs: Vec::new(),
        types: Vec::new(),
    };
    if !r.run(&mut s, SETUP) {
        std::process::exit(r.finish());
    }
    let container = Container::open().unwrap_or_else(|e| fatal(format!("/dev/vfio/vfio: {e}")));
    let dma = DmaBuf::new(DMA_BYTES).unwrap_or_else(|e| fatal(e));
    let opened = (|| {
        let (a, ga) = open_vf(&container, &s.vfs[0], true, dma)?;
        container
            .map_dma(dma.vaddr(0), IOVA, DMA_BYTES as u64)
            .map_err(|e| format!("map DMA: {e}"))?;
        let (b, gb) = open_vf(&container, &s.vfs[1], false, dma)?;
        let (c, gc) = open_vf(&container, &s.vfs[2], false, dma)?;
        Ok::<_, String>((a, b, c, vec![ga, gb, gc]))
    })();
    let (a, b, c, groups) = opened.unwrap_or_else(|e| fatal(format!("open the VFs: {e}")));
    let mut m = Mig {
        a,
        b,
        c: Some(c),
        dma,
        stream: Vec::new(),
        bench: "vf_mig_l1",
        container,
        groups,
    };
    r.run(&mut m, CHECKS);
    r.check(
        "VF migration: an FLR (VFIO_DEVICE_RESET, sysfs reset) ends a migration; the partition runs",
        || flr_ends_migration(&mut m, &s.vfs[0]),
    );
    r.check(
        "VF migration: a destination closed while resuming fails its stream and opens again RUNNING",
        || closed_while_resuming(&mut m, &s.vfs[2]),
    );
    drop(m);
    // Back to what the next user expects: no types, no VFs.
    let cleanup = (|| {
        for vf in &s.vfs {
            vf.write_attr("current_vgpu_type", "0")?;
        }
        s.pf.write_attr("sriov_numvfs", "0")
    })();
    if let Err(e) = cleanup {
        r.check("VF migration: types released, VFs disabled", || Err(e));
    }
    std::process::exit(r.finish());
}
