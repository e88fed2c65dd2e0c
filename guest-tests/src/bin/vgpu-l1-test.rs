//! vgpu-l1-test: runs as root in L1 and drives the physical vgpu-pci like a
//! bare-metal driver, through its BARs mapped from sysfs: identity,
//! registers, VRAM through the BAR, partitions, commands, fences,
//! system-memory DMA (direct and translated), faults, isolation and reset.
//! Prints a transcript and exits non-zero on any failure.

use std::hint::black_box;
use std::time::Duration;
use vdevice::command::{Command, Loc, COMMAND_BYTES};
use vdevice::driver::Driver;
use vdevice::pci;
use vdevice::regs::{
    self, AccessError, AccessErrorInfo, FaultCode, FaultLogInfo, FaultStatus, InjectKind, PartIntr,
    PartitionState, PtCtrl, RegId,
};
use vgpu_guest_tests::checks::vram_dirty_pages;
use vgpu_guest_tests::{bench, best_of, ensure, Check, DmaBuffer, MappedGpu, PciDev, Report, PAGE};

const MIB: u64 = 1 << 20;
const T: Duration = Duration::from_secs(20);
const DMA_PAGES: usize = 64;
/// A partition address mapped to the ring page of the translated checks.
const PART_RING_ADDR: u64 = 0x100_0000;

type Gpu = Driver<MappedGpu>;
type Outcome = Result<String, String>;

/// Partition 1's system-memory translation: partition addresses 0..32 pages
/// go to scattered buffer pages 32..64 (the last one read-only) and
/// PART_RING_ADDR to the ring page; the directory is buffer page 2, the page
/// tables pages 3, 6 and 7, the ring page 4.
struct Xlate {
    dir: u64,
    tables: Vec<u64>,
    ring_page: u64,
    maps: Vec<(u64, u64, bool)>,
}

impl Xlate {
    fn new(d: &DmaBuffer) -> Self {
        let mut maps: Vec<(u64, u64, bool)> = (0..32)
            .map(|i| (i as u64 * PAGE as u64, d.bus(32 + i), i != 31))
            .collect();
        maps.push((PART_RING_ADDR, d.bus(4), false));
        Self {
            dir: d.bus(2),
            tables: vec![d.bus(3), d.bus(6), d.bus(7)],
            ring_page: d.bus(4),
            maps,
        }
    }
}

/// What the setup found: the mapped GPU and the layout the checks share.
struct Ctx {
    dev: PciDev,
    g: Gpu,
    vram_size: u64,
    /// CAPS.PARTITIONS, once the identity check has read it.
    partitions: usize,
    xlate: Xlate,
}

impl Ctx {
    /// The size of each of the two partitions' VRAM slices.
    fn slice(&self) -> u64 {
        (self.vram_size / 4).min(64 * MIB)
    }

    /// Where partition 0's slice starts (partition 1's is right after it).
    fn b0(&self) -> u64 {
        self.slice()
    }

    fn b1(&self) -> u64 {
        2 * self.slice()
    }

    fn vram_u64(&self, abs: u64) -> u64 {
        self.g.hw.vram.read(abs, 8)
    }

    fn fault_code(&self, p: usize) -> FaultCode {
        FaultStatus::from_bits(self.g.reg(RegId::WFaultStatus, p, 0) as u32).code()
    }

    /// Run a batch on ring 0 of partition p and wait until it leaves BUSY.
    fn run(&self, p: usize, cmds: &[Command]) -> PartitionState {
        self.g.submit(p, 0, cmds);
        self.g.wait_not_busy(p, T)
    }

    /// Reset partition p and give it ring 0 in VRAM again.
    fn reset_partition(&self, p: usize, ring_offset: u64) {
        self.g.set(RegId::WReset, p, 0, 1);
        self.g.forget_rings(p);
        self.g.ring_in_vram(p, 0, ring_offset, 64);
    }

    /// Reset partition 1 and give it ring 0 in translated system memory.
    fn reset_translated_ring(&self) {
        self.g.set(RegId::WReset, 1, 0, 1);
        self.g.forget_rings(1);
        self.g
            .ring_in_sysmem(1, 0, PART_RING_ADDR, self.xlate.ring_page, 64);
    }
}

/// Before these pass, nothing else can work: partition checks need two.
const IDENTITY: &[Check<Ctx>] = &[
    Check {
        name: "identity: PCI IDs, class and BARs",
        run: pci_identity,
    },
    Check {
        name: "identity: ID, VERSION, CAPS, VRAM_SIZE",
        run: register_identity,
    },
];

const CHECKS: &[Check<Ctx>] = &[
    Check {
        name: "registers: scratch, read-only and bad-width accesses",
        run: register_access_rules,
    },
    Check {
        name: "registers: 64-bit register by halves and whole",
        run: register_64bit,
    },
    Check {
        name: "VRAM: BAR writes read back, first and last page",
        run: vram_through_bar,
    },
    Check {
        name: "partitions: enable two disjoint slices, overlap refused",
        run: partitions_disjoint,
    },
    Check {
        name: "engine: FILL, COPY, CRC32, FENCE in VRAM",
        run: engine_in_vram,
    },
    Check {
        name: "dirty log: exactly the VRAM pages written through BAR2 while on",
        run: dirty_log_of_bar_writes,
    },
    Check {
        name: "engine: semaphore on ring 0 released by ring 1",
        run: semaphore_between_rings,
    },
    Check {
        name: "DMA: untranslated COPY into a locked page and back",
        run: dma_untranslated,
    },
    Check {
        name: "DMA: translated 64 KiB scatter copy and CRC, ring in system memory",
        run: dma_translated,
    },
    Check {
        name: "isolation: out-of-slice COPY faults only partition 1",
        run: isolation_out_of_slice,
    },
    Check {
        name: "faults: read-only page, unmapped address, bad command; reset recovers",
        run: faults_and_recovery,
    },
    Check {
        name: "faults: replayable translation fault serviced by the host",
        run: replayable_fault,
    },
    Check {
        name: "fault injection: DMA error, ECC error, engine hang",
        run: fault_injection,
    },
    Check {
        name: "reset: scrub a disabled slice, device reset clears everything",
        run: scrub_and_device_reset,
    },
];

/// The function has the IDs, class and BAR sizes of SPEC's PCI identity.
fn pci_identity(c: &mut Ctx) -> Outcome {
    let dev = &c.dev;
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
    Ok(format!("BAR2 (VRAM) {} MiB", c.vram_size >> 20))
}

/// The global identity registers agree with SPEC and with the BARs, and
/// there are at least two partitions for the checks after this one.
fn register_identity(c: &mut Ctx) -> Outcome {
    let g = &c.g;
    ensure!(g.reg(RegId::Id, 0, 0) == regs::DEVICE_MAGIC as u64, "ID");
    let v = regs::Version::from_bits(g.reg(RegId::Version, 0, 0) as u32);
    ensure!(v.major() == regs::VERSION_MAJOR, "VERSION {v:?}");
    let caps = regs::Caps::from_bits(g.reg(RegId::Caps, 0, 0) as u32);
    c.partitions = caps.partitions() as usize;
    let partitions = c.partitions;
    ensure!(partitions >= 2, "need 2 partitions, CAPS says {partitions}");
    ensure!(
        g.reg(RegId::VramSize, 0, 0) == c.vram_size,
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
}

/// SCRATCH round-trips; a write to read-only ID and a 1-byte read are
/// refused, logged with their reasons and counted; a hole reads all ones.
fn register_access_rules(c: &mut Ctx) -> Outcome {
    let g = &c.g;
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
}

/// A 64-bit register takes two 32-bit halves and one 64-bit write alike.
fn register_64bit(c: &mut Ctx) -> Outcome {
    let regs_bar = &c.g.hw.regs;
    let off = regs::offset_of(RegId::PtXlateRoot, 1, 0);
    regs_bar.write(off, 0x1234_5000, 4);
    regs_bar.write(off + 4, 0x9, 4);
    ensure!(regs_bar.read(off, 8) == 0x9_1234_5000, "halves");
    regs_bar.write(off, 0, 8);
    ensure!(regs_bar.read(off, 8) == 0, "whole");
    Ok(String::new())
}

/// VRAM written through BAR2 reads back at its start, middle and end.
fn vram_through_bar(c: &mut Ctx) -> Outcome {
    let vram = &c.g.hw.vram;
    for off in [0, c.vram_size / 2 + 8, c.vram_size - 8] {
        let v = 0x0123_4567_89ab_cdef ^ off;
        vram.write(off, v, 8);
        ensure!(vram.read(off, 8) == v, "at {off:#x}");
    }
    Ok(String::new())
}

/// Two partitions get disjoint slices; a slice overlapping another is refused.
fn partitions_disjoint(c: &mut Ctx) -> Outcome {
    let (g, slice, b0, b1) = (&c.g, c.slice(), c.b0(), c.b1());
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
}

/// A FILL, COPY, CRC32 and FENCE batch lands in the slice with the right
/// data, fence, interrupts (RW1C) and statistics. Gives both partitions
/// ring 0 in VRAM first: the setup of the engine checks.
fn engine_in_vram(c: &mut Ctx) -> Outcome {
    let g = &c.g;
    g.ring_in_vram(0, 0, 0, 64);
    g.ring_in_vram(1, 0, 0, 64);
    g.set(RegId::WIntrMask, 0, 0, 0x7);
    let st = c.run(
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
    g.hw.vram.copy_out(c.b0() + 0x40000, &mut data);
    ensure!(
        data.chunks(4).all(|c| c == 0x5a5a_1234u32.to_le_bytes()),
        "copied data"
    );
    let want = crc32fast::hash(&data) as u64;
    let got = c.vram_u64(c.b0() + 0x8000);
    ensure!(got == want, "crc {got:#x} want {want:#x}");
    ensure!(c.vram_u64(c.b0() + 0x8008) == 7, "fence in memory");
    ensure!(g.reg(RegId::WFenceValue, 0, 0) == 7, "FENCE_VALUE");
    let st = PartIntr::from_bits(g.reg(RegId::WIntrStatus, 0, 0) as u32);
    ensure!(st.fence() && st.idle(), "INTR_STATUS {st:?}");
    g.set(RegId::WIntrStatus, 0, 0, 0x7);
    ensure!(g.reg(RegId::WIntrStatus, 0, 0) == 0, "RW1C");
    ensure!(g.reg(RegId::WStatCommands, 0, 0) == 4, "STAT_COMMANDS");
    ensure!(g.reg(RegId::WStatBytes, 0, 0) == 0x30000, "STAT_BYTES");
    Ok(String::new())
}

/// SPEC 16: with DIRTY_LOG on, partition 0's VRAM log holds exactly the
/// pages the CPU wrote through the PF's VRAM BAR since it started (QEMU
/// feeds the model its dirty tracking of the BAR's RAM), each once, and
/// none of partition 1's slice.
fn dirty_log_of_bar_writes(c: &mut Ctx) -> Outcome {
    let (g, b0, b1, slice) = (&c.g, c.b0(), c.b1(), c.slice());
    let page = PAGE as u64;
    let last = slice / page - 1;
    // Pages no other check uses; what they held is put back at the end.
    let (early, p1, p2) = (b0 + 0x300 * page, 0x201 * page + 8, 0x225 * page);
    let touched = [early, b0 + p1, b0 + p2, b0 + slice - 8, b1 + slice / 2];
    let saved: Vec<u64> = touched.iter().map(|&a| g.hw.vram.read(a, 8)).collect();
    let ctrl = PtCtrl::from_bits(g.reg(RegId::PtCtrl, 0, 0) as u32);
    g.hw.vram.write(early, 1, 8); // before the start: not logged
    g.set(
        RegId::PtCtrl,
        0,
        0,
        ctrl.with_dirty_log(true).into_bits() as u64,
    );
    let before = vram_dirty_pages(&c.g, 0, c.slice());
    ensure!(before == (vec![], 0), "fresh log holds {before:?}");
    for (off, v) in [(p1, 0x11), (p2, 0x22), (slice - 8, 0x33)] {
        g.hw.vram.write(b0 + off, v, 8);
    }
    g.hw.vram.write(b1 + slice / 2, 0x44, 8); // partition 1's slice
    let (pages, count) = vram_dirty_pages(&c.g, 0, c.slice());
    ensure!(pages == [0x201, 0x225, last], "pages {pages:x?}");
    ensure!(count == 3, "DIRTY_COUNT {count}");
    let again = vram_dirty_pages(&c.g, 0, c.slice());
    ensure!(again == (vec![], 0), "read twice: {again:?}");
    g.hw.vram.write(b0 + p2 + 16, 0x55, 4);
    let (next, _) = vram_dirty_pages(&c.g, 0, c.slice());
    ensure!(next == [0x225], "next round {next:x?}");
    for (&a, &v) in touched.iter().zip(&saved) {
        g.hw.vram.write(a, v, 8);
    }
    g.set(RegId::PtCtrl, 0, 0, ctrl.into_bits() as u64);
    Ok(format!("pages (hex) {pages:x?}, then {next:x?}"))
}

/// Ring 0 waits at a SEM_WAIT until ring 1's FENCE releases it.
fn semaphore_between_rings(c: &mut Ctx) -> Outcome {
    let g = &c.g;
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
    ensure!(c.vram_u64(c.b0() + 0x9008) == 0, "ring 0 did not wait");
    g.submit(0, 1, &[Command::fence(Loc::Vram(0x9000), 1, false)]);
    let st = g.wait_not_busy(0, T);
    ensure!(st == PartitionState::Idle, "state {}", st);
    ensure!(c.vram_u64(c.b0() + 0x9008) == 3, "ring 0 did not resume");
    Ok(String::new())
}

/// COPY and FENCE reach a locked page by its physical address, and back.
fn dma_untranslated(c: &mut Ctx) -> Outcome {
    let g = &c.g;
    let b0 = c.b0();
    let page = g.hw.dma.lock().unwrap().bus(1);
    let msg = b"vgpu DMA into L1 memory";
    g.hw.vram.copy_in(b0 + 0xa000, msg);
    let st = c.run(
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
}

/// With partition 1 translated (tables built here), a 64 KiB copy lands in
/// the scattered pages and its CRC is right, fetched from a ring that is
/// itself in translated system memory.
fn dma_translated(c: &mut Ctx) -> Outcome {
    let (g, x) = (&c.g, &c.xlate);
    let entries = g.build_xlate(x.dir, &x.tables, &x.maps);
    ensure!(entries == 9, "directory entries {entries}");
    g.set(RegId::PtCtrl, 1, 0, 0);
    g.set_xlate(1, x.dir, entries);
    ensure!(
        g.try_enable(1, c.b1(), c.slice(), PtCtrl::new().with_xlate(true)),
        "enable with XLATE"
    );
    g.forget_rings(1);
    g.ring_in_sysmem(1, 0, PART_RING_ADDR, x.ring_page, 64);
    let st = c.run(
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
        c.fault_code(1)
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
}

/// A COPY past partition 1's slice faults partition 1 alone (status, log,
/// host interrupt) and leaves partition 0's VRAM and work untouched.
fn isolation_out_of_slice(c: &mut Ctx) -> Outcome {
    let (g, slice, b0) = (&c.g, c.slice(), c.b0());
    g.set(RegId::IntrMask, 0, 0, 0xf);
    g.hw.vram.write(b0 + 0xc000, 0x1111, 8);
    let st = c.run(1, &[Command::copy(Loc::Vram(slice), Loc::Vram(0), 8)]);
    ensure!(st == PartitionState::Faulted, "state {}", st);
    ensure!(
        c.fault_code(1) == FaultCode::VramOutOfBounds,
        "code {}",
        c.fault_code(1)
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
    let st = c.run(0, &[Command::fence(Loc::Vram(0x8008), 8, false)]);
    ensure!(st == PartitionState::Idle, "partition 0 {}", st);
    let gi = regs::GlobalIntr::from_bits(g.reg(RegId::IntrStatus, 0, 0) as u32);
    ensure!(gi.partition_fault(), "host INTR_STATUS {gi:?}");
    Ok(String::new())
}

/// A write to a read-only page, an access to an unmapped address and a
/// garbage command each fault with their own code; a reset recovers.
fn faults_and_recovery(c: &mut Ctx) -> Outcome {
    c.reset_translated_ring();
    let st = c.run(1, &[Command::fence(Loc::Sys(31 * PAGE as u64), 1, false)]);
    ensure!(st == PartitionState::Faulted, "read-only: {}", st);
    ensure!(
        c.fault_code(1) == FaultCode::SysmemReadOnly,
        "code {}",
        c.fault_code(1)
    );
    c.reset_translated_ring();
    let st = c.run(1, &[Command::fence(Loc::Sys(0x80_0000), 1, false)]);
    ensure!(st == PartitionState::Faulted, "unmapped: {}", st);
    ensure!(
        c.fault_code(1) == FaultCode::SysmemUnmapped,
        "code {}",
        c.fault_code(1)
    );
    c.reset_translated_ring();
    let mut garbage = [0u8; COMMAND_BYTES];
    garbage[0] = 0xee;
    c.g.submit_raw(1, 0, &[garbage]);
    let st = c.g.wait_not_busy(1, T);
    ensure!(st == PartitionState::Faulted, "garbage: {}", st);
    ensure!(
        c.fault_code(1) == FaultCode::BadCommand,
        "code {}",
        c.fault_code(1)
    );
    c.reset_translated_ring();
    let st = c.run(1, &[Command::fence(Loc::Sys(0), 9, false)]);
    ensure!(st == PartitionState::Idle, "after reset: {}", st);
    Ok(String::new())
}

/// With replay on, an unmapped access waits in XLATE_WAIT with its address;
/// once the host maps the page and resumes, the command completes.
fn replayable_fault(c: &mut Ctx) -> Outcome {
    let (g, x) = (&c.g, &c.xlate);
    g.set(RegId::PtCtrl, 1, 0, 0);
    ensure!(
        g.try_enable(
            1,
            c.b1(),
            c.slice(),
            PtCtrl::new().with_xlate(true).with_xlate_replay(true)
        ),
        "enable"
    );
    g.forget_rings(1);
    g.ring_in_sysmem(1, 0, PART_RING_ADDR, x.ring_page, 64);
    g.submit(1, 0, &[Command::fence(Loc::Sys(0x40_0000), 0x77, false)]);
    let st = g.wait_not_busy(1, T);
    ensure!(st == PartitionState::XlateWait, "state {}", st);
    ensure!(
        g.reg(RegId::XlateFaultAddr, 0, 0) == 0x40_0000,
        "XLATE_FAULT_ADDR"
    );
    let page = g.hw.dma.lock().unwrap().bus(5);
    let mut maps = x.maps.clone();
    maps.push((0x40_0000, page, true));
    let entries = g.build_xlate(x.dir, &x.tables, &maps);
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
}

/// Injected DMA and ECC errors fault the partition, an injected hang keeps
/// it BUSY; a partition reset clears each.
fn fault_injection(c: &mut Ctx) -> Outcome {
    let g = &c.g;
    let mut out = Vec::new();
    for (kind, want) in [
        (InjectKind::DmaError, PartitionState::Faulted),
        (InjectKind::EccError, PartitionState::Faulted),
        (InjectKind::EngineHang, PartitionState::Busy),
    ] {
        c.reset_partition(0, 0);
        g.set(RegId::PtInject, 0, 0, kind.into_bits() as u64);
        let page = g.hw.dma.lock().unwrap().bus(1);
        g.submit(
            0,
            0,
            &[Command::copy(Loc::Vram(0xd000), Loc::Sys(page), 64)],
        );
        std::thread::sleep(Duration::from_millis(20));
        let st = g.wait_not_busy(0, Duration::from_millis(200));
        ensure!(st == want, "{kind:?}: state {}", st);
        out.push(format!("{kind:?}->{}", st));
    }
    c.reset_partition(0, 0);
    let st = c.run(0, &[Command::nop()]);
    ensure!(st == PartitionState::Idle, "after reset {}", st);
    Ok(out.join(" "))
}

/// PT_SCRUB zeroes a disabled slice; DEVICE_RESET disables partitions and
/// clears registers and VRAM.
fn scrub_and_device_reset(c: &mut Ctx) -> Outcome {
    let (g, b0, b1) = (&c.g, c.b0(), c.b1());
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
}

/// VRAM BAR bandwidth against a heap memcpy (figures, not a check).
fn bench_vram_bar(c: &Ctx) {
    let n = (32 * MIB).min(c.vram_size / 2) as usize;
    let vram = &c.g.hw.vram;
    let src = vec![0x3cu8; n];
    let mut dst = vec![0u8; n];
    let ram = best_of(3, || dst.copy_from_slice(black_box(&src)));
    let bar_w = best_of(3, || vram.copy_in(0, black_box(&src)));
    let bar_r = best_of(3, || vram.copy_out(0, black_box(&mut dst)));
    bench("l1_vram_bar_write_vs_memcpy", format!("{:.3}", ram / bar_w));
    bench("l1_vram_bar_read_vs_memcpy", format!("{:.3}", ram / bar_r));
    bench(
        "l1_memcpy_mib_s",
        format!("{:.0}", n as f64 / ram / MIB as f64),
    );
}

/// Find and map the GPU: its BARs and a locked DMA buffer.
fn setup() -> Result<Ctx, String> {
    let dev =
        PciDev::find(pci::VENDOR_ID, pci::DEVICE_ID).map_err(|e| format!("find the GPU: {e}"))?;
    let map = || -> Result<Gpu, String> {
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
    let g = map().map_err(|e| format!("map the GPU: {e}"))?;
    let xlate = Xlate::new(&g.hw.dma.lock().unwrap());
    Ok(Ctx {
        vram_size: g.hw.vram.len as u64,
        dev,
        g,
        partitions: 0,
        xlate,
    })
}

fn main() {
    let mut c = match setup() {
        Ok(c) => c,
        Err(e) => {
            println!("FAIL {e}");
            std::process::exit(1);
        }
    };
    let mut r = Report::default();
    r.run(&mut c, IDENTITY);
    if c.partitions >= 2 {
        r.run(&mut c, CHECKS);
        bench_vram_bar(&c);
    }
    std::process::exit(r.finish());
}
