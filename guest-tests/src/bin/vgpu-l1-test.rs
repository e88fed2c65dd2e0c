//! vgpu-l1-test: runs as root in L1 and drives the physical vgpu-pci like a
//! bare-metal driver, through its BARs mapped from sysfs: identity,
//! registers, VRAM through the BAR, partitions, commands, fences,
//! system-memory DMA (direct and translated), faults, isolation and reset.
//! Prints a transcript and exits non-zero on any failure.

use std::time::{Duration, Instant};
use vdevice::command::{Command, Loc, COMMAND_BYTES};
use vdevice::driver::Driver;
use vdevice::pci;
use vdevice::regs::{
    self, AccessError, AccessErrorInfo, FaultCode, FaultLogInfo, FaultStatus, InjectKind, PartIntr,
    PartitionState, PtCtrl, RegId,
};
use vgpu_guest_tests::{ensure, DmaBuffer, MappedGpu, PciDev, Report, PAGE};

const MIB: u64 = 1 << 20;
const T: Duration = Duration::from_secs(20);
const DMA_PAGES: usize = 64;

type Gpu = Driver<MappedGpu>;

fn vram_u64(g: &Gpu, abs: u64) -> u64 {
    g.hw.vram.read(abs, 8)
}

fn fault_code(g: &Gpu, p: usize) -> FaultCode {
    FaultStatus::from_bits(g.reg(RegId::WFaultStatus, p, 0) as u32).code()
}

/// Run a batch on ring 0 of partition p and wait until it leaves BUSY.
fn run(g: &Gpu, p: usize, cmds: &[Command]) -> PartitionState {
    g.submit(p, 0, cmds);
    g.wait_not_busy(p, T)
}

fn reset_partition(g: &Gpu, p: usize, ring_offset: u64) {
    g.set(RegId::WReset, p, 0, 1);
    g.forget_rings(p);
    g.ring_in_vram(p, 0, ring_offset, 64);
}

/// Best-of-3 seconds for `f`.
fn best(mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let mut r = Report::default();
    let dev = match PciDev::find(pci::VENDOR_ID, pci::DEVICE_ID) {
        Ok(d) => d,
        Err(e) => {
            println!("FAIL find the GPU: {e}");
            std::process::exit(1);
        }
    };
    let setup = || -> Result<Gpu, String> {
        dev.enable_mem_and_bus_master()?;
        let regs_bar = dev.map_bar(regs::REG_BAR as usize, false)?;
        let vram = dev.map_bar(regs::VRAM_BAR as usize, true)?;
        let dma = DmaBuffer::new(DMA_PAGES)?;
        Ok(Driver::new(MappedGpu {
            regs: regs_bar,
            vram,
            dma: std::sync::Mutex::new(dma),
        }))
    };
    let g = match setup() {
        Ok(g) => g,
        Err(e) => {
            println!("FAIL map the GPU: {e}");
            std::process::exit(1);
        }
    };
    let vram_size = g.hw.vram.len as u64;

    // ---- identity ------------------------------------------------------
    let mut partitions = 0usize;
    r.check("identity: PCI IDs, class and BARs", || {
        ensure!(
            dev.attr("subsystem_vendor") == Some(pci::SUBSYSTEM_VENDOR_ID as u64),
            "subsystem vendor"
        );
        ensure!(
            dev.attr("subsystem_device") == Some(pci::SUBSYSTEM_ID as u64),
            "subsystem id"
        );
        ensure!(
            dev.attr("class") == Some(pci::CLASS_CODE as u64),
            "class {:?}",
            dev.attr("class")
        );
        ensure!(
            dev.bar_size(0) == Some(regs::REG_BAR_SIZE),
            "BAR0 size {:?}",
            dev.bar_size(0)
        );
        ensure!(
            dev.bar_size(4) == Some(regs::MSIX_BAR_SIZE),
            "BAR4 size {:?}",
            dev.bar_size(4)
        );
        Ok(format!("BAR2 (VRAM) {} MiB", vram_size >> 20))
    });
    r.check("identity: ID, VERSION, CAPS, VRAM_SIZE", || {
        ensure!(g.reg(RegId::Id, 0, 0) == regs::DEVICE_MAGIC as u64, "ID");
        let v = regs::Version::from_bits(g.reg(RegId::Version, 0, 0) as u32);
        ensure!(v.major() == regs::VERSION_MAJOR, "VERSION {v:?}");
        let caps = regs::Caps::from_bits(g.reg(RegId::Caps, 0, 0) as u32);
        partitions = caps.partitions() as usize;
        ensure!(partitions >= 2, "need 2 partitions, CAPS says {partitions}");
        ensure!(
            g.reg(RegId::VramSize, 0, 0) == vram_size,
            "VRAM_SIZE != BAR2 size"
        );
        ensure!(
            g.reg(RegId::PartitionStride, 0, 0) == regs::WINDOW_STRIDE,
            "stride"
        );
        Ok(format!(
            "partitions={} engines={} rings={}",
            caps.partitions(),
            caps.engines(),
            caps.rings_per_partition()
        ))
    });
    if partitions < 2 {
        std::process::exit(r.finish());
    }

    // ---- registers -----------------------------------------------------
    r.check(
        "registers: scratch, read-only and bad-width accesses",
        || {
            g.set(RegId::Scratch, 0, 0, 0xdead_beef);
            ensure!(g.reg(RegId::Scratch, 0, 0) == 0xdead_beef, "scratch");
            let errs = g.reg(RegId::AccessErrorCount, 0, 0);
            g.set(RegId::Id, 0, 0, 0);
            ensure!(
                g.reg(RegId::Id, 0, 0) == regs::DEVICE_MAGIC as u64,
                "ID changed"
            );
            let info = AccessErrorInfo::from_bits(g.reg(RegId::AccessErrorInfo, 0, 0) as u32);
            ensure!(info.reason() == AccessError::ReadOnly, "reason {info:?}");
            let b = g.hw.regs.read(regs::offset_of(RegId::Scratch, 0, 0), 1);
            ensure!(b == 0xff, "1-byte read gave {b:#x}, want all ones");
            let info = AccessErrorInfo::from_bits(g.reg(RegId::AccessErrorInfo, 0, 0) as u32);
            ensure!(info.reason() == AccessError::BadWidth, "reason {info:?}");
            ensure!(
                g.reg(RegId::AccessErrorCount, 0, 0) == errs + 2,
                "error count"
            );
            let hole = g.hw.regs.read(0xffc, 4);
            ensure!(hole == 0xffff_ffff, "unmapped read {hole:#x}");
            Ok(String::new())
        },
    );
    r.check("registers: 64-bit register by halves and whole", || {
        let off = regs::offset_of(RegId::PtXlateRoot, 1, 0);
        g.hw.regs.write(off, 0x1234_5000, 4);
        g.hw.regs.write(off + 4, 0x9, 4);
        ensure!(g.hw.regs.read(off, 8) == 0x9_1234_5000, "halves");
        g.hw.regs.write(off, 0, 8);
        ensure!(g.hw.regs.read(off, 8) == 0, "whole");
        Ok(String::new())
    });

    // ---- VRAM through the BAR ------------------------------------------
    r.check("VRAM: BAR writes read back, first and last page", || {
        for off in [0, vram_size / 2 + 8, vram_size - 8] {
            let v = 0x0123_4567_89ab_cdef ^ off;
            g.hw.vram.write(off, v, 8);
            ensure!(g.hw.vram.read(off, 8) == v, "at {off:#x}");
        }
        Ok(String::new())
    });

    // ---- partitions and commands ---------------------------------------
    let slice = (vram_size / 4).min(64 * MIB);
    let (b0, b1) = (slice, 2 * slice);
    r.check(
        "partitions: enable two disjoint slices, overlap refused",
        || {
            ensure!(
                g.try_enable(0, b0, slice, PtCtrl::new()),
                "partition 0 refused"
            );
            ensure!(
                !g.try_enable(1, b0 + slice / 2, slice, PtCtrl::new()),
                "overlap accepted"
            );
            ensure!(
                g.try_enable(1, b1, slice, PtCtrl::new()),
                "partition 1 refused"
            );
            ensure!(g.reg(RegId::WVramSize, 1, 0) == slice, "window VRAM_SIZE");
            Ok(format!("slices of {} MiB", slice >> 20))
        },
    );
    g.ring_in_vram(0, 0, 0, 64);
    g.ring_in_vram(1, 0, 0, 64);
    g.set(RegId::WIntrMask, 0, 0, 0x7);

    r.check("engine: FILL, COPY, CRC32, FENCE in VRAM", || {
        let st = run(
            &g,
            0,
            &[
                Command::fill(Loc::Vram(0x10000), 0x10000, 0x5a5a_1234),
                Command::copy(Loc::Vram(0x40000), Loc::Vram(0x10000), 0x10000),
                Command::crc32(Loc::Vram(0x8000), Loc::Vram(0x40000), 0x10000),
                Command::fence(Loc::Vram(0x8008), 7, true),
            ],
        );
        ensure!(st == PartitionState::Idle, "state {}", st);
        let mut data = vec![0u8; 0x10000];
        g.hw.vram.copy_out(b0 + 0x40000, &mut data);
        ensure!(
            data.chunks(4).all(|c| c == 0x5a5a_1234u32.to_le_bytes()),
            "copied data"
        );
        let want = crc32fast::hash(&data) as u64;
        let got = vram_u64(&g, b0 + 0x8000);
        ensure!(got == want, "crc {got:#x} want {want:#x}");
        ensure!(vram_u64(&g, b0 + 0x8008) == 7, "fence in memory");
        ensure!(g.reg(RegId::WFenceValue, 0, 0) == 7, "FENCE_VALUE");
        let st = PartIntr::from_bits(g.reg(RegId::WIntrStatus, 0, 0) as u32);
        ensure!(st.fence() && st.idle(), "INTR_STATUS {st:?}");
        g.set(RegId::WIntrStatus, 0, 0, 0x7);
        ensure!(g.reg(RegId::WIntrStatus, 0, 0) == 0, "RW1C");
        ensure!(g.reg(RegId::WStatCommands, 0, 0) == 4, "STAT_COMMANDS");
        ensure!(g.reg(RegId::WStatBytes, 0, 0) == 0x30000, "STAT_BYTES");
        Ok(String::new())
    });

    r.check("engine: semaphore on ring 0 released by ring 1", || {
        g.ring_in_vram(0, 1, 0x1000, 64);
        g.submit(
            0,
            0,
            &[
                Command::sem_wait(Loc::Vram(0x9000), 1),
                Command::fence(Loc::Vram(0x9008), 3, false),
            ],
        );
        std::thread::sleep(Duration::from_millis(20));
        ensure!(vram_u64(&g, b0 + 0x9008) == 0, "ring 0 did not wait");
        g.submit(0, 1, &[Command::fence(Loc::Vram(0x9000), 1, false)]);
        let st = g.wait_not_busy(0, T);
        ensure!(st == PartitionState::Idle, "state {}", st);
        ensure!(vram_u64(&g, b0 + 0x9008) == 3, "ring 0 did not resume");
        Ok(String::new())
    });

    // ---- system-memory DMA ---------------------------------------------
    r.check("DMA: untranslated COPY into a locked page and back", || {
        let page = g.hw.dma.lock().unwrap().bus(1);
        let msg = b"vgpu DMA into L1 memory";
        g.hw.vram.copy_in(b0 + 0xa000, msg);
        let st = run(
            &g,
            0,
            &[
                Command::copy(Loc::Sys(page + 100), Loc::Vram(0xa000), msg.len() as u64),
                Command::copy(Loc::Vram(0xb000), Loc::Sys(page + 100), msg.len() as u64),
                Command::fence(Loc::Sys(page + 512), 0xfeed, false),
            ],
        );
        ensure!(st == PartitionState::Idle, "state {}", st);
        let dma = g.hw.dma.lock().unwrap();
        ensure!(
            &dma.bytes()[PAGE + 100..PAGE + 100 + msg.len()] == msg,
            "system memory"
        );
        ensure!(
            dma.bytes()[PAGE + 512..PAGE + 520] == 0xfeedu64.to_le_bytes(),
            "fence"
        );
        drop(dma);
        let mut back = vec![0u8; msg.len()];
        g.hw.vram.copy_out(b0 + 0xb000, &mut back);
        ensure!(back == msg, "copied back");
        Ok(String::new())
    });

    // Translated: partition addresses 0..32 pages -> scattered L1 pages 32..64;
    // the directory is page 2, page tables pages 3, 6 and 7, the ring page 4.
    let (dir, tables, ring_page) = {
        let d = g.hw.dma.lock().unwrap();
        (d.bus(2), vec![d.bus(3), d.bus(6), d.bus(7)], d.bus(4))
    };
    let maps: Vec<(u64, u64, bool)> = {
        let d = g.hw.dma.lock().unwrap();
        (0..32)
            .map(|i| (i as u64 * PAGE as u64, d.bus(32 + i), i != 31))
            .collect()
    };
    let part_ring_addr = 0x100_0000u64; // a partition address mapped to ring_page
    let mut all_maps = maps.clone();
    all_maps.push((part_ring_addr, ring_page, false));
    let entries = g.build_xlate(dir, &tables, &all_maps);
    r.check(
        "DMA: translated 64 KiB scatter copy and CRC, ring in system memory",
        || {
            ensure!(entries == 9, "directory entries {entries}");
            g.set(RegId::PtCtrl, 1, 0, 0);
            g.set_xlate(1, dir, entries);
            ensure!(
                g.try_enable(1, b1, slice, PtCtrl::new().with_xlate(true)),
                "enable with XLATE"
            );
            g.forget_rings(1);
            g.ring_in_sysmem(1, 0, part_ring_addr, ring_page, 64);
            let st = run(
                &g,
                1,
                &[
                    Command::fill(Loc::Vram(0x20000), 0x10000, 0x0bad_cafe),
                    Command::copy(Loc::Sys(0x1000), Loc::Vram(0x20000), 0x10000),
                    Command::crc32(Loc::Sys(0x11000), Loc::Sys(0x1000), 0x10000),
                ],
            );
            ensure!(
                st == PartitionState::Idle,
                "state {} fault {}",
                st,
                fault_code(&g, 1)
            );
            let d = g.hw.dma.lock().unwrap();
            // partition address 0x1000.. is buffer page 33..49
            let got = &d.bytes()[33 * PAGE..49 * PAGE];
            ensure!(
                got.chunks(4).all(|c| c == 0x0bad_cafeu32.to_le_bytes()),
                "scattered data"
            );
            let crc = u64::from_le_bytes(d.bytes()[49 * PAGE..49 * PAGE + 8].try_into().unwrap());
            ensure!(crc == crc32fast::hash(got) as u64, "crc");
            Ok(String::new())
        },
    );

    // ---- faults and isolation --------------------------------------------
    r.check(
        "isolation: out-of-slice COPY faults only partition 1",
        || {
            g.set(RegId::IntrMask, 0, 0, 0xf);
            g.hw.vram.write(b0 + 0xc000, 0x1111, 8);
            let st = run(&g, 1, &[Command::copy(Loc::Vram(slice), Loc::Vram(0), 8)]);
            ensure!(st == PartitionState::Faulted, "state {}", st);
            ensure!(
                fault_code(&g, 1) == FaultCode::VramOutOfBounds,
                "code {}",
                fault_code(&g, 1)
            );
            ensure!(g.reg(RegId::WFaultAddr, 1, 0) == slice, "FAULT_ADDR");
            ensure!(
                g.reg(RegId::FaultedPartitions, 0, 0) == 0b10,
                "FAULTED_PARTITIONS"
            );
            let e = FaultLogInfo::from_bits(g.reg(RegId::FaultLogInfo, 0, 0) as u32);
            ensure!(e.valid() && e.partition() == 1, "fault log {e:?}");
            g.set(RegId::FaultLogPop, 0, 0, 1);
            ensure!(
                g.hw.vram.read(b0 + 0xc000, 8) == 0x1111,
                "partition 0 VRAM changed"
            );
            let st = run(&g, 0, &[Command::fence(Loc::Vram(0x8008), 8, false)]);
            ensure!(st == PartitionState::Idle, "partition 0 {}", st);
            let gi = regs::GlobalIntr::from_bits(g.reg(RegId::IntrStatus, 0, 0) as u32);
            ensure!(gi.partition_fault(), "host INTR_STATUS {gi:?}");
            Ok(String::new())
        },
    );
    r.check(
        "faults: read-only page, unmapped address, bad command; reset recovers",
        || {
            let ring = |g: &Gpu| {
                g.set(RegId::WReset, 1, 0, 1);
                g.forget_rings(1);
                g.ring_in_sysmem(1, 0, part_ring_addr, ring_page, 64);
            };
            ring(&g);
            let st = run(
                &g,
                1,
                &[Command::fence(Loc::Sys(31 * PAGE as u64), 1, false)],
            );
            ensure!(st == PartitionState::Faulted, "read-only: {}", st);
            ensure!(
                fault_code(&g, 1) == FaultCode::SysmemReadOnly,
                "code {}",
                fault_code(&g, 1)
            );
            ring(&g);
            let st = run(&g, 1, &[Command::fence(Loc::Sys(0x80_0000), 1, false)]);
            ensure!(st == PartitionState::Faulted, "unmapped: {}", st);
            ensure!(
                fault_code(&g, 1) == FaultCode::SysmemUnmapped,
                "code {}",
                fault_code(&g, 1)
            );
            ring(&g);
            let mut garbage = [0u8; COMMAND_BYTES];
            garbage[0] = 0xee;
            g.submit_raw(1, 0, &[garbage]);
            let st = g.wait_not_busy(1, T);
            ensure!(st == PartitionState::Faulted, "garbage: {}", st);
            ensure!(
                fault_code(&g, 1) == FaultCode::BadCommand,
                "code {}",
                fault_code(&g, 1)
            );
            ring(&g);
            let st = run(&g, 1, &[Command::fence(Loc::Sys(0), 9, false)]);
            ensure!(st == PartitionState::Idle, "after reset: {}", st);
            Ok(String::new())
        },
    );
    r.check(
        "faults: replayable translation fault serviced by the host",
        || {
            g.set(RegId::PtCtrl, 1, 0, 0);
            ensure!(
                g.try_enable(
                    1,
                    b1,
                    slice,
                    PtCtrl::new().with_xlate(true).with_xlate_replay(true)
                ),
                "enable"
            );
            g.forget_rings(1);
            g.ring_in_sysmem(1, 0, part_ring_addr, ring_page, 64);
            g.submit(1, 0, &[Command::fence(Loc::Sys(0x40_0000), 0x77, false)]);
            let st = g.wait_not_busy(1, T);
            ensure!(st == PartitionState::XlateWait, "state {}", st);
            ensure!(
                g.reg(RegId::XlateFaultAddr, 0, 0) == 0x40_0000,
                "XLATE_FAULT_ADDR"
            );
            let page = g.hw.dma.lock().unwrap().bus(5);
            let mut maps = all_maps.clone();
            maps.push((0x40_0000, page, true));
            let entries = g.build_xlate(dir, &tables, &maps);
            g.set(RegId::PtXlateDirEntries, 1, 0, entries as u64);
            g.set(RegId::XlateFaultPop, 0, 0, 1);
            g.set(RegId::XlateResume, 0, 0, 1);
            let st = g.wait_not_busy(1, T);
            ensure!(st == PartitionState::Idle, "after resume {}", st);
            let d = g.hw.dma.lock().unwrap();
            ensure!(
                d.bytes()[5 * PAGE..5 * PAGE + 8] == 0x77u64.to_le_bytes(),
                "fence landed"
            );
            Ok(String::new())
        },
    );
    r.check("fault injection: DMA error, ECC error, engine hang", || {
        let mut out = Vec::new();
        for (kind, want) in [
            (InjectKind::DmaError, PartitionState::Faulted),
            (InjectKind::EccError, PartitionState::Faulted),
            (InjectKind::EngineHang, PartitionState::Busy),
        ] {
            reset_partition(&g, 0, 0);
            g.set(RegId::PtInject, 0, 0, kind.into_bits() as u64);
            g.submit(
                0,
                0,
                &[Command::copy(
                    Loc::Vram(0xd000),
                    Loc::Sys(g.hw.dma.lock().unwrap().bus(1)),
                    64,
                )],
            );
            std::thread::sleep(Duration::from_millis(20));
            let st = g.wait_not_busy(0, Duration::from_millis(200));
            ensure!(st == want, "{kind:?}: state {}", st);
            out.push(format!("{kind:?}->{}", st));
        }
        reset_partition(&g, 0, 0);
        let st = run(&g, 0, &[Command::nop()]);
        ensure!(st == PartitionState::Idle, "after reset {}", st);
        Ok(out.join(" "))
    });

    // ---- reset -----------------------------------------------------------
    r.check(
        "reset: scrub a disabled slice, device reset clears everything",
        || {
            g.hw.vram.write(b1 + 0x100, 0xabcd, 8);
            g.set(RegId::PtCtrl, 1, 0, 0);
            g.set(RegId::PtScrub, 1, 0, 1);
            ensure!(g.hw.vram.read(b1 + 0x100, 8) == 0, "slice not scrubbed");
            g.set(RegId::DeviceReset, 0, 0, 1);
            ensure!(
                g.state(0) == PartitionState::Disabled,
                "partition 0 still enabled"
            );
            ensure!(g.reg(RegId::Scratch, 0, 0) == 0, "scratch kept");
            ensure!(g.hw.vram.read(b0 + 0x8008, 8) == 0, "VRAM not scrubbed");
            Ok(String::new())
        },
    );

    // ---- VRAM BAR bandwidth ----------------------------------------------
    let n = (32 * MIB).min(vram_size / 2) as usize;
    let src = vec![0x3cu8; n];
    let mut dst = vec![0u8; n];
    let ram = best(|| dst.copy_from_slice(std::hint::black_box(&src)));
    let bar_w = best(|| g.hw.vram.copy_in(0, std::hint::black_box(&src)));
    let bar_r = best(|| g.hw.vram.copy_out(0, std::hint::black_box(&mut dst)));
    vgpu_guest_tests::bench("l1_vram_bar_write_vs_memcpy", format!("{:.3}", ram / bar_w));
    vgpu_guest_tests::bench("l1_vram_bar_read_vs_memcpy", format!("{:.3}", ram / bar_r));
    vgpu_guest_tests::bench(
        "l1_memcpy_mib_s",
        format!("{:.0}", n as f64 / ram / MIB as f64),
    );
    std::process::exit(r.finish());
}
