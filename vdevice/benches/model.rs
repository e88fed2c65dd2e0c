//! `make bench`: model figures measured in one run, printed as `name value`.
//! copy_engine_vs_memcpy — COPY engine throughput for 64 MiB VRAM->VRAM
//! divided by host memcpy of the same size between heap buffers;
//! copy_engine_vs_vram_memcpy — the same against a memcpy within the VRAM
//! mapping, the same kind of memory (goal >= 0.9);
//! reg_read_ns / reg_write_ns — register dispatch cost per access (goal < 100);
//! reset_latency_under_hog_us — a partition reset issued while that
//! partition runs a 1 GiB system-memory COPY over 4 KiB pages, worst of
//! the rounds (goal < 10 ms: the MMIO write blocks a vCPU);
//! neighbour_fence_latency_under_hog_us — another partition's FENCE on the
//! same single engine while the hog runs, worst of the rounds (goal < 3
//! timeslices).

use std::hint::black_box;
use std::time::{Duration, Instant};
use vdevice::command::{Command, Loc};
use vdevice::regs::{self, PartIntr, PtCtrl, RegId, REG_BAR};
use vdevice::testing::Harness;
use vdevice::xlate::PAGE_SIZE;
use vdevice::DeviceConfig;

const MIB: u64 = 1 << 20;
const COPY_BYTES: u64 = 64 * MIB;
const ROUNDS: usize = 9;

fn best(mut f: impl FnMut() -> Duration) -> Duration {
    (0..ROUNDS).map(|_| f()).min().expect("rounds")
}

fn main() {
    let h = Harness::new(
        DeviceConfig {
            vram_size_bytes: 256 * MIB,
            partitions: 1,
            engines: 1,
            ..DeviceConfig::default()
        },
        4096,
    );
    h.enable(0, 0, 256 * MIB, PtCtrl::new());
    h.ring_in_vram(0, 0, 0, 64);
    h.set(
        RegId::WIntrMask,
        0,
        0,
        PartIntr::new().with_fence(true).into_bits() as u64,
    );
    // Touch both ranges once so page faults are not measured on either side.
    h.dev.vram().fill32(MIB, COPY_BYTES, 0x5a5a_5a5a);
    h.dev.vram().fill32(128 * MIB, COPY_BYTES, 0);
    let vector = regs::partition_vector_base(0);
    let vram = h.dev.vram();
    let src = vec![0x5au8; COPY_BYTES as usize];
    let mut dst = vec![0u8; COPY_BYTES as usize];
    // The three copies take turns, round by round, so a change in the
    // machine's load hits all of them alike; each keeps its best round.
    let (mut engine, mut memcpy, mut vram_memcpy) = (Duration::MAX, Duration::MAX, Duration::MAX);
    for round in 1..=ROUNDS {
        let t0 = Instant::now();
        h.submit(
            0,
            0,
            &[
                Command::copy(Loc::Vram(128 * MIB), Loc::Vram(MIB), COPY_BYTES),
                Command::fence(Loc::Vram(0x1000), round as u64, true),
            ],
        );
        assert!(h.irq.wait_for(vector, round, Duration::from_secs(30)));
        engine = engine.min(t0.elapsed());

        let t0 = Instant::now();
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
        memcpy = memcpy.min(t0.elapsed());

        let t0 = Instant::now();
        assert!(vram.copy_within(MIB, 128 * MIB, COPY_BYTES));
        vram_memcpy = vram_memcpy.min(t0.elapsed());
    }
    println!(
        "copy_engine_vs_memcpy {:.3}",
        memcpy.as_secs_f64() / engine.as_secs_f64()
    );
    println!(
        "copy_engine_vs_vram_memcpy {:.3}",
        vram_memcpy.as_secs_f64() / engine.as_secs_f64()
    );
    println!(
        "vram_memcpy_gib_s {:.2}",
        COPY_BYTES as f64 / vram_memcpy.as_secs_f64() / (1u64 << 30) as f64
    );
    println!(
        "copy_engine_gib_s {:.2}",
        COPY_BYTES as f64 / engine.as_secs_f64() / (1u64 << 30) as f64
    );
    println!(
        "memcpy_gib_s {:.2}",
        COPY_BYTES as f64 / memcpy.as_secs_f64() / (1u64 << 30) as f64
    );

    const N: u32 = 2_000_000;
    let status = regs::offset_of(RegId::WStatus, 0, 0);
    let scratch = regs::offset_of(RegId::WScratch, 0, 0);
    let read = best(|| {
        let t0 = Instant::now();
        for _ in 0..N {
            black_box(h.dev.read(REG_BAR, black_box(status), 4));
        }
        t0.elapsed()
    });
    let write = best(|| {
        let t0 = Instant::now();
        for i in 0..N {
            h.dev.write(REG_BAR, black_box(scratch), i as u64, 4);
        }
        t0.elapsed()
    });
    println!("reg_read_ns {:.1}", read.as_nanos() as f64 / N as f64);
    println!("reg_write_ns {:.1}", write.as_nanos() as f64 / N as f64);
    drop(h);
    hog_latencies();
}

const HOG_BYTES: u64 = 1 << 30;
/// Bus pages the hog's 2 GiB of partition address space map onto.
const DATA_PAGES: u64 = 16 * 1024;
const DATA_BUS: u64 = 16 * MIB;

/// Partition 0 translates 2 GiB of system memory 4 KiB page by page, the
/// pages scattered so no two neighbours are contiguous on the bus.
fn hog_harness() -> Harness {
    let h = Harness::new(
        DeviceConfig {
            vram_size_bytes: 64 * MIB,
            partitions: 2,
            engines: 1,
            ..DeviceConfig::default()
        },
        (DATA_BUS + DATA_PAGES * PAGE_SIZE) as usize,
    );
    let pages = 2 * HOG_BYTES / PAGE_SIZE;
    let maps: Vec<_> = (0..pages)
        .map(|i| {
            let bus = DATA_BUS + (i.wrapping_mul(7919) % DATA_PAGES) * PAGE_SIZE;
            (i * PAGE_SIZE, bus, true)
        })
        .collect();
    let tables = 0x10_0000;
    let dir_entries = h.build_xlate(0x1000, tables, &maps);
    h.set_xlate(0, 0x1000, dir_entries);
    h.enable(0, 0, 32 * MIB, PtCtrl::new().with_xlate(true));
    h.enable(1, 32 * MIB, 32 * MIB, PtCtrl::new());
    h.set(
        RegId::WIntrMask,
        1,
        0,
        PartIntr::new().with_fence(true).into_bits() as u64,
    );
    h
}

fn start_hog(h: &Harness) {
    h.forget_rings(0);
    h.ring_in_vram(0, 0, 0, 64);
    h.submit(
        0,
        0,
        &[Command::copy(Loc::Sys(HOG_BYTES), Loc::Sys(0), HOG_BYTES)],
    );
    // Let it get going (and its TLB warm).
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        h.state(0),
        regs::PartitionState::Busy,
        "the hog finished too soon to measure anything"
    );
}

fn hog_latencies() {
    let h = hog_harness();
    let mut reset = Duration::ZERO;
    for _ in 0..ROUNDS {
        start_hog(&h);
        let t0 = Instant::now();
        h.set(RegId::PtReset, 0, 0, 1);
        reset = reset.max(t0.elapsed());
    }
    println!(
        "reset_latency_under_hog_us {:.0}",
        reset.as_secs_f64() * 1e6
    );

    let vector = regs::partition_vector_base(1);
    h.ring_in_vram(1, 0, 0, 64);
    let mut fence = Duration::ZERO;
    for round in 1..=ROUNDS {
        start_hog(&h);
        let t0 = Instant::now();
        h.submit(
            1,
            0,
            &[Command::fence(Loc::Vram(0x1000), round as u64, true)],
        );
        assert!(h.irq.wait_for(vector, round, Duration::from_secs(30)));
        fence = fence.max(t0.elapsed());
        h.set(RegId::PtReset, 0, 0, 1);
    }
    println!(
        "neighbour_fence_latency_under_hog_us {:.0}",
        fence.as_secs_f64() * 1e6
    );
    println!(
        "sched_timeslice_us {}",
        h.reg(RegId::SchedTimesliceUs, 0, 0)
    );
}
