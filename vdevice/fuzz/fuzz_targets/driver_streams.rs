//! Fuzz the model the way a buggy or hostile driver would drive it, from
//! one vCPU: the input is a stream of operations (common.rs) against two
//! enabled partitions. The model must not panic (on any thread) or hang,
//! the VRAM canary outside every slice stays untouched, no page stays
//! written after its unmap returned, and the device's invariants hold.
#![no_main]

#[path = "common.rs"]
mod common;

use common::{Input, World};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let w = World::new();
    let mut input = Input(data);
    let mut submitted = 0;
    while w.step(&mut input, &mut submitted).is_some() {}
    w.finish();
});
