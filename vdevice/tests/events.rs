//! Device events as a driver's trace shows them: the device's side of
//! faults, dropped interrupts, translation faults, resets and refusals,
//! each with what a person debugging the driver needs to know.

use std::time::Duration;
use vdevice::command::{Command, Loc};
use vdevice::regs::{self, EngineDelay, InjectKind, PartIntr, PartitionState, PtCtrl, RegId};
use vdevice::testing::Harness;
use vdevice::DeviceConfig;

const MIB: u64 = 1 << 20;
const T: Duration = Duration::from_secs(10);

fn harness() -> Harness {
    Harness::new(
        DeviceConfig {
            vram_size_bytes: 64 * MIB,
            partitions: 2,
            engines: 1,
            ..DeviceConfig::default()
        },
        8 << 20,
    )
}

fn wait_state(h: &Harness, p: usize, want: PartitionState) {
    let deadline = std::time::Instant::now() + T;
    while h.state(p) != want {
        assert!(std::time::Instant::now() < deadline, "state {want}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn has(trace: &[String], want: &str) -> bool {
    trace.iter().any(|l| l.contains(want))
}

#[track_caller]
fn assert_lines(trace: &[String], wants: &[&str]) {
    for w in wants {
        assert!(has(trace, w), "no line with {w:?} in\n{}", trace.join("\n"));
    }
}

#[test]
fn a_fault_a_dropped_interrupt_and_the_reset_that_recovers() {
    let h = harness();
    h.enable(0, 0, 16 * MIB, PtCtrl::new());
    let mask = PartIntr::new().with_fence(true).with_fault(true);
    h.set(RegId::WIntrMask, 0, 0, mask.into_bits() as u64);
    h.ring_in_vram(0, 0, 0, 16);
    h.start_trace();
    h.set(
        RegId::PtInject,
        0,
        0,
        InjectKind::DropIrq.into_bits() as u64,
    );
    h.submit(0, 0, &[Command::fence(Loc::Vram(0x1000), 1, true)]);
    wait_state(&h, 0, PartitionState::Idle);
    h.submit(0, 0, &[Command::fill(Loc::Vram(16 * MIB), 4, 0)]);
    wait_state(&h, 0, PartitionState::Faulted);
    h.set(RegId::WReset, 0, 0, 1);
    let trace = h.take_trace();
    assert_lines(
        &trace,
        &[
            "dev MSI-X 2 (PART[0] FENCE) dropped by DROP_IRQ",
            "dev PART[0] ring 0 #1 FILL FAULT VRAM_OOB @0x1000000 write",
            "dev PART[0] BUSY -> FAULTED",
            "dev MSI-X 3 (PART[0] FAULT)",
            "dev PART[0] RESET",
            "dev PART[0] FAULTED -> IDLE",
        ],
    );
}

#[test]
fn a_cancelled_translation_fault_from_both_sides() {
    let h = harness();
    h.set_xlate(0, 0x1000, 0);
    let ctrl = PtCtrl::new().with_xlate(true).with_xlate_replay(true);
    h.enable(0, 0, 16 * MIB, ctrl);
    h.ring_in_vram(0, 0, 0, 16);
    h.start_trace();
    h.submit(0, 0, &[Command::fence(Loc::Sys(0x9000), 1, false)]);
    wait_state(&h, 0, PartitionState::XlateWait);
    let cancel = regs::XlateResume::new().with_action(regs::ResumeAction::Cancel);
    h.set(RegId::XlateResume, 0, 0, cancel.into_bits() as u64);
    let trace = h.take_trace();
    assert_lines(
        &trace,
        &[
            "dev PART[0] XLATE_FAULT @0x9000 write: waits for XLATE_RESUME",
            "dev PART[0] BUSY -> XLATE_WAIT",
            "dev PART[0] XLATE_RESUME CANCEL",
            "dev PART[0] ring 0 #0 FENCE FAULT XLATE_CANCELLED @0x9000 write",
            "dev PART[0] XLATE_WAIT -> FAULTED",
        ],
    );
}

#[test]
fn refusals_say_why_and_a_reset_ends_the_command_in_flight() {
    let h = harness();
    h.enable(0, 0, 16 * MIB, PtCtrl::new());
    h.ring_in_vram(0, 0, 0, 16);
    // Hold the first command in flight for a while.
    let delay = EngineDelay::new().with_min_us(2_000_000);
    h.set(RegId::EngineDelay, 0, 0, delay.into_bits());
    h.start_trace();
    h.submit(0, 0, &[Command::nop(), Command::nop()]);
    let deadline = std::time::Instant::now() + T;
    while !has(&h.peek_trace(), "#0 NOP taken") {
        assert!(std::time::Instant::now() < deadline, "command taken");
        std::thread::sleep(Duration::from_millis(1));
    }
    h.set(RegId::WRingBase, 0, 0, 0x1000);
    h.set(RegId::WDoorbell, 0, 0, 0);
    h.set(RegId::WDoorbell, 1, 0, 1);
    h.set(RegId::PtVramBase, 1, 0, 8 * MIB);
    h.set(RegId::PtVramSize, 1, 0, 16 * MIB);
    h.set(
        RegId::PtCtrl,
        1,
        0,
        PtCtrl::new().with_enable(true).into_bits() as u64,
    );
    h.set(RegId::WReset, 0, 0, 1);
    let trace = h.take_trace();
    assert_lines(
        &trace,
        &[
            "PART[0].RING_BASE[0] <- 0x1000  REJECTED BUSY (ring 0 has a command in flight)",
            "PART[0].DOORBELL[0] <- 0x0  REJECTED BUSY (TAIL onto ring 0's command in flight at HEAD 0)",
            "PART[1].DOORBELL[0] <- 0x1  REJECTED DISABLED (partition 1 is disabled: CTRL.ENABLE is 0)",
            "PT[1].CTRL <- 0x1 {ENABLE=1 XLATE=0 XLATE_REPLAY=0 STOP=0 DIRTY_LOG=0}  REJECTED BAD_VALUE (slice overlaps partition 0)",
            "dev PART[0] ring 0 #0 NOP ended by reset",
            "dev PART[0] BUSY -> IDLE",
        ],
    );
}
