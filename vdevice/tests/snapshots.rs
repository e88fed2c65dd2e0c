//! insta snapshots a person reviews: the register dump after init, the
//! decoded trace (register accesses with the device's events interleaved)
//! of a driver bringing up a partition and running one batch, and of the
//! most likely newcomer mistake: resuming after a partition reset without
//! programming the ring again. Times are normalised; everything else is
//! deterministic (each step's events are out before its interrupt).

use std::time::Duration;
use vdevice::command::{Command, Loc};
use vdevice::regs::{self, PartIntr, PtCtrl, RegId};
use vdevice::testing::Harness;
use vdevice::DeviceConfig;

const MIB: u64 = 1 << 20;

/// Replace the values of time-dependent registers with `<time>`.
fn normalise(text: &str) -> String {
    text.lines()
        .map(|l| {
            let name = l.split_whitespace().next().unwrap_or("");
            if !(name.ends_with("TIMESTAMP") || name.ends_with("STAT_BUSY_NS")) {
                return l.to_string();
            }
            l.split(' ')
                .map(|w| if w.starts_with("0x") { "<time>" } else { w })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn register_dump_after_init() {
    let h = Harness::new(
        DeviceConfig {
            vram_size_bytes: 256 * MIB,
            partitions: 2,
            engines: 2,
            ..DeviceConfig::default()
        },
        4096,
    );
    h.enable(1, 128 * MIB, 64 * MIB, PtCtrl::new().with_xlate(true));
    insta::assert_snapshot!(normalise(&h.dev.dump()));
}

#[test]
fn decoded_trace_of_partition_bring_up_and_one_batch() {
    let h = Harness::new(
        DeviceConfig {
            vram_size_bytes: 256 * MIB,
            partitions: 4,
            engines: 2,
            ..DeviceConfig::default()
        },
        1 << 20,
    );
    h.start_trace();
    // identify
    h.reg(RegId::Id, 0, 0);
    h.reg(RegId::Caps, 0, 0);
    h.reg(RegId::VramSize, 0, 0);
    // carve partition 2 and enable interrupts
    h.set(RegId::IntrMask, 0, 0, 0xf);
    h.set(RegId::PtWeight, 2, 0, 4);
    h.enable(2, 64 * MIB, 32 * MIB, PtCtrl::new());
    h.reg(RegId::PtMsixBase, 2, 0);
    // the vGPU's own driver: ring, interrupts, one batch
    h.reg(RegId::WVramSize, 2, 0);
    h.set(
        RegId::WIntrMask,
        2,
        0,
        PartIntr::new()
            .with_fence(true)
            .with_fault(true)
            .into_bits() as u64,
    );
    h.ring_in_vram(2, 0, 0, 256);
    h.submit(
        2,
        0,
        &[
            Command::fill(Loc::Vram(0x10000), 0x1000, 0xc0ffee),
            Command::crc32(Loc::Vram(0x20000), Loc::Vram(0x10000), 0x1000),
            Command::fence(Loc::Vram(0x20008), 1, true),
        ],
    );
    assert!(h
        .irq
        .wait_for(regs::partition_vector_base(2), 1, Duration::from_secs(10)));
    h.reg(RegId::WStatus, 2, 0);
    h.reg(RegId::WIntrStatus, 2, 0);
    h.set(RegId::WIntrStatus, 2, 0, 0x1);
    h.reg(RegId::WFenceValue, 2, 0);
    h.reg(RegId::WRingHead, 2, 0);
    h.reg(RegId::WStatCommands, 2, 0);
    h.reg(RegId::WStatBytes, 2, 0);
    h.reg(RegId::WTimestamp, 2, 0);
    // a bad access, as the trace shows it
    h.set(RegId::WDoorbell, 2, 0, 999);
    h.reg(RegId::AccessErrorInfo, 0, 0);
    let trace = h.take_trace().join("\n");
    insta::assert_snapshot!(normalise(&trace));
}

/// A driver brings partition 0 up, runs a batch, resets the partition and
/// rings the doorbell again without reprogramming the ring (a reset turns
/// rings off, SPEC 11). The trace shows the refused doorbell and why; the
/// fence never arrives.
#[test]
fn decoded_trace_of_a_doorbell_on_a_ring_a_reset_turned_off() {
    let h = Harness::new(
        DeviceConfig {
            vram_size_bytes: 64 * MIB,
            partitions: 2,
            engines: 1,
            ..DeviceConfig::default()
        },
        1 << 20,
    );
    let engine_vector = regs::partition_vector_base(0);
    let intr = PartIntr::new()
        .with_fence(true)
        .with_fault(true)
        .into_bits() as u64;
    h.start_trace();
    h.enable(0, 0, 16 * MIB, PtCtrl::new());
    h.set(RegId::WIntrMask, 0, 0, intr);
    h.ring_in_vram(0, 0, 0, 16);
    h.submit(
        0,
        0,
        &[
            Command::fill(Loc::Vram(0x10000), 0x100, 0x5a5a5a5a),
            Command::fence(Loc::Vram(0x20000), 1, true),
        ],
    );
    assert!(h.irq.wait_for(engine_vector, 1, Duration::from_secs(10)));
    h.reg(RegId::WFenceValue, 0, 0);
    // Recover from something with a partition reset...
    h.set(RegId::WReset, 0, 0, 1);
    // ...and resume: interrupts again, but the ring is forgotten.
    h.set(RegId::WIntrMask, 0, 0, intr);
    h.submit(
        0,
        0,
        &[
            Command::fill(Loc::Vram(0x10000), 0x100, 0x12345678),
            Command::fence(Loc::Vram(0x20000), 2, true),
        ],
    );
    assert!(
        !h.irq.wait_for(engine_vector, 2, Duration::from_millis(300)),
        "the fence must never arrive: the ring is off"
    );
    h.reg(RegId::WStatus, 0, 0);
    h.reg(RegId::WRingSize, 0, 0);
    h.reg(RegId::WRingTail, 0, 0);
    h.reg(RegId::WFenceValue, 0, 0);
    h.reg(RegId::WAccessErrors, 0, 0);
    let trace = h.take_trace().join("\n");
    assert!(
        trace.contains("PART[0].DOORBELL[0] <- 0x4  REJECTED BAD_VALUE (ring 0 off"),
        "{trace}"
    );
    insta::assert_snapshot!(normalise(&trace));
}
