//! Episode reset: VFIO and window resets racing completions.

use super::*;

/// A reset at a seeded point of a stream of FILLs and fences with
/// interrupts: once it returns, the rings, fence value and statistics are
/// reset and stay so, the FILL it cut short keeps the chunks done (a
/// prefix), and nothing moves any more.
pub fn ep_reset(v: &Vg, nth: u64, e: &mut Rng, st: &mut Stats) -> Result<(), String> {
    if nth % 3 == 2 {
        return reset_storm(v, e, st);
    }
    let fills = start_reset_stream(v, e)?;
    reset_at_seeded_point(v, e)?;
    window_is_reset(v, "right after the reset")?;
    let (shapes, words) = reset_snapshot(v, &fills);
    for (i, s) in shapes.iter().enumerate() {
        ensure!(
            is_prefix(s),
            "FILL {i} after the reset: {s} (not a prefix of whole chunks)"
        );
    }
    ensure!(
        (words[1] != 2 || all_p(&shapes[0]))
            && (words[2] != 3 || all_p(&shapes[1]))
            && (!shapes[1].contains('P') || words[1] == 2)
            && (!shapes[0].contains('P') || words[0] == 1),
        "out of ring order: fences {words:?}, targets {shapes:?}"
    );
    st.resets += 1;
    st.resets_mid_command += u64::from(shapes.iter().any(|s| s.contains('P') && s.contains('Q')));
    std::thread::sleep(Duration::from_millis(20));
    window_is_reset(v, "20 ms after the reset")?;
    let later = reset_snapshot(v, &fills);
    ensure!(
        later == (shapes.clone(), words.clone()),
        "memory changed after the reset returned: {shapes:?} {words:?} -> {later:?}"
    );
    works_with_interrupt(v)
}

/// Start the stream the reset cuts: fences with interrupts around a FILL
/// in VRAM and one in system memory (in a seeded order) and a CRC32.
/// Returns the two FILLs, their targets holding the old patterns.
pub fn start_reset_stream(v: &Vg, e: &mut Rng) -> Result<[Fill; 2], String> {
    v.recover()?;
    v.wr(RegId::WIntrMask, 0, intr_all());
    let vlen = MIB * (4 + e.below(((v.fb - DATA) / MIB - 4).min(28)));
    let slen = MIB * (1 + e.below(v.big.len() as u64 / MIB));
    let mut fills = [
        Fill::new(false, DATA, vlen, e),
        Fill::new(true, v.iova + BIG_OFF, slen, e),
    ];
    if e.coin() {
        fills.swap(0, 1);
    }
    v.run(&[Command::fill(
        Loc::Vram(DATA),
        vlen,
        fills.iter().find(|f| !f.sys).unwrap().old,
    )])?;
    v.big
        .fill(0, slen, fills.iter().find(|f| f.sys).unwrap().old);
    v.g.hw.vram_write(RES, &[0u8; 48]);
    let cmds = [
        Command::fence(Loc::Vram(RES), 1, true),
        fills[0].cmd(),
        Command::fence(Loc::Vram(RES + 8), 2, true),
        fills[1].cmd(),
        Command::fence(Loc::Vram(RES + 16), 3, true),
        Command::crc32(Loc::Vram(RES + 24), fills[0].loc(), fills[0].len),
        Command::fence(Loc::Vram(RES + 32), 4, true),
    ];
    v.start(&cmds, e.coin());
    Ok(fills)
}

/// At once, after a seeded number of fences, or after a seeded pause:
/// VFIO_DEVICE_RESET, the window's RESET, or both.
pub fn reset_at_seeded_point(v: &Vg, e: &mut Rng) -> Result<(), String> {
    match e.below(3) {
        0 => {}
        1 => {
            let k = 1 + e.below(4);
            let t0 = Instant::now();
            while v.rd(RegId::WFenceValue, 0) < k
                && v.state() == PartitionState::Busy
                && t0.elapsed() < T
            {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        _ => std::thread::sleep(Duration::from_micros(e.below(4000))),
    }
    let vfio_reset = || {
        v.g.hw
            .dev
            .reset()
            .map_err(|e| format!("VFIO_DEVICE_RESET: {e}"))
    };
    match e.below(3) {
        0 => vfio_reset()?,
        1 => v.wr(RegId::WReset, 0, 1),
        _ => {
            v.wr(RegId::WReset, 0, 1);
            vfio_reset()?;
        }
    }
    Ok(())
}

/// The window reads as reset: IDLE, and the fence value, statistics, ring
/// and fault registers 0.
pub fn window_is_reset(v: &Vg, when: &str) -> Result<(), String> {
    let vals = [
        ("FENCE_VALUE", v.rd(RegId::WFenceValue, 0)),
        ("STAT_COMMANDS", v.rd(RegId::WStatCommands, 0)),
        ("STAT_BYTES", v.rd(RegId::WStatBytes, 0)),
        ("RING_HEAD", v.rd(RegId::WRingHead, 0)),
        ("RING_TAIL", v.rd(RegId::WRingTail, 0)),
        ("RING_SIZE", v.rd(RegId::WRingSize, 0)),
        ("FAULT_STATUS", v.rd(RegId::WFaultStatus, 0)),
    ];
    ensure!(
        v.state() == PartitionState::Idle,
        "{when}: {}",
        v.describe()
    );
    for (name, val) in vals {
        ensure!(val == 0, "{when}: {name} = {val:#x}");
    }
    Ok(())
}

/// The FILL targets' shapes and the five result words of the stream.
pub fn reset_snapshot(v: &Vg, fills: &[Fill; 2]) -> (Vec<String>, Vec<u64>) {
    let shapes: Vec<String> = fills.iter().map(|f| v.shape(f)).collect();
    let words: Vec<u64> = (0..5).map(|i| v.vram_u64(RES + 8 * i)).collect();
    (shapes, words)
}

/// After a reset: a fence with an interrupt completes and signals the
/// engine vector's eventfd.
pub fn works_with_interrupt(v: &Vg) -> Result<(), String> {
    v.drain();
    v.wr(RegId::WIntrMask, 0, intr_all());
    v.run(&[Command::fence(Loc::Vram(RES + 40), 77, true)])?;
    ensure!(v.vram_u64(RES + 40) == 77, "fence after the reset");
    ensure!(
        v.efd[0].wait(TIMEOUT_MS) >= 1,
        "no interrupt after the reset"
    );
    Ok(())
}

/// Resets from a second thread (VFIO_DEVICE_RESET and window RESET through
/// another fd) while the VMM thread keeps restarting its ring with FILLs
/// and fences that interrupt.
pub fn reset_storm(v: &Vg, e: &mut Rng, st: &mut Stats) -> Result<(), String> {
    v.recover()?;
    let plan: Vec<(u64, bool)> = (0..3 + e.below(6))
        .map(|_| (200 + e.below(3000), e.coin()))
        .collect();
    let iters = 20 + e.below(40);
    let mmap = e.coin();
    let pattern = e.pattern();
    let other =
        v.g.hw
            .dev
            .try_clone()
            .map_err(|e| format!("dup the device fd: {e}"))?;
    let reset_at = v.g.hw.bar0.offset + regs::window_offset(RegId::WReset, 0);
    let n = plan.len() as u64;
    let errors = std::thread::scope(|s| {
        let h = s.spawn(move || {
            let mut errors = Vec::new();
            for (us, vfio_reset) in plan {
                std::thread::sleep(Duration::from_micros(us));
                let r = if vfio_reset {
                    other.reset()
                } else {
                    other.pwrite_raw(reset_at, &1u32.to_le_bytes()).map(|_| ())
                };
                if let Err(e) = r {
                    errors.push(e.to_string());
                }
            }
            errors
        });
        for i in 0..iters {
            v.wr(RegId::WIntrMask, 0, intr_all());
            v.start(
                &[
                    Command::fill(Loc::Vram(DATA), MIB * (1 + i % 4), pattern),
                    Command::fence(Loc::Vram(RES), i + 1, true),
                    Command::fill(Loc::Vram(DATA + 4 * MIB), MIB, pattern),
                    Command::fence(Loc::Vram(RES + 8), i + 1, true),
                ],
                mmap,
            );
            for _ in 0..3 {
                v.drain();
                std::hint::black_box(v.state());
            }
        }
        h.join()
            .unwrap_or_else(|_| vec!["the reset thread died".into()])
    });
    ensure!(errors.is_empty(), "resets failed: {errors:?}");
    st.storm_resets += n;
    let s = v.g.wait_settled(0, T);
    ensure!(
        s == PartitionState::Idle,
        "after {n} resets racing {iters} submissions: {}",
        v.describe()
    );
    v.recover()?;
    let quiet = [RegId::WFenceValue, RegId::WStatCommands, RegId::WRingSize];
    std::thread::sleep(Duration::from_millis(10));
    for id in quiet {
        ensure!(
            v.rd(id, 0) == 0,
            "{:?} = {:#x} 10 ms after a reset",
            id,
            v.rd(id, 0)
        );
    }
    works_with_interrupt(v)
}
