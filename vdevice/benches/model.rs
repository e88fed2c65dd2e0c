//! `make bench`: model figures measured in one run, printed as `name value`.
//! copy_engine_vs_memcpy — COPY engine throughput for 64 MiB VRAM->VRAM
//! divided by host memcpy of the same size (goal >= 0.8);
//! reg_read_ns / reg_write_ns — register dispatch cost per access (goal < 100).

use std::hint::black_box;
use std::time::{Duration, Instant};
use vdevice::command::{Command, Loc};
use vdevice::regs::{self, PartIntr, PtCtrl, RegId, REG_BAR};
use vdevice::testing::Harness;
use vdevice::DeviceConfig;

const MIB: u64 = 1 << 20;
const COPY_BYTES: u64 = 64 * MIB;
const ROUNDS: usize = 7;

fn best(mut f: impl FnMut() -> Duration) -> Duration {
    (0..ROUNDS).map(|_| f()).min().expect("rounds")
}

fn main() {
    let h = Harness::new(
        DeviceConfig {
            vram_size_bytes: 256 * MIB,
            partitions: 1,
            engines: 1,
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
    let mut fences = 0;
    let engine = best(|| {
        fences += 1;
        let t0 = Instant::now();
        h.submit(
            0,
            0,
            &[
                Command::copy(Loc::Vram(128 * MIB), Loc::Vram(MIB), COPY_BYTES),
                Command::fence(Loc::Vram(0x1000), fences as u64, true),
            ],
        );
        assert!(h.irq.wait_for(vector, fences, Duration::from_secs(30)));
        t0.elapsed()
    });
    let src = vec![0x5au8; COPY_BYTES as usize];
    let mut dst = vec![0u8; COPY_BYTES as usize];
    let memcpy = best(|| {
        let t0 = Instant::now();
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
        t0.elapsed()
    });
    println!(
        "copy_engine_vs_memcpy {:.3}",
        memcpy.as_secs_f64() / engine.as_secs_f64()
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
}
