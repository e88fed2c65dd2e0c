//! Dirty-page logs (SPEC 16): exactly the pages a partition's engine wrote,
//! in partition system-memory addresses (translated or not) and in its VRAM
//! slice, read and cleared through DIRTY_WORD; nothing while the log is
//! off; overflow beyond the logged span. The VRAM log also holds the
//! CPU writes through the VRAM BAR (PF or VF) that the host reports through
//! `VramWriteLog`, and those the device serves itself.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vdevice::command::{Command, Loc};
use vdevice::dirty::DIRTY_SYS_SPAN;
use vdevice::regs::{
    AccessError, AccessErrorInfo, DirtyKind, DirtySel, PartitionState, PtCtrl, RegId, VF_VRAM_BAR,
    VRAM_BAR,
};
use vdevice::testing::Harness;
use vdevice::{DeviceConfig, VramWriteLog};

const MIB: u64 = 1 << 20;
const PAGE: u64 = 4096;
const T: Duration = Duration::from_secs(10);

fn harness() -> Harness {
    Harness::new(
        DeviceConfig {
            vram_size_bytes: 64 * MIB,
            partitions: 2,
            engines: 2,
            ..DeviceConfig::default()
        },
        16 << 20,
    )
}

fn logging(ctrl: PtCtrl) -> PtCtrl {
    ctrl.with_enable(true).with_dirty_log(true)
}

/// The pages set in partition `p`'s `kind` log, read (and so cleared) in
/// full, and DIRTY_COUNT before the read.
fn dirty_pages(h: &Harness, p: usize, kind: DirtyKind, words: u32) -> (Vec<u64>, u64) {
    let sel = DirtySel::new().with_partition(p as u8).with_log(kind);
    h.set(RegId::DirtySel, 0, 0, sel.into_bits() as u64);
    let count = h.reg(RegId::DirtyCount, 0, 0);
    let mut pages = Vec::new();
    for i in 0..words {
        let w = h.reg(RegId::DirtyWord, 0, 0) as u32;
        pages.extend(
            (0..32)
                .filter(|b| w & 1 << b != 0)
                .map(|b| (i * 32 + b) as u64),
        );
    }
    (pages, count)
}

#[test]
fn the_logs_hold_exactly_the_pages_the_engine_wrote() {
    let h = harness();
    h.enable(0, 0, 8 * MIB, PtCtrl::new());
    h.set(
        RegId::PtCtrl,
        0,
        0,
        logging(PtCtrl::new()).into_bits() as u64,
    );
    h.ring_in_sysmem(0, 0, 0x10_0000, 0x10_0000, 64);
    h.submit(
        0,
        0,
        &[
            // three pages from 0x20_1000, the last one partly
            Command::fill(Loc::Sys(0x20_1000), 2 * PAGE + 8, 0x11),
            // VRAM pages 5 and 6 (from system memory, which is only read)
            Command::copy(Loc::Vram(5 * PAGE), Loc::Sys(0x30_0000), 2 * PAGE),
            Command::fill(Loc::Vram(MIB), 4, 0x22),
            Command::fence(Loc::Sys(0x40_0010), 1, false),
        ],
    );
    assert_eq!(h.wait_not_busy(0, T), PartitionState::Idle);
    let (sys, count) = dirty_pages(&h, 0, DirtyKind::Sysmem, 0x50_0000 / PAGE as u32 / 32);
    assert_eq!(
        sys,
        [0x201, 0x202, 0x203, 0x400],
        "ring reads and COPY sources are not writes"
    );
    assert_eq!(count, 4);
    let (vram, count) = dirty_pages(&h, 0, DirtyKind::Vram, 8 * MIB as u32 / PAGE as u32 / 32);
    assert_eq!(vram, [5, 6, MIB / PAGE]);
    assert_eq!(count, 3);
    // Read means cleared.
    assert_eq!(dirty_pages(&h, 0, DirtyKind::Sysmem, 64).1, 0);
    // Partition 1 logged nothing: its log is off.
    assert_eq!(dirty_pages(&h, 1, DirtyKind::Sysmem, 64).1, 0);
    // Off drops the log; DIRTY_LOG without ENABLE is refused.
    h.set(
        RegId::PtCtrl,
        0,
        0,
        PtCtrl::new().with_enable(true).into_bits() as u64,
    );
    h.submit(0, 0, &[Command::fence(Loc::Sys(0x40_0010), 2, false)]);
    assert_eq!(h.wait_not_busy(0, T), PartitionState::Idle);
    assert_eq!(dirty_pages(&h, 0, DirtyKind::Sysmem, 0x500).1, 0);
    h.set(
        RegId::PtCtrl,
        1,
        0,
        PtCtrl::new().with_dirty_log(true).into_bits() as u64,
    );
    let info = AccessErrorInfo::from_bits(h.reg(RegId::AccessErrorInfo, 0, 0) as u32);
    assert_eq!(info.reason(), AccessError::BadValue);
}

#[test]
fn translated_partitions_log_their_own_addresses_not_bus_ones() {
    let h = harness();
    // partition page 0x10 -> bus 0x80_0000, page 0x11 -> bus 0x90_0000
    let maps = [
        (0x10 * PAGE, 0x80_0000, true),
        (0x11 * PAGE, 0x90_0000, true),
        (0x20 * PAGE, 0x10_0000, false),
    ];
    let entries = h.build_xlate(0x0, 0x1000, &maps);
    h.set_xlate(0, 0x0, entries);
    h.enable(0, 0, 8 * MIB, logging(PtCtrl::new().with_xlate(true)));
    h.ring_in_sysmem(0, 0, 0x20 * PAGE, 0x10_0000, 64);
    h.submit(0, 0, &[Command::fill(Loc::Sys(0x10 * PAGE + 16), PAGE, 7)]);
    assert_eq!(h.wait_not_busy(0, T), PartitionState::Idle);
    let (sys, _) = dirty_pages(&h, 0, DirtyKind::Sysmem, 4);
    assert_eq!(sys, [0x10, 0x11]);
    assert_eq!(h.mem.read_u64(0x80_0010), 0x0000_0007_0000_0007);
}

#[test]
fn writes_beyond_the_logged_span_set_overflow_until_cleared() {
    let h = Harness::new(
        DeviceConfig {
            vram_size_bytes: 64 * MIB,
            partitions: 1,
            engines: 1,
            ..DeviceConfig::default()
        },
        4 << 20,
    );
    h.enable(0, 0, 8 * MIB, logging(PtCtrl::new()));
    h.ring_in_vram(0, 0, 0, 64);
    // Beyond the span: the fake memory refuses the bus address, so the
    // partition faults with DMA_ERROR, but the write was attempted.
    h.submit(0, 0, &[Command::fence(Loc::Sys(DIRTY_SYS_SPAN), 1, false)]);
    h.wait_settled(0, T);
    assert_eq!(h.reg(RegId::DirtyOverflow, 0, 0), 1);
    h.set(RegId::DirtyOverflow, 0, 0, 1);
    assert_eq!(h.reg(RegId::DirtyOverflow, 0, 0), 0);
    // A partition out of range cannot be selected.
    h.set(RegId::DirtySel, 0, 0, 5);
    let info = AccessErrorInfo::from_bits(h.reg(RegId::AccessErrorInfo, 0, 0) as u32);
    assert_eq!(info.reason(), AccessError::BadValue);
}

#[test]
fn a_replayed_translation_miss_is_logged_once_resolved() {
    let h = harness();
    let maps = [(0x20 * PAGE, 0x10_0000, false)];
    let entries = h.build_xlate(0x0, 0x1000, &maps);
    h.set_xlate(0, 0x0, entries);
    h.enable(
        0,
        0,
        8 * MIB,
        logging(PtCtrl::new().with_xlate(true).with_xlate_replay(true)),
    );
    h.ring_in_sysmem(0, 0, 0x20 * PAGE, 0x10_0000, 64);
    h.submit(0, 0, &[Command::fill(Loc::Sys(0x40 * PAGE), PAGE, 9)]);
    assert_eq!(h.wait_not_busy(0, T), PartitionState::XlateWait);
    assert_eq!(h.reg(RegId::XlateFaultCount, 0, 0), 1);
    assert_eq!(
        dirty_pages(&h, 0, DirtyKind::Sysmem, 4).1,
        0,
        "nothing written yet"
    );
    // The host maps the page and replays.
    let maps = [
        (0x20 * PAGE, 0x10_0000, false),
        (0x40 * PAGE, 0x30_0000, true),
    ];
    let entries = h.build_xlate(0x0, 0x1000, &maps);
    h.set_xlate(0, 0x0, entries);
    h.set(RegId::XlateFaultPop, 0, 0, 1);
    h.set(RegId::XlateResume, 0, 0, 0);
    assert_eq!(h.wait_settled(0, T), PartitionState::Idle);
    assert_eq!(dirty_pages(&h, 0, DirtyKind::Sysmem, 4).0, [0x40]);
}

/// The VMM's dirty tracking of the mapped VRAM BAR, as QEMU's: it hands
/// over (and forgets) whole 256 KiB windows, wider than the range asked.
#[derive(Default)]
struct FakeVramLog {
    written: Mutex<BTreeSet<u64>>,
    asked: Mutex<Vec<(u64, u64)>>,
}

const WINDOW: u64 = 64 * PAGE;

impl FakeVramLog {
    /// A CPU store at VRAM offset `at` through a mapped BAR.
    fn cpu_write(&self, at: u64) {
        self.written.lock().unwrap().insert(at / PAGE * PAGE);
    }
}

impl VramWriteLog for FakeVramLog {
    fn take_cpu_dirty(&self, offset: u64, len: u64, mark: &mut dyn FnMut(u64)) {
        self.asked.lock().unwrap().push((offset, len));
        let (from, to) = (
            offset / WINDOW * WINDOW,
            (offset + len).div_ceil(WINDOW) * WINDOW,
        );
        let mut w = self.written.lock().unwrap();
        let taken: Vec<u64> = w.range(from..to).copied().collect();
        for page in taken {
            w.remove(&page);
            mark(page);
        }
    }
}

fn with_vram_log(cfg: DeviceConfig) -> (Harness, Arc<FakeVramLog>) {
    let h = Harness::new(cfg, 1 << 20);
    let log = Arc::new(FakeVramLog::default());
    assert!(h.dev.set_vram_write_log(log.clone()));
    assert!(!h.dev.set_vram_write_log(log.clone()), "set once");
    (h, log)
}

#[test]
fn cpu_writes_through_the_vram_bar_are_logged_while_the_log_is_on() {
    let (h, cpu) = with_vram_log(DeviceConfig {
        vram_size_bytes: 64 * MIB,
        partitions: 2,
        engines: 1,
        ..DeviceConfig::default()
    });
    // Slices on 64 KiB granules, so the host's 256 KiB windows straddle
    // them: partition 0 at 64 KiB, partition 1 right after it.
    let (base0, base1) = (0x1_0000, 0x11_0000);
    h.enable(0, base0, MIB, PtCtrl::new());
    h.enable(1, base1, MIB, PtCtrl::new());
    let words = (MIB / PAGE / 32) as u32;
    // Written before the log starts: dropped when it does.
    cpu.cpu_write(base0 + 7 * PAGE);
    h.dev.write(VRAM_BAR, base0 + 9 * PAGE, 1, 8);
    h.set(
        RegId::PtCtrl,
        0,
        0,
        logging(PtCtrl::new()).into_bits() as u64,
    );
    h.set(
        RegId::PtCtrl,
        1,
        0,
        logging(PtCtrl::new()).into_bits() as u64,
    );
    assert_eq!(dirty_pages(&h, 0, DirtyKind::Vram, words), (vec![], 0));

    cpu.cpu_write(base0);
    cpu.cpu_write(base0 + MIB - 1); // the slice's last page
    cpu.cpu_write(base1 + 3); // partition 1's first page: in 0's last window
    cpu.cpu_write(base1 + 5 * PAGE);
    // A BAR write the device serves itself (a VMM that traps the BAR).
    h.dev.write(VRAM_BAR, base0 + 2 * PAGE + 4, 0xab, 4);
    assert_eq!(
        dirty_pages(&h, 0, DirtyKind::Vram, words),
        (vec![0, 2, 255], 3)
    );
    assert_eq!(
        dirty_pages(&h, 1, DirtyKind::Vram, words),
        (vec![0, 5], 2),
        "what partition 0's read took from the host is kept for partition 1"
    );
    assert_eq!(
        dirty_pages(&h, 0, DirtyKind::Vram, words).1,
        0,
        "read clears"
    );
    assert_eq!(dirty_pages(&h, 0, DirtyKind::Sysmem, 64).1, 0, "VRAM only");

    // DIRTY_WORD alone takes the CPU writes of the pages it covers: a write
    // after its word was read is in the next round.
    cpu.cpu_write(base0 + 40 * PAGE);
    let sel = DirtySel::new().with_partition(0).with_log(DirtyKind::Vram);
    h.set(RegId::DirtySel, 0, 0, sel.into_bits() as u64);
    assert_eq!(h.reg(RegId::DirtyWord, 0, 0), 0);
    assert_eq!(h.reg(RegId::DirtyWord, 0, 0), 1 << 8);
    cpu.cpu_write(base0 + 41 * PAGE);
    cpu.cpu_write(base0 + 70 * PAGE);
    assert_eq!(h.reg(RegId::DirtyWord, 0, 0), 1 << 6, "word 2: page 70");
    assert_eq!(
        cpu.asked.lock().unwrap().last(),
        Some(&(base0 + 64 * PAGE, 32 * PAGE)),
        "a word read asks the host for its 32 pages only"
    );
    assert_eq!(dirty_pages(&h, 0, DirtyKind::Vram, words).0, [41]);

    // Off and on again: what was written meanwhile is dropped.
    h.set(
        RegId::PtCtrl,
        0,
        0,
        PtCtrl::new().with_enable(true).into_bits() as u64,
    );
    cpu.cpu_write(base0 + 3 * PAGE);
    assert_eq!(dirty_pages(&h, 0, DirtyKind::Vram, words).1, 0, "log off");
    h.set(
        RegId::PtCtrl,
        0,
        0,
        logging(PtCtrl::new()).into_bits() as u64,
    );
    assert_eq!(dirty_pages(&h, 0, DirtyKind::Vram, words).1, 0);
    // Writes beyond every slice are nobody's.
    cpu.cpu_write(63 * MIB);
    h.dev.write(VRAM_BAR, 64 * MIB - 8, 1, 8);
    assert_eq!(dirty_pages(&h, 1, DirtyKind::Vram, words).1, 0);
}

#[test]
fn the_vram_log_holds_engine_and_cpu_writes_together() {
    let (h, cpu) = with_vram_log(DeviceConfig {
        vram_size_bytes: 64 * MIB,
        partitions: 1,
        engines: 1,
        ..DeviceConfig::default()
    });
    h.enable(0, 8 * MIB, 8 * MIB, logging(PtCtrl::new()));
    h.ring_in_sysmem(0, 0, 0x1_0000, 0x1_0000, 64);
    h.submit(0, 0, &[Command::fill(Loc::Vram(3 * PAGE), 16, 0x33)]);
    assert_eq!(h.wait_not_busy(0, T), PartitionState::Idle);
    cpu.cpu_write(8 * MIB + 3 * PAGE + 8); // the same page
    cpu.cpu_write(8 * MIB + 4 * PAGE);
    let words = (8 * MIB / PAGE / 32) as u32;
    assert_eq!(dirty_pages(&h, 0, DirtyKind::Vram, words), (vec![3, 4], 2));
}

#[test]
fn a_vfs_vram_bar_writes_are_its_partitions() {
    let (h, cpu) = with_vram_log(DeviceConfig {
        vram_size_bytes: 64 * MIB,
        partitions: 2,
        engines: 1,
        sriov_vfs: 2,
        ..DeviceConfig::default()
    });
    h.enable(0, 0, MIB, logging(PtCtrl::new()));
    h.enable(1, 16 * MIB, MIB, logging(PtCtrl::new()));
    // VF1's BAR mapped by the VMM (an alias of the same VRAM) ...
    cpu.cpu_write(16 * MIB + 6 * PAGE);
    // ... or trapped and served by the device.
    h.dev.vf_write(1, VF_VRAM_BAR, 9 * PAGE, 7, 8);
    // Refused: beyond VF1's slice; nothing is written or logged.
    h.dev.vf_write(1, VF_VRAM_BAR, MIB, 7, 8);
    let words = (MIB / PAGE / 32) as u32;
    assert_eq!(dirty_pages(&h, 1, DirtyKind::Vram, words), (vec![6, 9], 2));
    assert_eq!(dirty_pages(&h, 0, DirtyKind::Vram, words).1, 0);
}
