//! Concurrency stress (issue 16): two host threads (a driver racing with
//! itself) and two tenant threads
//! drive the register interface at once with a seeded random mix of slice
//! writes, enables, resets, translation changes, ring reconfiguration,
//! doorbells and long commands while the engines run. After every host
//! step the device's invariants must hold (Device::check_invariants: no
//! overlapping enabled slices, every enabled slice inside VRAM, ring and
//! in-flight state consistent) and no model thread may have died; at the
//! end every partition must be reachable by a reset and run a command.
//!
//! `VGPU_STRESS_SEED=n` replays one seed; `VGPU_STRESS_MS` sets the time
//! per seed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vdevice::command::{Command, Loc, COMMAND_BYTES};
use vdevice::regs::{PartitionState, PtCtrl, RegId};
use vdevice::testing::{Harness, Rng};
use vdevice::DeviceConfig;

const MIB: u64 = 1 << 20;
const VRAM: u64 = 64 * MIB;
const PARTS: usize = 4;
const SYSMEM: usize = 16 << 20;

/// Slice bases and sizes that overlap each other often.
const BASES: [u64; 6] = [0, 4 * MIB, 8 * MIB, 16 * MIB, 32 * MIB, 60 * MIB];
const SIZES: [u64; 4] = [4 * MIB, 8 * MIB, 16 * MIB, 0];

fn host_step(h: &Harness, r: &mut Rng) {
    let p = r.below(PARTS as u64) as usize;
    match r.below(12) {
        0 => h.set(RegId::PtVramBase, p, 0, r.pick(&BASES)),
        1 => h.set(RegId::PtVramSize, p, 0, r.pick(&SIZES)),
        2..=4 => {
            let ctrl = PtCtrl::new()
                .with_enable(r.below(3) != 0)
                .with_xlate(r.below(4) == 0)
                .with_xlate_replay(r.below(2) == 0);
            h.set(RegId::PtCtrl, p, 0, ctrl.into_bits() as u64);
        }
        5 => h.set(RegId::PtReset, p, 0, 1),
        6 => h.set(RegId::PtXlateInvalidate, p, 0, 1),
        7 => h.set(RegId::PtXlateRoot, p, 0, r.below(4) * 4096),
        8 => h.set(RegId::PtXlateDirEntries, p, 0, r.below(3)),
        9 => h.set(RegId::PtWeight, p, 0, r.below(256)),
        10 => h.set(RegId::PtScrub, p, 0, 1),
        _ => {
            // Answer translation faults at random, as a racing RM would.
            if h.reg(RegId::XlateFaultCount, 0, 0) != 0 {
                let info = h.reg(RegId::XlateFaultInfo, 0, 0);
                h.set(RegId::XlateFaultPop, 0, 0, 1);
                let action = r.below(2);
                h.set(RegId::XlateResume, 0, 0, (info & 0xff) | action << 8);
            }
        }
    }
}

fn random_command(r: &mut Rng, slice: u64) -> Command {
    let vram = |r: &mut Rng| Loc::Vram(r.below(slice.max(4096) / 4096) * 4096);
    let sys = |r: &mut Rng| Loc::Sys(r.below(SYSMEM as u64 / 4096 + 16) * 4096);
    let len = |r: &mut Rng| r.pick(&[8, 4096, MIB, 3 * MIB + 4096, 8 * MIB]);
    match r.below(7) {
        0 => Command::fill(vram(r), len(r), r.next() as u32),
        1 => Command::fill(sys(r), len(r), r.next() as u32),
        2 => Command::copy(vram(r), vram(r), len(r)),
        3 => Command::copy(sys(r), vram(r), len(r)),
        4 => Command::fence(vram(r), r.next(), r.below(2) == 0),
        5 => Command::crc32(vram(r), sys(r), len(r)),
        _ => Command::sem_wait(sys(r), r.below(3)),
    }
}

fn tenant_step(h: &Harness, r: &mut Rng) {
    let p = r.below(PARTS as u64) as usize;
    let ring = r.below(2) as usize;
    match r.below(10) {
        0 => h.set(RegId::WRingBase, p, ring, r.below(4) * 4096),
        1 => h.set(RegId::WRingSize, p, ring, r.pick(&[0, 1, 4, 64, 3])),
        2 => h.set(RegId::WRingCtrl, p, ring, r.below(2)),
        3 => h.set(RegId::WReset, p, 0, 1),
        4 | 5 => h.set(RegId::WDoorbell, p, ring, r.below(70)),
        _ => {
            // Write a command where the ring's next slot is, then ring.
            let base = h.reg(RegId::PtVramBase, p, 0);
            let slice = h.reg(RegId::PtVramSize, p, 0);
            let rbase = h.reg(RegId::WRingBase, p, ring);
            let size = h.reg(RegId::WRingSize, p, ring);
            let tail = h.reg(RegId::WRingTail, p, ring);
            if size == 0 {
                return;
            }
            let cmd = random_command(r, slice).encode();
            let at = base + rbase + tail * COMMAND_BYTES as u64;
            // May land outside VRAM when the slice moved: the BAR refuses.
            let _ = h.dev.vram().write(at, &cmd);
            h.set(RegId::WDoorbell, p, ring, (tail + 1) % size);
        }
    }
}

fn run_seed(seed: u64, time: Duration) {
    let h = Arc::new(Harness::new(
        DeviceConfig {
            vram_size_bytes: VRAM,
            partitions: PARTS,
            engines: 2,
            ..DeviceConfig::default()
        },
        SYSMEM,
    ));
    h.set(RegId::SchedTimesliceUs, 0, 0, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let others: Vec<_> = (0..3u64)
        .map(|t| {
            let (h, stop) = (h.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut r = Rng::new(seed ^ (t + 1) << 32);
                while !stop.load(Ordering::Relaxed) {
                    if t == 0 {
                        host_step(&h, &mut r);
                    } else {
                        tenant_step(&h, &mut r);
                    }
                }
            })
        })
        .collect();
    let mut r = Rng::new(seed);
    let start = Instant::now();
    let mut steps = 0u64;
    let mut broken = None;
    while start.elapsed() < time {
        host_step(&h, &mut r);
        steps += 1;
        if let Err(e) = h.dev.check_invariants() {
            broken = Some(e);
            break;
        }
        if !h.dev.threads_alive() {
            broken = Some("a model thread died (panicked)".into());
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in others {
        t.join().unwrap();
    }
    assert_eq!(broken, None, "seed {seed:#x}, host step {steps}");

    // Every partition is reachable by a reset and runs again.
    for p in 0..PARTS {
        h.set(RegId::PtCtrl, p, 0, 0);
    }
    for p in 0..PARTS {
        h.set(RegId::PtXlateDirEntries, p, 0, 0);
        h.enable(p, p as u64 * 16 * MIB, 16 * MIB, PtCtrl::new());
        h.forget_rings(p);
        h.ring_in_vram(p, 0, 0, 64);
        h.submit(p, 0, &[Command::fence(Loc::Vram(0x8000), 0x600d, false)]);
    }
    for p in 0..PARTS {
        let s = h.wait_not_busy(p, Duration::from_secs(10));
        assert_eq!(s, PartitionState::Idle, "seed {seed:#x}: partition {p}");
        assert_eq!(h.reg(RegId::WFenceValue, p, 0), 0x600d);
    }
    assert!(h.dev.threads_alive());
    h.dev.check_invariants().unwrap();
}

#[test]
fn random_concurrent_register_streams_keep_the_invariants() {
    let ms = std::env::var("VGPU_STRESS_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let seeds: Vec<u64> = match std::env::var("VGPU_STRESS_SEED") {
        Ok(v) => vec![v.parse().expect("VGPU_STRESS_SEED is a number")],
        Err(_) => vec![1, 2],
    };
    for seed in seeds {
        run_seed(seed, Duration::from_millis(ms));
    }
}
