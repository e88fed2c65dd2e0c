//! A driver that programs garbage: random accesses of any size anywhere in
//! any BAR, random doorbells over random ring contents. The model must not
//! panic or hang, and a device reset must bring it back to its init state.

use proptest::prelude::*;
use std::time::Duration;
use vdevice::regs::{self, RegId, REG_BAR};
use vdevice::testing::Harness;
use vdevice::DeviceConfig;

const MIB: u64 = 1 << 20;

#[derive(Clone, Debug)]
enum Access {
    Read {
        bar: u8,
        offset: u64,
        size: u32,
    },
    Write {
        bar: u8,
        offset: u64,
        size: u32,
        value: u64,
    },
    /// Write a register of the table (more likely to do something).
    Reg {
        id: usize,
        instance: usize,
        elem: usize,
        value: u64,
    },
    Vram {
        offset: u64,
        bytes: Vec<u8>,
    },
}

fn access() -> impl Strategy<Value = Access> {
    let bar = prop_oneof![Just(0u8), Just(2u8), Just(4u8), any::<u8>()];
    let size = prop_oneof![Just(1u32), Just(2), Just(4), Just(8), any::<u32>()];
    let offset = prop_oneof![0u64..0x20000, 0u64..(2 * regs::REG_BAR_SIZE), any::<u64>()];
    let value = prop_oneof![any::<u64>(), 0u64..4, Just(1u64)];
    prop_oneof![
        (bar.clone(), offset.clone(), size.clone()).prop_map(|(bar, offset, size)| Access::Read {
            bar,
            offset,
            size
        }),
        (bar, offset, size, value.clone()).prop_map(|(bar, offset, size, value)| Access::Write {
            bar,
            offset,
            size,
            value
        }),
        (0..regs::REGISTERS.len(), 0usize..4, 0usize..2, value).prop_map(
            |(id, instance, elem, value)| Access::Reg {
                id,
                instance,
                elem,
                value
            }
        ),
        (0u64..64 * MIB, prop::collection::vec(any::<u8>(), 0..256))
            .prop_map(|(offset, bytes)| Access::Vram { offset, bytes }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn garbage_never_panics_and_reset_recovers(seq in prop::collection::vec(access(), 1..200)) {
        let h = Harness::new(DeviceConfig { vram_size_bytes: 64 * MIB, partitions: 3, engines: 2, ..DeviceConfig::default() }, 1 << 20);
        let init = h.dev.dump();
        for a in &seq {
            match a {
                Access::Read { bar, offset, size } => {
                    let _ = h.dev.read(*bar, *offset, *size);
                }
                Access::Write { bar, offset, size, value } => {
                    // Device reset scrubs VRAM; fine, but keep the case fast.
                    h.dev.write(*bar, *offset, *value, *size);
                }
                Access::Reg { id, instance, elem, value } => {
                    let r = &regs::REGISTERS[*id];
                    let elem = *elem % r.count as usize;
                    let off = regs::offset_of(r.id, *instance, elem);
                    h.dev.write(REG_BAR, off, *value, r.width as u32);
                }
                Access::Vram { offset, bytes } => {
                    let _ = h.dev.vram().write(*offset, bytes);
                }
            }
        }
        // Let the engines chew on whatever was queued, then reset.
        std::thread::sleep(Duration::from_millis(2));
        h.set(RegId::DeviceReset, 0, 0, 1);
        let strip = |s: &str| s.lines().filter(|l| !l.contains("TIMESTAMP")).collect::<Vec<_>>().join("\n");
        prop_assert_eq!(strip(&h.dev.dump()), strip(&init));
    }
}
