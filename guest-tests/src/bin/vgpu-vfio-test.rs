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

use std::path::Path;
use std::time::{Duration, Instant};
use vdevice::command::{Command, Loc};
use vdevice::driver::{Driver, Hardware};
use vdevice::regs::{self, FaultCode, FaultStatus, PartIntr, PartitionState, RegId, WINDOW_STRIDE};
use vgpu_guest_tests::vfio::{self, Container, Device, EventFd, VfioVgpu};
use vgpu_guest_tests::{bench, ensure, Report};
use vgpuctl::{Gpu, Vgpu, VgpuType};

const IOVA: u64 = 0x1000_0000;
const DMA_BYTES: usize = 2 << 20;
/// A second buffer, mapped for device reads only.
const RO_IOVA: u64 = 0x2000_0000;
const RO_BYTES: usize = 0x10000;
/// How long the held-up vGPU's fault service sleeps (RM debugfs knob).
const HELD_UP_MS: u32 = 3000;
const T: Duration = Duration::from_secs(20);
const UUID_A: &str = "0a0a0a0a-0000-4000-8000-00000000000a";
const UUID_B: &str = "0b0b0b0b-0000-4000-8000-00000000000b";

type Vgpu2 = Driver<VfioVgpu>;

fn sys_u64(g: &Vgpu2, iova: u64) -> u64 {
    let mut b = [0u8; 8];
    g.hw.sys_read(iova, &mut b);
    u64::from_le_bytes(b)
}

fn vram_u64(g: &Vgpu2, off: u64) -> u64 {
    let mut b = [0u8; 8];
    g.hw.vram_read(off, &mut b);
    u64::from_le_bytes(b)
}

fn fault_code(g: &Vgpu2) -> FaultCode {
    FaultStatus::from_bits(g.reg(RegId::WFaultStatus, 0, 0) as u32).code()
}

fn open_vgpu(
    container: &Container,
    uuid: &str,
    first: bool,
    dma: *mut u8,
) -> Result<(Vgpu2, std::fs::File), String> {
    let v = Vgpu::get(uuid).map_err(|e| e.to_string())?;
    let group = v.iommu_group.ok_or("no iommu_group")?;
    let gf = container
        .add_group(group, first)
        .map_err(|e| format!("group {group}: {e}"))?;
    let dev = Device::open(&gf, uuid).map_err(|e| format!("device fd: {e}"))?;
    let bar0 = dev.region(0).map_err(|e| format!("BAR0 info: {e}"))?;
    let bar2 = dev.region(2).map_err(|e| format!("BAR2 info: {e}"))?;
    let vram = dev
        .mmap(&bar2, 0, bar2.size as usize)
        .map_err(|e| format!("BAR2 mmap: {e}"))?;
    // SAFETY: main's DMA buffer is DMA_BYTES long and outlives the vGPUs.
    let g = Driver::new(unsafe { VfioVgpu::new(dev, bar0, bar2, vram, dma, IOVA, DMA_BYTES) });
    g.ring_in_vram(0, 0, 0, 64);
    Ok((g, gf))
}

/// VFIO_DEVICE_RESET, then the ring bookkeeping and ring 0 again.
fn reset_vgpu(g: &Vgpu2) -> Result<(), String> {
    g.hw.dev.reset().map_err(|e| format!("reset: {e}"))?;
    g.forget_rings(0);
    g.ring_in_vram(0, 0, 0, 64);
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

/// `a` reads the read-only mapping at RO_IOVA (holding `pattern`), then
/// writes a page it read and one it never touched: each faults with
/// SYSMEM_READ_ONLY, reported in the window's FAULT_STATUS and FAULT_ADDR.
fn read_only_mapping(a: &Vgpu2, pattern: &[u8]) -> Result<(), String> {
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

/// `a`'s fault service is held up: `a` faults, then `b` faults and must be
/// serviced (its fence in memory) while `a` still waits. Returns how long
/// `b` took, in milliseconds.
fn neighbour_fault(a: &Vgpu2, b: &Vgpu2) -> Result<f64, String> {
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

/// `a` copies VRAM into the whole DMA buffer again and again (every page
/// pinned writable first) while the test unmaps the buffer: once the unmap
/// returns, no byte of it may change.
fn unmap_in_flight(container: &Container, a: &Vgpu2) -> Result<String, String> {
    const COPIES: u64 = 63;
    let len = DMA_BYTES as u64;
    let (vx, vy) = (0x40_0000, 0x60_0000);
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
    let copies: Vec<Command> = (0..COPIES)
        .map(|i| {
            Command::copy(
                Loc::Sys(IOVA),
                Loc::Vram(if i % 2 == 0 { vy } else { vx }),
                len,
            )
        })
        .collect();
    a.submit(0, 0, &copies);
    let busy = a.state(0) == PartitionState::Busy;
    container
        .unmap_dma(IOVA, len)
        .map_err(|e| format!("UNMAP_DMA: {e}"))?;
    let done = a.reg(RegId::WStatCommands, 0, 0) - before;
    let mut then = vec![0u8; DMA_BYTES];
    a.hw.sys_read(IOVA, &mut then);
    let st = a.wait_settled(0, T);
    let mut now = vec![0u8; DMA_BYTES];
    a.hw.sys_read(IOVA, &mut now);
    let changed = then.iter().zip(&now).filter(|(x, y)| x != y).count();
    ensure!(
        busy && done < COPIES,
        "the copies were over before the unmap ({done} of {COPIES} done): nothing tested"
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

/// Write to a sysfs file, returning the errno name on failure.
fn sysfs_write(p: &Path, v: &str) -> Result<(), String> {
    std::fs::write(p, v).map_err(|e| format!("{:?}", e.kind()))
}

fn main() {
    let mut r = Report::default();
    let gpu = match Gpu::find(None) {
        Ok(g) => g,
        Err(e) => {
            println!("FAIL find an mdev parent: {e}");
            std::process::exit(1);
        }
    };

    // ---- sysfs: types ---------------------------------------------------
    let mut types: Vec<VgpuType> = Vec::new();
    r.check("mdev: parent registered with types", || {
        types = gpu.types().map_err(|e| e.to_string())?;
        ensure!(!types.is_empty(), "no types");
        for t in &types {
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
        Ok(format!("{} types", types.len()))
    });
    for t in &types {
        println!(
            "type {} name=\"{}\" {} available={}",
            t.id, t.name, t.description, t.available
        );
    }
    // The quarter-GPU type if there is one, else the one with most instances.
    let max_of = |t: &VgpuType| {
        t.desc_value("max_instances")
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    };
    let Some(ty) = types
        .iter()
        .find(|t| max_of(t) == 4)
        .or_else(|| types.iter().max_by_key(|t| max_of(t)))
        .cloned()
    else {
        std::process::exit(r.finish());
    };
    let small = types.iter().max_by_key(|t| max_of(t)).cloned().unwrap();
    let type_dir = gpu.path.join("mdev_supported_types").join(&ty.id);

    // ---- sysfs: bad input --------------------------------------------------
    r.check(
        "mdev: bad UUID, unknown type and over-creation are refused",
        || {
            let e = sysfs_write(&type_dir.join("create"), "not-a-uuid");
            ensure!(e.is_err(), "bad UUID accepted");
            let bad = e.unwrap_err();
            ensure!(
                vgpuctl::check_uuid("not-a-uuid").is_err(),
                "vgpuctl accepts a bad UUID"
            );
            let unknown = gpu.create("no-such-type", UUID_A);
            ensure!(unknown.is_err(), "unknown type accepted");
            let max = max_of(&ty);
            let mut made = Vec::new();
            for i in 0..max {
                let u = format!("0c0c0c0c-0000-4000-8000-{i:012x}");
                gpu.create(&ty.id, &u)
                    .map_err(|e| format!("create {i}/{max}: {e}"))?;
                made.push(u);
            }
            let avail = gpu.find_type(&ty.id).map_err(|e| e.to_string())?.available;
            let over = sysfs_write(
                &type_dir.join("create"),
                "0c0c0c0c-0000-4000-8000-ffffffffffff",
            );
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
        },
    );

    // ---- create/destroy speed, and how many at once -------------------------
    r.check("mdev: create and destroy the most vGPUs at once", || {
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
            n as u32 == max_of(&small),
            "made {n}, type allows {}",
            max_of(&small)
        );
        bench("max_vgpus", n.to_string());
        bench("vgpu_create_destroy_ms", format!("{ms:.2}"));
        Ok(format!("{n} vGPUs of {}", small.id))
    });

    // ---- two vGPUs through VFIO ---------------------------------------------
    let made = [UUID_A, UUID_B]
        .iter()
        .all(|u| gpu.create(&ty.id, u).is_ok());
    if !made {
        println!("FAIL create the two test vGPUs");
        std::process::exit(1);
    }
    let container = match Container::open() {
        Ok(c) => c,
        Err(e) => {
            println!("FAIL open /dev/vfio/vfio: {e}");
            std::process::exit(1);
        }
    };
    let dma = match vfio::dma_buffer(DMA_BYTES) {
        Ok(p) => p,
        Err(e) => {
            println!("FAIL allocate the DMA buffer: {e}");
            std::process::exit(1);
        }
    };
    let ro = vfio::dma_buffer(RO_BYTES);
    let opened = open_vgpu(&container, UUID_A, true, dma)
        .and_then(|a| Ok((a, open_vgpu(&container, UUID_B, false, dma)?)));
    let ((a, ga), (b, _gb)) = match opened {
        Ok(x) => x,
        Err(e) => {
            println!("FAIL open the vGPUs through VFIO: {e}");
            std::process::exit(r.finish().max(1));
        }
    };
    let fb = a.hw.bar2.size;
    r.check("VFIO: device info, config space and regions", || {
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
        let want_fb = ty.desc_value("framebuffer").unwrap_or("?");
        ensure!(
            d.irq_count(vfio::IRQ_MSIX).map_err(|e| e.to_string())? == 2,
            "MSI-X vectors"
        );
        ensure!(
            d.irq_count(vfio::IRQ_MSI).map_err(|e| e.to_string())? >= 1,
            "MSI"
        );
        ensure!(
            d.irq_count(vfio::IRQ_INTX).map_err(|e| e.to_string())? == 1,
            "INTx"
        );
        Ok(format!(
            "BAR2 {} MiB (type framebuffer {want_fb})",
            fb >> 20
        ))
    });
    r.check("VFIO: register window through the trapped BAR0", || {
        ensure!(
            a.reg(RegId::WId, 0, 0) == regs::WINDOW_MAGIC as u64,
            "ID {:#x}",
            a.reg(RegId::WId, 0, 0)
        );
        ensure!(a.reg(RegId::WVramSize, 0, 0) == fb, "VRAM_SIZE");
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
    });
    r.check("isolation: each vGPU sees only its own VRAM", || {
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
    });

    // interrupts: MSI-X vector 0 (engine) and 1 (fault) of A to eventfds
    let efd = [EventFd::new().unwrap(), EventFd::new().unwrap()];
    let irq_ok =
        a.hw.dev
            .set_irq_eventfds(vfio::IRQ_MSIX, &[efd[0].raw(), efd[1].raw()]);
    r.check(
        "DMA + MSI-X: engine work into VFIO-mapped memory, fence interrupt via eventfd",
        || {
            irq_ok.as_ref().map_err(|e| format!("SET_IRQS: {e}"))?;
            container
                .map_dma(dma as u64, IOVA, DMA_BYTES as u64)
                .map_err(|e| format!("MAP_DMA: {e}"))?;
            a.set(
                RegId::WIntrMask,
                0,
                0,
                PartIntr::new()
                    .with_fence(true)
                    .with_fault(true)
                    .into_bits() as u64,
            );
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
            let n = efd[0].wait(T.as_millis() as i32);
            let st = a.wait_not_busy(0, T);
            ensure!(
                n >= 1,
                "no interrupt on the eventfd (state {}, fault {})",
                st,
                fault_code(&a)
            );
            ensure!(
                st == PartitionState::Idle,
                "state {} fault {}",
                st,
                fault_code(&a)
            );
            ensure!(sys_u64(&a, IOVA + 0x20008) == 42, "fence not in memory");
            let mut data = vec![0u8; 0x10000];
            a.hw.sys_read(IOVA + 0x1000, &mut data);
            ensure!(
                data.chunks(4).all(|c| c == 0x600d_f00du32.to_le_bytes()),
                "copied data"
            );
            ensure!(
                sys_u64(&a, IOVA + 0x20000) == crc32fast::hash(&data) as u64,
                "crc"
            );
            Ok(String::new())
        },
    );
    r.check(
        "faults: out-of-slice and unmapped DMA fault only the offender, with its fault vector",
        || {
            b.submit(0, 0, &[Command::copy(Loc::Vram(fb), Loc::Vram(0), 64)]);
            let st = b.wait_not_busy(0, T);
            ensure!(
                st == PartitionState::Faulted && fault_code(&b) == FaultCode::VramOutOfBounds,
                "B: {} {}",
                st,
                fault_code(&b)
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
            let n = efd[1].wait(T.as_millis() as i32);
            let st = a.wait_not_busy(0, T);
            ensure!(st == PartitionState::Faulted, "A: {}", st);
            ensure!(
                fault_code(&a) == FaultCode::XlateCancelled,
                "A fault {}",
                fault_code(&a)
            );
            ensure!(n >= 1, "no fault interrupt");
            Ok(String::new())
        },
    );
    r.check("reset: VFIO_DEVICE_RESET recovers a faulted vGPU", || {
        for g in [&a, &b] {
            g.hw.dev.reset().map_err(|e| format!("reset: {e}"))?;
            ensure!(g.state(0) == PartitionState::Idle, "state {}", g.state(0));
            ensure!(g.reg(RegId::WRingSize, 0, 0) == 0, "ring kept");
            g.forget_rings(0);
            g.ring_in_vram(0, 0, 0, 64);
        }
        a.set(
            RegId::WIntrMask,
            0,
            0,
            PartIntr::new().with_fence(true).into_bits() as u64,
        );
        a.submit(0, 0, &[Command::fence(Loc::Vram(0x8000), 5, true)]);
        ensure!(
            efd[0].wait(T.as_millis() as i32) >= 1,
            "no interrupt after reset"
        );
        ensure!(vram_u64(&a, 0x8000) == 5, "fence");
        ensure!(
            vram_u64(&a, fb - 8) == 0xaaaa_aaaa_aaaa_aaaa,
            "VRAM lost on reset"
        );
        Ok(String::new())
    });
    r.check(
        "DMA: a page the device read first takes a write later (a semaphore's page)",
        || {
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
                fault_code(&a)
            );
            ensure!(sys_u64(&a, page + 8) == 7, "fence not in memory");
            Ok(String::new())
        },
    );
    r.check(
        "DMA: a read-only mapping is read, and a write to it faults SYSMEM_READ_ONLY",
        || {
            let ro = *ro.as_ref().map_err(|e| format!("buffer: {e}"))?;
            let pattern: Vec<u8> = (0..RO_BYTES).map(|i| (i * 7 + 3) as u8).collect();
            // SAFETY: ro is RO_BYTES long and lives as long as the process.
            let ro_bytes = unsafe { std::slice::from_raw_parts_mut(ro, RO_BYTES) };
            ro_bytes.copy_from_slice(&pattern);
            container
                .map_dma_read_only(ro as u64, RO_IOVA, RO_BYTES as u64)
                .map_err(|e| format!("MAP_DMA read-only: {e}"))?;
            let res = read_only_mapping(&a, &pattern);
            container
                .unmap_dma(RO_IOVA, RO_BYTES as u64)
                .map_err(|e| format!("UNMAP_DMA: {e}"))?;
            res?;
            ensure!(
                ro_bytes[..] == pattern[..],
                "the device wrote the read-only mapping"
            );
            Ok(String::new())
        },
    );
    r.check(
        "translation faults: a vGPU whose fault service is held up does not stall another's DMA",
        || {
            let pa = a.reg(RegId::WIndex, 0, 0);
            hold_up_faults(&gpu, pa, HELD_UP_MS)?;
            let res = neighbour_fault(&a, &b);
            hold_up_faults(&gpu, pa, 0)?;
            let ms = res?;
            let st = a.wait_settled(0, T);
            ensure!(
                st == PartitionState::Idle && sys_u64(&a, IOVA + 0x50000) == 0xa,
                "the held-up vGPU did not finish: {} fault {}",
                st,
                fault_code(&a)
            );
            bench("xlate_fault_beside_held_up_ms", format!("{ms:.1}"));
            Ok(String::new())
        },
    );
    r.check(
        "DMA unmap under the vGPU's own writes: nothing is written once it returns",
        || {
            let res = unmap_in_flight(&container, &a);
            container
                .map_dma(dma as u64, IOVA, DMA_BYTES as u64)
                .map_err(|e| format!("MAP_DMA again: {e}"))?;
            reset_vgpu(&a)?;
            res
        },
    );
    r.check("DMA unmap: pages dropped, later access faults", || {
        a.submit(0, 0, &[Command::fence(Loc::Sys(IOVA + 0x3000), 9, false)]);
        ensure!(a.wait_settled(0, T) == PartitionState::Idle, "before unmap");
        container
            .unmap_dma(IOVA, DMA_BYTES as u64)
            .map_err(|e| format!("UNMAP_DMA: {e}"))?;
        a.submit(0, 0, &[Command::fence(Loc::Sys(IOVA + 0x3000), 10, false)]);
        let st = a.wait_settled(0, T);
        ensure!(st == PartitionState::Faulted, "after unmap: {}", st);
        ensure!(sys_u64(&a, IOVA + 0x3000) == 9, "device wrote after unmap");
        a.hw.dev.reset().map_err(|e| e.to_string())?;
        Ok(String::new())
    });

    // ---- benchmarks ----------------------------------------------------------
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
    let len = (fb as usize).min(16 << 20);
    let src = vec![0x3cu8; len];
    let mut dst = vec![0u8; len];
    let best = |f: &mut dyn FnMut()| {
        (0..3)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min)
    };
    let ram = best(&mut || dst.copy_from_slice(std::hint::black_box(&src)));
    let vram = best(&mut || a.hw.vram_write(0, std::hint::black_box(&src)));
    bench("vgpu_vram_mmap_vs_memcpy", format!("{:.3}", ram / vram));

    // ---- removal while open ----------------------------------------------------
    r.check(
        "mdev: removing an open vGPU waits for the user to close it",
        || {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(Vgpu::destroy(UUID_B).map_err(|e| e.to_string()));
            });
            std::thread::sleep(Duration::from_millis(300));
            ensure!(rx.try_recv().is_err(), "removed while open");
            drop(b);
            let res = rx
                .recv_timeout(T)
                .map_err(|_| "remove did not finish after close")?;
            res?;
            ensure!(Vgpu::get(UUID_B).is_err(), "still listed");
            Ok(String::new())
        },
    );
    drop(a);
    // A wrote patterns into its VRAM (isolation check, benchmark); closing
    // the device must scrub it for whoever opens this vGPU next.
    r.check(
        "VFIO: the next user of a closed vGPU finds its VRAM scrubbed",
        || {
            let dev = Device::open(&ga, UUID_A).map_err(|e| format!("reopen: {e}"))?;
            let bar2 = dev.region(2).map_err(|e| format!("BAR2 info: {e}"))?;
            let vram = dev
                .mmap(&bar2, 0, bar2.size as usize)
                .map_err(|e| format!("BAR2 mmap: {e}"))?;
            let len = vram.len();
            for off in [0, len / 2, len - 4096] {
                let mut page = [0u8; 4096];
                // SAFETY: off + 4096 <= len, inside the mapping.
                unsafe {
                    std::ptr::copy_nonoverlapping(vram.as_ptr().add(off), page.as_mut_ptr(), 4096)
                };
                ensure!(
                    page.iter().all(|&x| x == 0),
                    "VRAM at {off:#x} still holds the last user's data"
                );
            }
            Ok(String::new())
        },
    );
    let _ = Vgpu::destroy(UUID_A);
    r.check(
        "mdev: all vGPUs gone, every instance available again",
        || {
            ensure!(
                Vgpu::all().map_err(|e| e.to_string())?.is_empty(),
                "vGPUs left"
            );
            let t = gpu.find_type(&ty.id).map_err(|e| e.to_string())?;
            ensure!(t.available == max_of(&ty), "available {}", t.available);
            Ok(String::new())
        },
    );
    std::process::exit(r.finish());
}
