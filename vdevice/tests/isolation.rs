//! Isolation as a property: whatever commands and translation entries a
//! partition is given, it never reads or writes VRAM outside its slice or
//! system memory outside the pages its table maps (writes: writable pages).

use proptest::prelude::*;
use std::time::Duration;
use vdevice::command::{Command, Loc, Rect, COMMAND_BYTES};
use vdevice::regs::{PartitionState, PtCtrl, RegId};
use vdevice::testing::Harness;
use vdevice::DeviceConfig;

const MIB: u64 = 1 << 20;
const SLICE_BASE: u64 = 4 * MIB;
const SLICE_SIZE: u64 = 2 * MIB;
const SYSMEM: usize = 1 << 20;
const PAGES_BUS: u64 = 0x10000; // mapped pages live in 0x10000..0x50000
const MARK: &[u8; 8] = b"OUTSIDE!";

#[derive(Clone, Debug)]
enum Op {
    Cmd(Command),
    Garbage([u8; 8]),
}

fn loc() -> impl Strategy<Value = Loc> {
    prop_oneof![
        (0..3 * MIB).prop_map(Loc::Vram),
        (0..SLICE_SIZE).prop_map(|a| Loc::Vram(a & !7)),
        (0u64..0x80000).prop_map(Loc::Sys),
        any::<u64>().prop_map(Loc::Vram),
        any::<u64>().prop_map(Loc::Sys),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let len = prop_oneof![0u64..256, 0u64..0x20000, Just(u64::MAX)];
    prop_oneof![
        (loc(), loc(), len.clone()).prop_map(|(d, s, l)| Op::Cmd(Command::copy(d, s, l))),
        (loc(), len.clone(), any::<u32>()).prop_map(|(d, l, v)| Op::Cmd(Command::fill(
            d.offset(0u64.wrapping_sub(d.addr() % 4)),
            l & !3,
            v
        ))),
        (loc(), any::<u64>()).prop_map(|(d, v)| Op::Cmd(Command::fence(
            d.offset(0u64.wrapping_sub(d.addr() % 8)),
            v,
            false
        ))),
        (loc(), loc(), len).prop_map(|(d, s, l)| Op::Cmd(Command::crc32(
            d.offset(0u64.wrapping_sub(d.addr() % 8)),
            s,
            l
        ))),
        loc().prop_map(|d| Op::Cmd(Command::timestamp(
            d.offset(0u64.wrapping_sub(d.addr() % 8))
        ))),
        Just(Op::Cmd(Command::nop())),
        (loc(), rect(), any::<u32>()).prop_map(|(d, r, v)| Op::Cmd(Command::fill_rect(
            d.addr() & !3,
            r.width & !3,
            r.height,
            r.dst_pitch & !3,
            v
        ))),
        (loc(), loc(), rect()).prop_map(|(d, s, r)| Op::Cmd(Command::blit(d.addr(), s.addr(), r))),
        any::<[u8; 8]>().prop_map(Op::Garbage),
    ]
}

/// Rectangles: small, slice-sized, and hostile (pitches that wrap).
fn rect() -> impl Strategy<Value = Rect> {
    let side = prop_oneof![0u32..64, 0u32..4096, any::<u32>()];
    (side.clone(), 0u32..64, side.clone(), side).prop_map(
        |(width, height, dst_pitch, src_pitch)| Rect {
            width,
            height,
            dst_pitch,
            src_pitch,
        },
    )
}

/// (partition vpn, bus page index in 0..64, writable)
fn mapping() -> impl Strategy<Value = Vec<(u64, u64, bool)>> {
    prop::collection::vec((0u64..128, 0u64..64, any::<bool>()), 0..48)
}

fn fill_marks(buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = MARK[i % 8];
    }
}

fn contains_mark(buf: &[u8]) -> bool {
    buf.windows(8).any(|w| w[0] == MARK[0] && w == MARK)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_partition_stays_inside_its_slice_and_its_pages(ops in prop::collection::vec(op(), 1..40), maps in mapping(), replay in any::<bool>()) {
        let h = Harness::new(DeviceConfig { vram_size_bytes: 16 * MIB, partitions: 2, engines: 2, ..DeviceConfig::default() }, SYSMEM);
        // VRAM: marks everywhere, the slice gets its own bytes.
        let mut outside = vec![0u8; 16 * MIB as usize];
        fill_marks(&mut outside);
        h.dev.vram().write(0, &outside);
        h.dev.vram().write(SLICE_BASE, &vec![0x11; SLICE_SIZE as usize]);
        // System memory: marks everywhere except the mapped pages.
        let mut sys = vec![0u8; SYSMEM];
        fill_marks(&mut sys);
        h.mem.write_bytes(0, &sys);
        let mut page_writable = [None::<bool>; 64];
        let mut uniq = std::collections::BTreeMap::new();
        for (vpn, page, w) in maps {
            uniq.insert(vpn, (page, w));
        }
        let maps: Vec<(u64, u64, bool)> = uniq.into_iter().map(|(vpn, (page, w))| {
            let e = page_writable[page as usize].get_or_insert(false);
            *e |= w;
            (vpn * 4096, PAGES_BUS + page * 4096, w)
        }).collect();
        for (page, w) in page_writable.iter().enumerate() {
            if w.is_some() {
                h.mem.write_bytes(PAGES_BUS + page as u64 * 4096, &[0x22; 4096]);
            }
        }
        let entries = h.build_xlate(0x0, 0x1000, &maps);
        h.set_xlate(0, 0x0, entries);
        h.enable(0, SLICE_BASE, SLICE_SIZE, PtCtrl::new().with_xlate(true).with_xlate_replay(replay));
        // What system memory holds before the partition runs (tables included).
        let sys = h.mem.snapshot();

        let raw: Vec<[u8; COMMAND_BYTES]> = ops.iter().map(|o| match o {
            Op::Cmd(c) => c.encode(),
            Op::Garbage(g) => { let mut b = [0u8; COMMAND_BYTES]; b[..8].copy_from_slice(g); b[40] = g[0]; b }
        }).collect();
        let mut next = 0usize;
        while next < raw.len() {
            h.forget_rings(0);
            h.set(RegId::WReset, 0, 0, 1);
            h.ring_in_vram(0, 0, SLICE_SIZE - 64 * 64, 64);
            let batch = &raw[next..];
            h.submit_raw(0, 0, batch);
            let mut st = h.wait_not_busy(0, Duration::from_secs(20));
            if st == PartitionState::XlateWait {
                // the host refuses to map anything: cancel
                h.set(RegId::XlateResume, 0, 0, 1 << 8);
                st = h.state(0);
            }
            prop_assert!(st == PartitionState::Idle || st == PartitionState::Faulted, "state {}", st);
            if st == PartitionState::Idle {
                break;
            }
            next += h.reg(RegId::WFaultCmd, 0, 0) as usize + 1;
        }
        prop_assert_eq!(h.state(1), PartitionState::Disabled);

        // Writes: everything outside the slice and the writable pages is untouched.
        let mut vram = vec![0u8; 16 * MIB as usize];
        h.dev.vram().read(0, &mut vram);
        let (lo, hi) = (SLICE_BASE as usize, (SLICE_BASE + SLICE_SIZE) as usize);
        prop_assert!(vram[..lo] == outside[..lo], "VRAM below the slice written");
        prop_assert!(vram[hi..] == outside[hi..], "VRAM above the slice written");
        let now = h.mem.snapshot();
        for page in 0..(SYSMEM / 4096) {
            let r = page * 4096..(page + 1) * 4096;
            let idx = (page as u64 * 4096).checked_sub(PAGES_BUS).map(|o| o / 4096);
            let writable = idx.and_then(|i| page_writable.get(i as usize).copied().flatten()).unwrap_or(false);
            if !writable {
                prop_assert!(now[r.clone()] == sys[r.clone()], "system memory page {:#x} written", page * 4096);
            }
        }
        // Reads: no outside byte pattern leaked into the slice or the mapped pages.
        prop_assert!(!contains_mark(&vram[lo..hi]), "outside VRAM or memory leaked into the slice");
        for (page, w) in page_writable.iter().enumerate() {
            if w.is_some() {
                let a = PAGES_BUS as usize + page * 4096;
                prop_assert!(!contains_mark(&now[a..a + 4096]), "leak into mapped page {}", page);
            }
        }
    }
}
