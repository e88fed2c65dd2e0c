//! Partition context save and restore (SPEC 16): STOP keeps a command's
//! progress, SAVE/RESTORE move a partition's whole window state to another
//! partition of the same slice size, nothing is lost or run twice, and a
//! bad image is refused without touching the target.

use std::sync::Arc;
use std::time::Duration;
use vdevice::command::{Command, Loc};
use vdevice::context::{CTX_BYTES, CTX_MAGIC};
use vdevice::regs::{
    AccessError, AccessErrorInfo, CtxCmd, CtxOp, CtxResult, CtxStatus, PartitionState, PtCtrl,
    RegId,
};
use vdevice::testing::{FakeMemory, GatedMemory, Harness, Rng};
use vdevice::DeviceConfig;

const MIB: u64 = 1 << 20;
const T: Duration = Duration::from_secs(10);
const RING: u64 = 0x10_0000;
const FENCE: u64 = 0x20_0000;
const DATA: u64 = 0x40_0000;

fn config() -> DeviceConfig {
    DeviceConfig {
        vram_size_bytes: 64 * MIB,
        partitions: 3,
        engines: 2,
        ..DeviceConfig::default()
    }
}

fn running() -> u64 {
    PtCtrl::new().with_enable(true).into_bits() as u64
}

fn stopped() -> u64 {
    PtCtrl::new().with_enable(true).with_stop(true).into_bits() as u64
}

/// Partitions 0 and 1 with 8 MiB slices, 2 with 4 MiB; partition 0's ring
/// 0 in system memory.
fn setup(h: &Harness) {
    h.enable(0, 0, 8 * MIB, PtCtrl::new());
    h.enable(1, 8 * MIB, 8 * MIB, PtCtrl::new());
    h.enable(2, 16 * MIB, 4 * MIB, PtCtrl::new());
    h.ring_in_sysmem(0, 0, RING, RING, 64);
}

fn ctx(h: &Harness, p: usize, op: CtxOp) -> CtxResult {
    let c = CtxCmd::new().with_partition(p as u8).with_op(op);
    h.set(RegId::CtxCmd, 0, 0, c.into_bits() as u64);
    CtxStatus::from_bits(h.reg(RegId::CtxStatus, 0, 0) as u32).result()
}

fn image_out(h: &Harness) -> Vec<u8> {
    h.set(RegId::CtxPos, 0, 0, 0);
    (0..CTX_BYTES / 4)
        .flat_map(|_| (h.reg(RegId::CtxData, 0, 0) as u32).to_le_bytes())
        .collect()
}

fn image_in(h: &Harness, img: &[u8]) {
    h.set(RegId::CtxPos, 0, 0, 0);
    for w in img.chunks(4) {
        let v = u32::from_le_bytes(w.try_into().unwrap());
        h.set(RegId::CtxData, 0, 0, v as u64);
    }
}

fn refused(h: &Harness) -> AccessError {
    AccessErrorInfo::from_bits(h.reg(RegId::AccessErrorInfo, 0, 0) as u32).reason()
}

#[test]
fn stopped_work_moves_to_another_partition_and_runs_there_once() {
    let h = Harness::new(config(), 16 << 20);
    setup(&h);
    assert_eq!(h.reg(RegId::CtxSize, 0, 0), CTX_BYTES as u64);
    h.set(RegId::PtCtrl, 0, 0, stopped());
    h.set(RegId::WScratch, 0, 0, 0x5c5c);
    h.set(RegId::WIntrMask, 0, 0, 0x3);
    // Doorbells are taken while stopped; nothing runs.
    h.submit(
        0,
        0,
        &[
            Command::fill(Loc::Sys(DATA), 64 * 1024, 0xa5a5_a5a5),
            Command::fence(Loc::Sys(FENCE), 7, false),
        ],
    );
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(h.reg(RegId::WRingHead, 0, 0), 0, "a stopped partition ran");
    assert_eq!(h.reg(RegId::WRingTail, 0, 0), 2);

    assert_eq!(ctx(&h, 0, CtxOp::Save), CtxResult::Ok);
    let img = image_out(&h);
    assert_eq!(u32::from_le_bytes(img[0..4].try_into().unwrap()), CTX_MAGIC);
    // The source is taken back: its work is dropped, never run.
    h.set(RegId::PtCtrl, 0, 0, 0);

    h.set(RegId::PtCtrl, 1, 0, stopped());
    image_in(&h, &img);
    assert_eq!(ctx(&h, 1, CtxOp::Restore), CtxResult::Ok);
    assert_eq!(h.reg(RegId::WScratch, 1, 0), 0x5c5c);
    assert_eq!(h.reg(RegId::WIntrMask, 1, 0), 0x3);
    assert_eq!(h.reg(RegId::WRingTail, 1, 0), 2);
    h.set(RegId::PtCtrl, 1, 0, running());
    assert_eq!(h.wait_not_busy(1, T), PartitionState::Idle);
    assert_eq!(h.reg(RegId::WRingHead, 1, 0), 2);
    assert_eq!(h.reg(RegId::WFenceValue, 1, 0), 7);
    assert_eq!(h.reg(RegId::WStatCommands, 1, 0), 2, "run exactly once");
    assert_eq!(h.mem.read_u64(FENCE), 7);
    assert!(h.mem.read_bytes(DATA, 64 * 1024).iter().all(|&b| b == 0xa5));
    assert_eq!(h.reg(RegId::WStatCommands, 0, 0), 0);
    h.dev.check_invariants().unwrap();
}

#[test]
fn a_command_stopped_mid_flight_resumes_where_it_stopped() {
    let mem = Arc::new(FakeMemory::new(16 << 20));
    let gate = Arc::new(GatedMemory::new(mem.clone()));
    let h = Harness::with_dma(config(), mem, gate.clone());
    setup(&h);
    const LEN: u64 = 4 * MIB;
    // Hold the FILL in its second 1 MiB chunk.
    gate.hold_from(1);
    h.submit(
        0,
        0,
        &[
            Command::fill(Loc::Sys(DATA), LEN, 0x3c3c_3c3c),
            Command::fence(Loc::Sys(FENCE), 9, false),
        ],
    );
    assert!(gate.wait_held(T), "the FILL never reached its second chunk");
    std::thread::scope(|s| {
        let stop = s.spawn(|| h.set(RegId::PtCtrl, 0, 0, stopped()));
        std::thread::sleep(Duration::from_millis(20));
        gate.release();
        stop.join().unwrap();
    });
    // Stopped at a chunk boundary: the FILL is in flight, partly done.
    assert_eq!(h.state(0), PartitionState::Busy);
    assert_eq!(h.reg(RegId::WRingHead, 0, 0), 0);
    let done = (0..LEN)
        .step_by(MIB as usize)
        .filter(|off| h.mem.read_bytes(DATA + off, 1)[0] == 0x3c)
        .count();
    assert!((1..4).contains(&done), "{done} MiB done when stopped");
    assert_eq!(ctx(&h, 0, CtxOp::Save), CtxResult::Ok);
    let img = image_out(&h);
    h.set(RegId::PtCtrl, 0, 0, 0);
    // Mark what the source did: the target must go on from the saved
    // progress, so the marked bytes are never written again.
    let first = done as u64 * MIB;
    h.mem.write_bytes(DATA, &vec![0u8; first as usize]);
    h.set(RegId::PtCtrl, 1, 0, stopped());
    image_in(&h, &img);
    assert_eq!(ctx(&h, 1, CtxOp::Restore), CtxResult::Ok);
    h.set(RegId::PtCtrl, 1, 0, running());
    assert_eq!(h.wait_not_busy(1, T), PartitionState::Idle);
    let after = h.mem.read_bytes(DATA, LEN as usize);
    assert!(
        after[..first as usize].iter().all(|&b| b == 0),
        "the done part ran twice"
    );
    assert!(after[first as usize..].iter().all(|&b| b == 0x3c));
    assert_eq!(h.reg(RegId::WFenceValue, 1, 0), 9);
    assert_eq!(h.reg(RegId::WStatCommands, 1, 0), 2);
    assert_eq!(h.reg(RegId::WStatBytes, 1, 0), LEN);
}

#[test]
fn stop_waits_and_clearing_it_resumes_in_place() {
    let h = Harness::new(config(), 16 << 20);
    setup(&h);
    h.set(RegId::PtCtrl, 0, 0, stopped());
    h.submit(0, 0, &[Command::fence(Loc::Sys(FENCE), 3, false)]);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(h.reg(RegId::WFenceValue, 0, 0), 0);
    h.set(RegId::PtCtrl, 0, 0, running());
    assert_eq!(h.wait_not_busy(0, T), PartitionState::Idle);
    assert_eq!(h.reg(RegId::WFenceValue, 0, 0), 3);
    // STOP without ENABLE is refused.
    let stop_only = PtCtrl::new().with_stop(true).into_bits() as u64;
    h.set(RegId::PtCtrl, 2, 0, 0);
    h.set(RegId::PtCtrl, 2, 0, stop_only);
    assert_eq!(refused(&h), AccessError::BadValue);
    assert_eq!(h.reg(RegId::PtCtrl, 2, 0), 0);
}

#[test]
fn bad_images_and_targets_are_refused_and_change_nothing() {
    let h = Harness::new(config(), 16 << 20);
    setup(&h);
    // SAVE of a running partition.
    assert_eq!(ctx(&h, 0, CtxOp::Save), CtxResult::NotStopped);
    h.set(RegId::PtCtrl, 0, 0, stopped());
    h.submit(0, 0, &[Command::fence(Loc::Sys(FENCE), 1, false)]);
    assert_eq!(ctx(&h, 0, CtxOp::Save), CtxResult::Ok);
    let good = image_out(&h);

    h.set(RegId::WScratch, 1, 0, 0x1111);
    let try_restore = |img: &[u8], p: usize| {
        image_in(&h, img);
        ctx(&h, p, CtxOp::Restore)
    };
    // Target running.
    assert_eq!(try_restore(&good, 1), CtxResult::NotStopped);
    h.set(RegId::PtCtrl, 1, 0, stopped());
    h.set(RegId::PtCtrl, 2, 0, stopped());
    // Another slice size.
    assert_eq!(try_restore(&good, 2), CtxResult::SliceMismatch);
    // A flipped byte.
    let mut bad = good.clone();
    bad[40] ^= 1;
    assert_eq!(try_restore(&bad, 1), CtxResult::BadChecksum);
    // Not an image.
    let mut bad = good.clone();
    bad[0] ^= 0xff;
    assert_eq!(try_restore(&bad, 1), CtxResult::BadFormat);
    // Another major version.
    let mut bad = good.clone();
    bad[6] = bad[6].wrapping_add(1);
    assert_eq!(try_restore(&bad, 1), CtxResult::BadVersion);
    // Cut short: the rest zeroes (a truncated stream).
    let mut bad = good.clone();
    bad[64..].fill(0);
    assert_ne!(try_restore(&bad, 1), CtxResult::Ok);
    assert_eq!(
        h.reg(RegId::WScratch, 1, 0),
        0x1111,
        "refusals changed the target"
    );
    assert_eq!(h.reg(RegId::WRingTail, 1, 0), 0);

    // Bad register use: unknown OP, partition out of range, CTX_POS.
    h.set(RegId::CtxCmd, 0, 0, 3 << 8);
    assert_eq!(refused(&h), AccessError::BadValue);
    let c = CtxCmd::new().with_partition(9).with_op(CtxOp::Save);
    h.set(RegId::CtxCmd, 0, 0, c.into_bits() as u64);
    assert_eq!(refused(&h), AccessError::BadValue);
    h.set(RegId::CtxPos, 0, 0, CTX_BYTES as u64);
    assert_ne!(h.reg(RegId::CtxPos, 0, 0), CTX_BYTES as u64);

    assert_eq!(try_restore(&good, 1), CtxResult::Ok);
    assert_eq!(h.reg(RegId::WRingTail, 1, 0), 1);
    h.dev.check_invariants().unwrap();
}

/// Whatever a VMM puts in the stream: with a recomputed checksum, garbage
/// records are refused or restored into a state the engines run safely.
#[test]
fn mutated_images_never_hurt_the_device() {
    let h = Harness::new(config(), 16 << 20);
    setup(&h);
    h.set(RegId::PtCtrl, 0, 0, stopped());
    h.submit(
        0,
        0,
        &[
            Command::fill(Loc::Sys(DATA), 4096, 1),
            Command::fence(Loc::Sys(FENCE), 1, true),
        ],
    );
    assert_eq!(ctx(&h, 0, CtxOp::Save), CtxResult::Ok);
    let good = image_out(&h);
    let mut rng = Rng::new(0x0c7c);
    let mut restored = 0;
    for _ in 0..400 {
        let mut img = good.clone();
        for _ in 0..1 + rng.below(4) {
            let at = 16 + rng.below(200) as usize;
            img[at] = rng.next() as u8;
        }
        let crc = crc32fast::hash(&img[16..]);
        img[12..16].copy_from_slice(&crc.to_le_bytes());
        h.set(RegId::PtCtrl, 1, 0, stopped());
        image_in(&h, &img);
        if ctx(&h, 1, CtxOp::Restore) == CtxResult::Ok {
            restored += 1;
            h.set(RegId::PtCtrl, 1, 0, running());
            h.wait_settled(1, T);
        }
        h.set(RegId::PtCtrl, 1, 0, 0);
        h.dev.check_invariants().unwrap();
        assert!(h.dev.threads_alive());
    }
    assert!(
        restored > 0,
        "no mutation was valid: the test tests nothing"
    );
}
