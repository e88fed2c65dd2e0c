//! The display head (SPEC 17): commits, page flips at vblank, vblank and
//! flip-done interrupts, refused modes, the EDID and hot-plug, reset, the
//! context image; and the rectangle commands that draw frames (SPEC 6).

use std::time::{Duration, Instant};
use vdevice::command::{Command, Rect};
use vdevice::regs::{
    self, AccessError, AccessErrorInfo, CtxCmd, CtxOp, CtxResult, CtxStatus, DispCtrl, DispLink,
    DispMode, DispStatus, EdidSel, FaultCode, FaultStatus, PartIntr, PartitionState, PtCtrl, RegId,
    DISP_FORMAT_XRGB8888, EDID_BYTES,
};
use vdevice::testing::Harness;
use vdevice::DeviceConfig;

const MIB: u64 = 1 << 20;
const T: Duration = Duration::from_secs(10);
/// Partition 1's slice starts here.
const SLICE1: u64 = 16 * MIB;

fn harness() -> Harness {
    let h = Harness::new(
        DeviceConfig {
            vram_size_bytes: 64 * MIB,
            partitions: 3,
            engines: 2,
            ..DeviceConfig::default()
        },
        1 << 20,
    );
    h.enable(0, 0, 16 * MIB, PtCtrl::new());
    h.enable(1, SLICE1, 16 * MIB, PtCtrl::new());
    h.ring_in_vram(1, 0, 0, 64);
    h
}

fn status(h: &Harness, p: usize) -> DispStatus {
    DispStatus::from_bits(h.reg(RegId::WDispStatus, p, 0) as u32)
}

fn intr(h: &Harness, p: usize) -> PartIntr {
    PartIntr::from_bits(h.reg(RegId::WIntrStatus, p, 0) as u32)
}

/// Program the pending state: on, XRGB8888, `w` x `h`, `stride`, `base`.
fn pend(hs: &Harness, p: usize, w: u16, h: u16, stride: u32, base: u64) {
    let mode = DispMode::new().with_width(w).with_height(h);
    hs.set(RegId::WDispFormat, p, 0, DISP_FORMAT_XRGB8888 as u64);
    hs.set(RegId::WDispMode, p, 0, mode.into_bits() as u64);
    hs.set(RegId::WDispStride, p, 0, stride as u64);
    hs.set(RegId::WDispBase, p, 0, base);
    hs.set(
        RegId::WDispCtrl,
        p,
        0,
        DispCtrl::new().with_enable(true).into_bits() as u64,
    );
}

/// Spoils a good pending state.
type Spoil = fn(&Harness);

fn commit(h: &Harness, p: usize) {
    h.set(RegId::WDispCommit, p, 0, 1);
}

fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn vram(h: &Harness, abs: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0; len];
    assert!(h.dev.vram().read(abs, &mut b));
    b
}

#[test]
fn a_commit_turns_the_head_on_and_a_flip_waits_for_the_vblank() {
    let h = harness();
    assert!(regs::PartCaps::from_bits(h.reg(RegId::WCaps, 1, 0) as u32).display());
    assert_eq!(status(&h, 1).into_bits(), 0);
    pend(&h, 1, 64, 32, 256, 0x10000);
    // Pending registers change nothing on the screen.
    assert!(!status(&h, 1).active());
    assert_eq!(h.reg(RegId::WDispActiveFormat, 1, 0), 0);
    commit(&h, 1);
    let st = status(&h, 1);
    assert!(st.active() && !st.flip_pending());
    assert!(intr(&h, 1).flip_done(), "turning on is at once");
    assert_eq!(h.reg(RegId::WDispActiveBase, 1, 0), 0x10000);
    assert_eq!(h.reg(RegId::WDispActiveStride, 1, 0), 256);
    assert_eq!(
        h.reg(RegId::WDispActiveFormat, 1, 0),
        DISP_FORMAT_XRGB8888 as u64
    );
    assert_eq!(
        DispMode::from_bits(h.reg(RegId::WDispActiveMode, 1, 0) as u32),
        DispMode::new().with_width(64).with_height(32)
    );

    // Vblanks count and interrupt on the engine vector once enabled.
    let vector = regs::partition_vector_base(1);
    h.set(RegId::WIntrStatus, 1, 0, u32::MAX as u64);
    h.irq.clear();
    let masked = PartIntr::new().with_vblank(true).with_flip_done(true);
    h.set(RegId::WIntrMask, 1, 0, masked.into_bits() as u64);
    assert!(h.irq.wait_for(vector, 2, T), "no vblank interrupts");
    let n = h.reg(RegId::WDispVblankCount, 1, 0);
    assert!(n >= 2, "{n} vblanks");
    assert_eq!(
        h.reg(RegId::WDispVblankCount, 0, 0),
        0,
        "an off head has none"
    );
    assert_eq!(h.reg(RegId::WDispVblankNs, 1, 0), 16_666_667);

    // A flip: the old frame stays until the next vblank.
    h.set(RegId::WIntrStatus, 1, 0, u32::MAX as u64);
    h.set(RegId::WDispBase, 1, 0, 0x20000);
    commit(&h, 1);
    let before = h.reg(RegId::WDispVblankCount, 1, 0);
    let st = status(&h, 1);
    if st.flip_pending() {
        assert_eq!(h.reg(RegId::WDispActiveBase, 1, 0), 0x10000);
    }
    until("the flip", || !status(&h, 1).flip_pending());
    assert_eq!(h.reg(RegId::WDispActiveBase, 1, 0), 0x20000);
    assert!(intr(&h, 1).flip_done());
    assert!(h.reg(RegId::WDispVblankCount, 1, 0) > before || !st.flip_pending());

    // Off: at once.
    h.set(RegId::WDispCtrl, 1, 0, 0);
    commit(&h, 1);
    assert!(!status(&h, 1).active());
    assert_eq!(h.reg(RegId::WDispActiveBase, 1, 0), 0);
    h.dev.check_invariants().unwrap();
}

#[test]
fn modes_the_head_cannot_show_are_refused_and_change_nothing() {
    let h = harness();
    pend(&h, 1, 64, 32, 256, 0);
    commit(&h, 1);
    let good = h.reg(RegId::WDispActiveBase, 1, 0);
    let slice = 16 * MIB;
    let bad: [(&str, Spoil); 7] = [
        ("format", |h| h.set(RegId::WDispFormat, 1, 0, 0x3432_4152)),
        ("width 0", |h| h.set(RegId::WDispMode, 1, 0, 32 << 16)),
        ("width 4097", |h| {
            h.set(RegId::WDispMode, 1, 0, 1 << 16 | 4097);
            h.set(RegId::WDispStride, 1, 0, 4097 * 4);
        }),
        ("short stride", |h| h.set(RegId::WDispStride, 1, 0, 252)),
        ("odd stride", |h| h.set(RegId::WDispStride, 1, 0, 258)),
        ("beyond the slice", |h| {
            h.set(RegId::WDispBase, 1, 0, 16 * MIB - 4096)
        }),
        ("far beyond", |h| {
            h.set(RegId::WDispMode, 1, 0, 4096 << 16 | 4096);
            h.set(RegId::WDispStride, 1, 0, u32::MAX as u64 & !3);
        }),
    ];
    for (what, f) in bad {
        pend(&h, 1, 64, 32, 256, 0x40000);
        f(&h);
        let errors = h.reg(RegId::WAccessErrors, 1, 0);
        commit(&h, 1);
        assert_eq!(h.reg(RegId::WAccessErrors, 1, 0), errors + 1, "{what}");
        let info = AccessErrorInfo::from_bits(h.reg(RegId::AccessErrorInfo, 0, 0) as u32);
        assert_eq!(info.reason(), AccessError::BadValue, "{what}");
        assert!(!status(&h, 1).flip_pending(), "{what}");
        assert_eq!(h.reg(RegId::WDispActiveBase, 1, 0), good, "{what}");
    }
    // The last byte of the frame may be the last of the slice.
    pend(&h, 1, 1024, 2, 4096, slice - 8192);
    commit(&h, 1);
    until("the flip", || !status(&h, 1).flip_pending());
    assert_eq!(h.reg(RegId::WDispActiveBase, 1, 0), slice - 8192);
    // DISP_BASE drops the bits below 4 KiB.
    h.set(RegId::WDispBase, 1, 0, 0x12345);
    assert_eq!(h.reg(RegId::WDispBase, 1, 0), 0x12000);
    // A disabled partition's head does not turn on.
    pend(&h, 2, 64, 32, 256, 0);
    let errors = h.reg(RegId::WAccessErrors, 2, 0);
    commit(&h, 2);
    assert_eq!(h.reg(RegId::WAccessErrors, 2, 0), errors + 1);
    assert!(!status(&h, 2).active());
}

#[test]
fn the_host_gives_each_head_its_edid_and_a_hotplug() {
    let h = harness();
    let edid: Vec<u8> = (0..EDID_BYTES).map(|i| (i * 7 + 1) as u8).collect();
    h.set(
        RegId::EdidSel,
        0,
        0,
        EdidSel::new().with_partition(1).into_bits() as u64,
    );
    for w in edid.chunks(4) {
        h.set(
            RegId::EdidData,
            0,
            0,
            u32::from_le_bytes(w.try_into().unwrap()) as u64,
        );
    }
    // No news before the link write.
    assert!(!intr(&h, 1).hotplug());
    let vector = regs::partition_vector_base(1);
    h.set(
        RegId::WIntrMask,
        1,
        0,
        PartIntr::new().with_hotplug(true).into_bits() as u64,
    );
    h.irq.clear();
    h.set(
        RegId::PtDispLink,
        1,
        0,
        DispLink::new().with_connected(true).into_bits() as u64,
    );
    assert!(h.irq.wait_for(vector, 1, T), "no hotplug interrupt");
    assert!(intr(&h, 1).hotplug());
    assert!(status(&h, 1).connected());
    let seen: Vec<u8> = (0..EDID_BYTES / 4)
        .flat_map(|i| (h.reg(RegId::WDispEdid, 1, i) as u32).to_le_bytes())
        .collect();
    assert_eq!(seen, edid);
    // Another tenant's head saw nothing.
    assert!((0..EDID_BYTES / 4).all(|i| h.reg(RegId::WDispEdid, 0, i) == 0));
    assert!(!status(&h, 0).connected() && !intr(&h, 0).hotplug());
    // The host reads it back through EDID_DATA, from the start.
    h.set(
        RegId::EdidSel,
        0,
        0,
        EdidSel::new().with_partition(1).into_bits() as u64,
    );
    assert_eq!(h.reg(RegId::EdidData, 0, 0) as u32, 0x160f_0801);
    // EDID_SEL beyond the partitions is refused.
    h.set(RegId::EdidSel, 0, 0, 3);
    let info = AccessErrorInfo::from_bits(h.reg(RegId::AccessErrorInfo, 0, 0) as u32);
    assert_eq!(info.reason(), AccessError::BadValue);
    assert_eq!(
        EdidSel::from_bits(h.reg(RegId::EdidSel, 0, 0) as u32).partition(),
        1
    );

    // A partition reset turns the head off; the EDID and link stay.
    pend(&h, 1, 64, 32, 256, 0);
    commit(&h, 1);
    h.set(RegId::WReset, 1, 0, 1);
    let st = status(&h, 1);
    assert!(!st.active() && st.connected());
    assert_eq!(h.reg(RegId::WDispEdid, 1, 0) as u32, 0x160f_0801);
    assert_eq!(h.reg(RegId::WDispMode, 1, 0), 0);
    // A device reset clears everything.
    h.set(RegId::DeviceReset, 0, 0, 1);
    assert!(!status(&h, 1).connected());
    assert_eq!(h.reg(RegId::WDispEdid, 1, 0), 0);
}

#[test]
fn rectangles_fill_and_blit_inside_the_slice_only() {
    let h = harness();
    // A 16x4-pixel box of 0x00ff0000 in a 64-byte-pitch surface at 0x10000,
    // then BLIT it (overlapping itself, one row down and 4 bytes right).
    h.submit(
        1,
        0,
        &[
            Command::fill_rect(0x10000, 64, 8, 64, 0x0000_00ff),
            Command::fill_rect(0x10000, 16, 4, 64, 0x00ff_0000),
            Command::blit(
                0x10000 + 64 + 4,
                0x10000,
                Rect {
                    width: 16,
                    height: 4,
                    dst_pitch: 64,
                    src_pitch: 64,
                },
            ),
        ],
    );
    assert_eq!(h.wait_not_busy(1, T), PartitionState::Idle);
    let img = vram(&h, SLICE1 + 0x10000, 64 * 8);
    let px =
        |x: usize, y: usize| u32::from_le_bytes(img[y * 64 + x * 4..][..4].try_into().unwrap());
    // Source rows 0..4, columns 0..4 red; after the blit, rows 1..5 hold red
    // in columns 1..5 and row 0 keeps its red.
    for y in 0..8 {
        for x in 0..16 {
            let red = (y < 4 && x < 4) || ((1..5).contains(&y) && (1..5).contains(&x));
            let want = if red { 0x00ff_0000 } else { 0x0000_00ff };
            assert_eq!(px(x, y), want, "pixel {x},{y}");
        }
    }
    assert_eq!(h.reg(RegId::WStatBytes, 1, 0), 64 * 8 + 16 * 4 + 16 * 4);
    // Another tenant's VRAM is untouched.
    assert!(vram(&h, 0x10000, 4096).iter().all(|&b| b == 0));

    // A rectangle whose last row leaves the slice faults before writing.
    h.submit(
        1,
        0,
        &[Command::fill_rect(
            16 * MIB - 8192,
            64,
            3,
            4096,
            0x1234_5678,
        )],
    );
    assert_eq!(h.wait_not_busy(1, T), PartitionState::Faulted);
    let f = FaultStatus::from_bits(h.reg(RegId::WFaultStatus, 1, 0) as u32);
    assert_eq!(f.code(), FaultCode::VramOutOfBounds);
    assert!(vram(&h, SLICE1 + 16 * MIB - 8192, 8192)
        .iter()
        .all(|&b| b == 0));
    assert!(vram(&h, 32 * MIB, 4096).iter().all(|&b| b == 0));
    h.dev.check_invariants().unwrap();
}

fn ctx(h: &Harness, p: usize, op: CtxOp) -> CtxResult {
    let c = CtxCmd::new().with_partition(p as u8).with_op(op);
    h.set(RegId::CtxCmd, 0, 0, c.into_bits() as u64);
    CtxStatus::from_bits(h.reg(RegId::CtxStatus, 0, 0) as u32).result()
}

#[test]
fn a_stopped_head_freezes_and_moves_with_the_context() {
    let h = harness();
    h.enable(2, 32 * MIB, 16 * MIB, PtCtrl::new());
    pend(&h, 1, 640, 480, 2560, 0x100000);
    commit(&h, 1);
    until("vblanks", || h.reg(RegId::WDispVblankCount, 1, 0) >= 1);
    let stop = PtCtrl::new().with_enable(true).with_stop(true);
    h.set(RegId::PtCtrl, 1, 0, stop.into_bits() as u64);
    // A flip committed while stopped waits: no vblank comes.
    h.set(RegId::WDispBase, 1, 0, 0x200000);
    commit(&h, 1);
    let frozen = h.reg(RegId::WDispVblankCount, 1, 0);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(h.reg(RegId::WDispVblankCount, 1, 0), frozen);
    assert!(status(&h, 1).flip_pending());
    assert_eq!(ctx(&h, 1, CtxOp::Save), CtxResult::Ok);

    h.set(RegId::PtCtrl, 2, 0, stop.into_bits() as u64);
    assert_eq!(ctx(&h, 2, CtxOp::Restore), CtxResult::Ok);
    assert!(status(&h, 2).active() && status(&h, 2).flip_pending());
    assert_eq!(h.reg(RegId::WDispActiveBase, 2, 0), 0x100000);
    assert_eq!(h.reg(RegId::WDispVblankCount, 2, 0), frozen);
    let run = PtCtrl::new().with_enable(true);
    h.set(RegId::PtCtrl, 2, 0, run.into_bits() as u64);
    until("the flip on the target", || !status(&h, 2).flip_pending());
    assert_eq!(h.reg(RegId::WDispActiveBase, 2, 0), 0x200000);
    assert_eq!(
        DispMode::from_bits(h.reg(RegId::WDispActiveMode, 2, 0) as u32),
        DispMode::new().with_width(640).with_height(480)
    );
}
