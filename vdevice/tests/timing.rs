//! ENGINE_DELAY (SPEC 13): engines made slow and jittery on purpose, so a
//! driver that forgets to wait for its fence fails visibly instead of
//! passing by luck; the delay holds no engine and no reset.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vdevice::command::{Command, Loc};
use vdevice::events::EventKind;
use vdevice::regs::{self, EngineDelay, PartIntr, PartitionState, PtCtrl, RegId};
use vdevice::testing::Harness;
use vdevice::DeviceConfig;

const MIB: u64 = 1 << 20;
const RESULT: u64 = 0x10000;
const PATTERN: u32 = 0xc0ff_ee11;

fn harness(engines: usize) -> Harness {
    let h = Harness::new(
        DeviceConfig {
            vram_size_bytes: 64 * MIB,
            partitions: 2,
            engines,
            ..DeviceConfig::default()
        },
        1 << 20,
    );
    for p in 0..2 {
        h.enable(p, p as u64 * 16 * MIB, 16 * MIB, PtCtrl::new());
        let intr = PartIntr::new().with_fence(true).into_bits() as u64;
        h.set(RegId::WIntrMask, p, 0, intr);
        h.ring_in_vram(p, 0, 0, 64);
    }
    h
}

fn set_delay(h: &Harness, min_us: u32, jitter_us: u32) {
    let d = EngineDelay::new()
        .with_min_us(min_us)
        .with_jitter_us(jitter_us);
    h.set(RegId::EngineDelay, 0, 0, d.into_bits());
}

/// The careless driver: FILL its result word, FENCE, do a millisecond of
/// other work (under TCG a handful of register accesses take that long),
/// and read the result without ever looking at the fence. Returns the
/// word it read and the one it reads after waiting for the fence.
fn careless_fill(h: &Harness, p: usize, fence: u64) -> (u32, u32) {
    let base = h.reg(RegId::PtVramBase, p, 0);
    assert!(h.dev.vram().write(base + RESULT, &0u32.to_le_bytes()));
    h.submit(
        p,
        0,
        &[
            Command::fill(Loc::Vram(RESULT), 4, PATTERN),
            Command::fence(Loc::Vram(RESULT + 8), fence, true),
        ],
    );
    std::thread::sleep(Duration::from_millis(1));
    let early = h.vram_bar_read(base + RESULT, 4) as u32;
    let vector = regs::partition_vector_base(p);
    assert!(
        h.irq
            .wait_for(vector, fence as usize, Duration::from_secs(10)),
        "the fence arrives"
    );
    let late = h.vram_bar_read(base + RESULT, 4) as u32;
    (early, late)
}

#[test]
fn a_driver_that_forgets_to_wait_fails_under_engine_delay() {
    let h = harness(1);
    // Without a delay the careless driver often gets away with it (how
    // often depends on the machine): reported, not asserted.
    let lucky = (1..=20)
        .filter(|&n| careless_fill(&h, 0, n).0 == PATTERN)
        .count();
    eprintln!("without ENGINE_DELAY the careless read was right {lucky} of 20 times");

    // With 200 ms per command (+ up to 50 ms), it reads the old value: the
    // FILL cannot have run when the doorbell write returned.
    set_delay(&h, 200_000, 50_000);
    assert_eq!(h.reg(RegId::EngineDelay, 0, 0) & 0xffff_ffff, 200_000);
    let t0 = Instant::now();
    let (early, late) = careless_fill(&h, 0, 21);
    let took = t0.elapsed();
    assert_eq!(early, 0, "the careless read sees the old value");
    assert_eq!(late, PATTERN, "waiting for the fence gives the result");
    // Two commands, each at least MIN_US after it was taken.
    assert!(took >= Duration::from_millis(400), "{took:?}");
}

#[test]
fn a_delayed_command_holds_neither_the_engine_nor_a_reset() {
    // One engine, a long delay: partition 0's command waits, partition
    // 1's command is taken meanwhile (it is in flight too, not queued
    // behind partition 0's wait), and a reset ends a waiting command at
    // once.
    let h = harness(1);
    let taken = Arc::new(Mutex::new(Vec::new()));
    let t = taken.clone();
    let _sub = h.dev.subscribe(move |e| {
        if let EventKind::CmdTaken { partition, .. } = e.kind {
            t.lock().unwrap().push(partition);
        }
    });
    set_delay(&h, 2_000_000, 0);
    h.submit(0, 0, &[Command::nop()]);
    h.submit(1, 0, &[Command::nop()]);
    // Both are taken long before either delay is over.
    let deadline = Instant::now() + Duration::from_secs(1);
    while taken.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "both commands taken");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(h.state(0), PartitionState::Busy);
    assert_eq!(h.reg(RegId::WRingHead, 0, 0), 0, "not completed yet");
    let t0 = Instant::now();
    h.set(RegId::WReset, 0, 0, 1);
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "reset waits for no delay"
    );
    assert_eq!(h.state(0), PartitionState::Idle);
    // Device reset clears the delay.
    h.dev.reset();
    assert_eq!(h.reg(RegId::EngineDelay, 0, 0), 0);
}
