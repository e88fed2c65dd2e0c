//! A hostile tenant and a racing host driver, as regression tests: each
//! scenario here once crashed QEMU or broke isolation (issues 9 and 16).
//! Every test catches the device mid-command deterministically by holding
//! the engine inside a system-memory write (`GatedMemory`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vdevice::command::{Command, Loc};
use vdevice::regs::{
    AccessError, AccessErrorInfo, FaultCode, FaultStatus, PartitionState, PtCtrl, RegId,
};
use vdevice::testing::{FakeMemory, GatedMemory, Harness};
use vdevice::DeviceConfig;

const MIB: u64 = 1 << 20;
const T: Duration = Duration::from_secs(10);

fn gated(partitions: usize, engines: usize, sysmem: usize) -> (Harness, Arc<GatedMemory>) {
    let mem = Arc::new(FakeMemory::new(sysmem));
    let gate = Arc::new(GatedMemory::new(mem.clone()));
    let h = Harness::with_dma(
        DeviceConfig {
            vram_size_bytes: 64 * MIB,
            partitions,
            engines,
            ..DeviceConfig::default()
        },
        mem,
        gate.clone(),
    );
    (h, gate)
}

fn last_access_error(h: &Harness) -> AccessError {
    AccessErrorInfo::from_bits(h.reg(RegId::AccessErrorInfo, 0, 0) as u32).reason()
}

fn fault_code(h: &Harness, p: usize) -> FaultCode {
    FaultStatus::from_bits(h.reg(RegId::WFaultStatus, p, 0) as u32).code()
}

/// Issue 9, scenario 1: while a long FILL executes, the tenant rewinds its
/// doorbell to HEAD and then turns the ring off. Both writes used to be
/// accepted and the completion computed `head % 0`: a panic, which is an
/// abort of L0 QEMU.
#[test]
fn doorbell_rewind_and_ring_off_under_a_running_command_are_refused() {
    let (h, gate) = gated(1, 1, 16 << 20);
    h.enable(0, 0, 16 * MIB, PtCtrl::new());
    h.ring_in_vram(0, 0, 0, 64);
    gate.hold_from(2);
    h.submit(0, 0, &[Command::fill(Loc::Sys(0), 8 * MIB, 0xa5a5_a5a5)]);
    assert!(gate.wait_held(T), "the FILL never reached its third chunk");

    h.set(RegId::WDoorbell, 0, 0, 0);
    assert_eq!(last_access_error(&h), AccessError::Busy);
    assert_eq!(h.reg(RegId::WRingTail, 0, 0), 1, "TAIL moved onto HEAD");
    h.set(RegId::WRingSize, 0, 0, 0);
    assert_eq!(last_access_error(&h), AccessError::Busy);
    assert_eq!(h.reg(RegId::WRingSize, 0, 0), 64);
    h.set(RegId::WRingBase, 0, 0, 0x10000);
    assert_eq!(last_access_error(&h), AccessError::Busy);
    assert_eq!(h.reg(RegId::WRingBase, 0, 0), 0);
    assert_eq!(h.state(0), PartitionState::Busy);
    h.dev.check_invariants().unwrap();

    gate.release();
    assert_eq!(h.wait_not_busy(0, T), PartitionState::Idle);
    assert_eq!(h.reg(RegId::WRingHead, 0, 0), 1);
    assert_eq!(h.reg(RegId::WStatCommands, 0, 0), 1);
    assert!(h.mem.read_bytes(0, 8 << 20).iter().all(|&b| b == 0xa5));
    assert!(h.dev.threads_alive());
    // The ring is idle now: reconfiguring it is allowed again.
    h.set(RegId::WRingSize, 0, 0, 0);
    assert_eq!(h.reg(RegId::WRingSize, 0, 0), 0);
}

/// A doorbell may still withdraw commands no engine has taken.
#[test]
fn doorbell_may_withdraw_commands_not_yet_taken() {
    let (h, gate) = gated(1, 1, 16 << 20);
    h.enable(0, 0, 16 * MIB, PtCtrl::new());
    h.ring_in_vram(0, 0, 0, 64);
    gate.hold_from(1);
    h.submit(
        0,
        0,
        &[
            Command::fill(Loc::Sys(0), 4 * MIB, 1),
            Command::fence(Loc::Vram(0x8000), 7, false),
            Command::fence(Loc::Vram(0x8000), 8, false),
        ],
    );
    assert!(gate.wait_held(T));
    h.set(RegId::WDoorbell, 0, 0, 2); // withdraw the second fence
    assert_eq!(h.reg(RegId::WRingTail, 0, 0), 2);
    gate.release();
    assert_eq!(h.wait_not_busy(0, T), PartitionState::Idle);
    assert_eq!(h.reg(RegId::WFenceValue, 0, 0), 7);
    assert_eq!(h.reg(RegId::WRingHead, 0, 0), 2);
}

/// Issue 9, scenario 2: a guest unmaps a buffer that a running FILL writes.
/// The RM clears the entries, invalidates (which now waits for the
/// command), reads back, and unpins: the device must never write an
/// unpinned page again. A canary in every unpinned page proves it.
#[test]
fn no_write_reaches_a_page_after_invalidate_returns() {
    const BUS: u64 = 16 * MIB;
    const LEN: u64 = 8 * MIB;
    let (h, gate) = gated(1, 1, 32 << 20);
    let maps: Vec<_> = (0..LEN / 4096)
        .map(|i| (i * 4096, BUS + i * 4096, true))
        .collect();
    let dir_entries = h.build_xlate(0x1000, 0x2000, &maps);
    h.set_xlate(0, 0x1000, dir_entries);
    h.enable(0, 0, 16 * MIB, PtCtrl::new().with_xlate(true));
    h.ring_in_vram(0, 0, 0, 64);
    gate.hold_from(2);
    h.submit(0, 0, &[Command::fill(Loc::Sys(0), LEN, 0x1111_1111)]);
    assert!(gate.wait_held(T));
    assert_eq!(h.state(0), PartitionState::Busy);

    // The RM's unmap: clear every PTE of the range...
    for t in 0..(LEN / (2 * MIB)) {
        h.mem.write_bytes(0x2000 + t * 4096, &[0u8; 4096]);
    }
    // ...invalidate and read back (from another vCPU while the engine is
    // still held in its write)...
    let done = Arc::new(AtomicBool::new(false));
    let inv = {
        let (dev, done) = (h.dev.clone(), done.clone());
        std::thread::spawn(move || {
            let d = vdevice::driver::Driver::new(vdevice::testing::ModelHw {
                mem: Arc::new(FakeMemory::new(0)),
                dev,
            });
            d.set(RegId::PtXlateInvalidate, 0, 0, 1);
            d.reg(RegId::PtState, 0, 0);
            done.store(true, Ordering::SeqCst);
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !done.load(Ordering::SeqCst),
        "XLATE_INVALIDATE returned while a command still held old translations"
    );
    gate.release();
    inv.join().unwrap();
    // ...and unpin: the pages go back to the allocator, which reuses them.
    let canary = vec![0x5au8; LEN as usize];
    h.mem.write_bytes(BUS, &canary);

    assert_eq!(h.wait_settled(0, T), PartitionState::Faulted);
    assert_eq!(fault_code(&h, 0), FaultCode::SysmemUnmapped);
    assert!(
        h.mem.read_bytes(BUS, LEN as usize) == canary,
        "the device wrote a page after the unmap returned"
    );
    assert!(h.dev.threads_alive());
}

/// Replayable faults resume where the command stopped: a FILL over pages
/// the host maps one fault at a time takes one fault per page, and the
/// chunks done before a fault are not redone.
#[test]
fn replay_resumes_at_the_missing_chunk() {
    const BUS: u64 = 16 * MIB;
    const LEN: u64 = 3 * MIB;
    let (h, _gate) = gated(1, 1, 32 << 20);
    h.set_xlate(0, 0x1000, 2);
    h.mem.write_bytes(0x1000, &[0u8; 4096]);
    let ctrl = PtCtrl::new().with_xlate(true).with_xlate_replay(true);
    h.enable(0, 0, 16 * MIB, ctrl);
    h.ring_in_vram(0, 0, 0, 64);
    h.submit(0, 0, &[Command::fill(Loc::Sys(0), LEN, 0x2222_2222)]);
    let mut faults = 0u64;
    let mut mapped = Vec::new();
    let deadline = Instant::now() + T;
    while h.state(0) != PartitionState::Idle {
        assert!(Instant::now() < deadline, "replay never finished");
        if h.reg(RegId::XlateFaultCount, 0, 0) == 0 {
            std::thread::yield_now();
            continue;
        }
        let addr = h.reg(RegId::XlateFaultAddr, 0, 0);
        h.set(RegId::XlateFaultPop, 0, 0, 1);
        mapped.push((addr, BUS + addr, true));
        h.build_xlate(0x1000, 0x2000, &mapped);
        faults += 1;
        h.set(RegId::XlateResume, 0, 0, 0); // partition 0, RETRY
    }
    assert_eq!(faults, LEN / 4096, "one fault per page, none repeated");
    assert!(h
        .mem
        .read_bytes(BUS, LEN as usize)
        .iter()
        .all(|&b| b == 0x22));
}

/// Issue 16: CTRL.ENABLE checked the slice, dropped the lock, then
/// enabled; a second vCPU rewriting VRAM_BASE in between left an enabled
/// partition overlapping its neighbour. One thread toggles the enable,
/// another flips VRAM_BASE between a free and an overlapping slice. (64
/// partitions: the overlap scan, the window the race needs, is longest.)
#[test]
fn enable_and_a_racing_slice_write_never_overlap() {
    let h = Arc::new(Harness::new(
        DeviceConfig {
            vram_size_bytes: 64 * MIB,
            partitions: 64,
            engines: 1,
            ..DeviceConfig::default()
        },
        4096,
    ));
    h.enable(0, 0, 8 * MIB, PtCtrl::new());
    h.set(RegId::PtVramSize, 1, 0, 8 * MIB);
    let stop = Arc::new(AtomicBool::new(false));
    let flips = Arc::new(AtomicU64::new(0));
    let writer = {
        let (h, stop, flips) = (h.clone(), stop.clone(), flips.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                h.set(RegId::PtVramBase, 1, 0, 8 * MIB);
                h.set(RegId::PtVramBase, 1, 0, 4 * MIB);
                flips.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let start = Instant::now();
    let mut enables = 0u64;
    let mut broken = None;
    while start.elapsed() < Duration::from_secs(2) {
        h.set(
            RegId::PtCtrl,
            1,
            0,
            PtCtrl::new().with_enable(true).into_bits() as u64,
        );
        if h.reg(RegId::PtCtrl, 1, 0) & 1 != 0 {
            enables += 1;
            if let Err(e) = h.dev.check_invariants() {
                broken = Some(e);
                break;
            }
            h.set(RegId::PtCtrl, 1, 0, 0);
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(broken, None, "after {enables} enables");
    assert!(enables > 0 && flips.load(Ordering::Relaxed) > 0);
}
