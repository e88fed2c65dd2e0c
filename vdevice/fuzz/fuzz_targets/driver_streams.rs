//! Fuzz the model the way a buggy or hostile driver would drive it: the
//! input is a stream of register accesses, command submissions (commands
//! built from input bytes, so they reach the engine's checks and data
//! paths), doorbells, translation-table edits, resets and fault injections
//! against two enabled partitions. The model must not panic or hang, and a
//! canary range of VRAM outside every partition's slice stays untouched
//! whatever the partitions are told to do (the isolation invariant).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use vdevice::command::{Command, Loc, COMMAND_BYTES};
use vdevice::regs::{self, Block, PtCtrl, RegId, REG_BAR};
use vdevice::testing::Harness;
use vdevice::DeviceConfig;

const MIB: u64 = 1 << 20;
/// Partition 0: [0, 4 MiB), partition 1: [4, 8 MiB); the canary is [12, 16).
const CANARY: u64 = 12 * MIB;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn u64(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..8 {
            v |= (self.u8()? as u64) << (8 * i);
        }
        Some(v)
    }
}

fn loc(sys: bool, addr: u64) -> Loc {
    if sys {
        Loc::Sys(addr)
    } else {
        Loc::Vram(addr)
    }
}

fn run(data: &[u8]) -> Option<()> {
    let h = Harness::new(
        DeviceConfig {
            vram_size_bytes: 16 * MIB,
            partitions: 2,
            engines: 1,
        },
        1 << 20,
    );
    h.enable(0, 0, 4 * MIB, PtCtrl::new());
    h.ring_in_vram(0, 0, 0, 16);
    h.ring_in_vram(0, 1, 0x1000, 16);
    let maps: Vec<(u64, u64, bool)> = (0..8)
        .map(|i| (i * 4096, 0x8_0000 + i * 4096, i % 2 == 0))
        .collect();
    let entries = h.build_xlate(0x1000, 0x2000, &maps);
    h.set_xlate(1, 0x1000, entries);
    h.enable(1, 4 * MIB, 4 * MIB, PtCtrl::new().with_xlate(true));
    h.ring_in_vram(1, 0, 0, 16);
    let mut input = Input(data);
    let mut submitted = 0;
    while let Some(op) = input.u8() {
        match op % 8 {
            0 => {
                let off = input.u64()? % (2 * regs::REG_BAR_SIZE);
                let size = [1, 2, 4, 8, 3][(input.u8()? % 5) as usize];
                let _ = h.dev.read(REG_BAR, off, size);
            }
            1 => {
                let off = input.u64()? % (2 * regs::REG_BAR_SIZE);
                let size = [1, 2, 4, 8, 3][(input.u8()? % 5) as usize];
                let value = input.u64()?;
                // The host's side stays trusted: the partition table places
                // the slices (a garbage one could legitimately cover the
                // canary; the garbage proptest covers it for panics), and a
                // device reset scrubs the canary by design.
                let host_only = matches!(regs::block_of(off), Some((Block::PartitionTable, _, _)))
                    || regs::decode(off).is_some_and(|d| d.reg.id == RegId::DeviceReset);
                if host_only {
                    continue;
                }
                h.dev.write(REG_BAR, off, value, size);
            }
            2 | 3 | 4 if submitted < 64 => {
                // A command from input bytes; partition 1 goes through its
                // translation, partition 0 uses bus addresses.
                let p = (input.u8()? % 2) as usize;
                let kind = input.u8()?;
                let (dst, src, len, value) =
                    (input.u64()?, input.u64()?, input.u64()?, input.u64()?);
                let small = |v: u64| v % (16 * MIB);
                let cmd = match kind % 8 {
                    0 => Command::copy(
                        loc(kind & 8 != 0, small(dst)),
                        loc(kind & 16 != 0, small(src)),
                        len % (2 * MIB),
                    ),
                    1 => Command::fill(
                        loc(kind & 8 != 0, small(dst)),
                        len % (2 * MIB),
                        value as u32,
                    ),
                    2 => Command::fence(loc(kind & 8 != 0, small(dst)), value, kind & 16 != 0),
                    3 => Command::sem_wait(loc(kind & 8 != 0, small(src)), value % 4),
                    4 => Command::timestamp(loc(kind & 8 != 0, small(dst))),
                    5 => Command::crc32(
                        loc(kind & 8 != 0, small(dst)),
                        loc(kind & 16 != 0, small(src)),
                        len % MIB,
                    ),
                    6 => Command::nop(),
                    _ => {
                        let mut raw = [0u8; COMMAND_BYTES];
                        raw[..8].copy_from_slice(&dst.to_le_bytes());
                        raw[8..16].copy_from_slice(&src.to_le_bytes());
                        raw[16..24].copy_from_slice(&len.to_le_bytes());
                        h.submit_raw(p, 0, &[raw]);
                        submitted += 1;
                        continue;
                    }
                };
                h.submit(p, 0, &[cmd]);
                submitted += 1;
            }
            5 => {
                // Edit partition 1's translation: remap, unmap, invalidate.
                let i = (input.u8()? % 8) as usize;
                let bus = input.u64()? % (1 << 20) & !0xfff;
                let mut m = maps.clone();
                m[i] = (m[i].0, bus, input.u8()? % 2 == 0);
                h.build_xlate(0x1000, 0x2000, &m);
                h.set(RegId::PtXlateInvalidate, 1, 0, 1);
            }
            6 => {
                let p = (input.u8()? % 2) as usize;
                match input.u8()? % 3 {
                    0 => h.set(RegId::WReset, p, 0, 1),
                    1 => h.set(RegId::PtInject, p, 0, input.u8()? as u64 % 8),
                    _ => h.set(RegId::PtReset, p, 0, 1),
                }
            }
            _ => {
                let off = CANARY - 64 + (input.u8()? as u64);
                let _ = h.dev.vram().write(off % CANARY, &[input.u8()?]);
            }
        }
    }
    // Whatever ran, nothing wrote the canary (no partition owns it).
    let deadline = std::time::Instant::now() + Duration::from_millis(200);
    while std::time::Instant::now() < deadline
        && (0..2).any(|p| h.state(p) == regs::PartitionState::Busy as u8)
    {
        std::thread::sleep(Duration::from_micros(200));
    }
    let clean = h
        .dev
        .vram()
        .with_slice(CANARY, 16 * MIB - CANARY, |c| {
            c.iter().position(|&b| b != 0)
        })
        .expect("canary inside VRAM");
    assert_eq!(clean, None, "canary written at CANARY + {clean:?}");
    Some(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
