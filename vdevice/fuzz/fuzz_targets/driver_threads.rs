//! The threaded mode of the fuzz target: the input drives two "vCPUs" at
//! once (a driver racing with itself, or a host and a tenant) while the
//! engine runs. Operations alternate between the two threads; in each
//! round both threads start their operation together (a barrier), so the
//! two accesses of a round race for real. After each round the device's
//! invariants must hold; at the end the checks of driver_streams apply.
#![no_main]

#[path = "common.rs"]
mod common;

use common::{Input, World};
use libfuzzer_sys::fuzz_target;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};

fuzz_target!(|data: &[u8]| {
    let w = World::new();
    // Split the input into two streams, one per vCPU.
    let half = data.len() / 2;
    let (a, b) = data.split_at(half);
    let barrier = Barrier::new(2);
    let submitted = Mutex::new(0u32);
    let done = [AtomicBool::new(false), AtomicBool::new(false)];
    let run = |me: usize, bytes: &[u8]| {
        let mut input = Input(bytes);
        loop {
            barrier.wait();
            if !done[me].load(Ordering::SeqCst) {
                let mut n = *submitted.lock().unwrap();
                if w.step(&mut input, &mut n).is_none() {
                    done[me].store(true, Ordering::SeqCst);
                }
                *submitted.lock().unwrap() = n;
            }
            if let Err(e) = w.h.dev.check_invariants() {
                panic!("device invariant broken: {e}");
            }
            // Both threads decide after the same barrier: neither is left
            // waiting at the next one alone.
            barrier.wait();
            if done.iter().all(|d| d.load(Ordering::SeqCst)) {
                return;
            }
        }
    };
    std::thread::scope(|s| {
        let t = s.spawn(|| run(1, b));
        run(0, a);
        t.join().unwrap();
    });
    w.finish();
});
