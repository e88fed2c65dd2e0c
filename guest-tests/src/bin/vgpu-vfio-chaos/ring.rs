//! Episode ring: doorbell rewinds and ring writes under running commands.

use super::*;

/// Doorbell rewinds and ring reconfiguration while the ring's commands run.
/// The stream is idempotent and stored at two ring bases, so that whatever
/// the device accepts (it may accept a write once the ring is empty) the
/// commands run from slot 0 or from HEAD: the targets done always form a
/// prefix of the stream, and none is half done.
pub fn ep_ring(v: &Vg, nth: u64, e: &mut Rng, st: &mut Stats) -> Result<(), String> {
    v.recover()?;
    let ring = e.below(2) as usize;
    let sys_ring = nth % 3 == 2;
    let bases = (
        v.ring_base(ring, 0, sys_ring),
        v.ring_base(ring, 1, sys_ring),
    );
    let (fills, guard) = ring_targets(v, e)?;

    let mut cmds: Vec<Command> = fills.iter().map(Fill::cmd).collect();
    let c = fills[e.below(fills.len() as u64) as usize];
    cmds.push(Command::crc32(Loc::Vram(RES), c.loc(), c.len));
    let fence = e.next() | 1;
    cmds.push(Command::fence(Loc::Vram(RES + 8), fence, e.coin()));
    let count = cmds.len() as u64;
    v.configure_ring(ring, bases.0, sys_ring);
    v.put(bases.0, sys_ring, &cmds);
    v.put(bases.1, sys_ring, &cmds);
    v.doorbell(ring, count, e.coin());
    // Until the first command is under way (its first word landed).
    let t0 = Instant::now();
    let f0 = fills[0];
    while v.word(f0.sys, f0.at) != f0.new && v.state() != PartitionState::Idle && t0.elapsed() < T {
        std::thread::sleep(Duration::from_micros(50));
    }
    hostile_ring_writes(v, ring, bases, sys_ring, count, e, st);
    ring_outcome_holds(v, ring, &fills, guard)?;
    st.refused_ring_writes += v.rd(RegId::WAccessErrors, 0);

    // All of it once more from a fresh ring: exact results.
    v.configure_ring(ring, bases.0, sys_ring);
    v.doorbell(ring, count, false);
    v.settle("the stream again")?;
    for (i, f) in fills.iter().enumerate() {
        let s = v.shape(f);
        ensure!(all_p(&s), "target {i} after the stream ran again: {s}");
    }
    let crc = v.vram_u64(RES);
    ensure!(
        crc == pattern_crc(c.new, c.len) as u64,
        "CRC32 of {} MiB: {crc:#x}, want {:#x}",
        c.len / MIB,
        pattern_crc(c.new, c.len)
    );
    ensure!(v.vram_u64(RES + 8) == fence, "fence value");
    Ok(())
}

/// The ring episode's FILL targets (one to three in VRAM, sometimes one in
/// the large system-memory buffer), set to their old pattern, each VRAM one
/// followed by a guard holding the returned pattern.
pub fn ring_targets(v: &Vg, e: &mut Rng) -> Result<(Vec<Fill>, u32), String> {
    let n = 1 + e.below(3);
    let per = ((v.fb - DATA) / MIB / n - 1).clamp(1, 24);
    let mut fills = Vec::new();
    let mut at = DATA;
    for _ in 0..n {
        let len = MIB * (1 + e.below(per));
        fills.push(Fill::new(false, at, len, e));
        at += len + MIB;
    }
    if e.below(3) == 0 {
        let len = MIB * (1 + e.below(v.big.len() as u64 / MIB));
        let pos = e.below(fills.len() as u64 + 1) as usize;
        fills.insert(pos, Fill::new(true, v.iova + BIG_OFF, len, e));
    }
    let guard = e.pattern();
    let mut prep = Vec::new();
    for f in &fills {
        if f.sys {
            v.big.fill(0, f.len, f.old);
        } else {
            prep.push(Command::fill(Loc::Vram(f.at), f.len, f.old));
            prep.push(Command::fill(Loc::Vram(f.at + f.len), GUARD, guard));
        }
    }
    v.g.hw.vram_write(RES, &[0u8; 16]);
    v.run(&prep)?;
    Ok((fills, guard))
}

/// The hostile VMM's writes while the ring's commands run: rewinds of the
/// doorbell onto HEAD, the doorbell to the end again, RING_SIZE,
/// RING_BASE (either copy of the stream) and RING_CTRL writes, pauses.
pub fn hostile_ring_writes(
    v: &Vg,
    ring: usize,
    (b1, b2): (u64, u64),
    sys_ring: bool,
    count: u64,
    e: &mut Rng,
    st: &mut Stats,
) {
    for _ in 0..2 + e.below(7) {
        match e.below(9) {
            0..=2 => {
                let head = v.rd(RegId::WRingHead, ring);
                v.doorbell(ring, head, e.coin());
                st.rewinds += 1;
            }
            3 => v.doorbell(ring, count, e.coin()),
            4 => v.wr(RegId::WRingSize, ring, 0),
            5 => v.wr(RegId::WRingSize, ring, ENTRIES as u64),
            6 => v.wr(RegId::WRingBase, ring, if e.coin() { b1 } else { b2 }),
            7 => {
                v.wr(RegId::WRingCtrl, ring, u64::from(!sys_ring));
                v.wr(RegId::WRingCtrl, ring, u64::from(sys_ring));
            }
            _ => std::thread::sleep(Duration::from_micros(e.below(1500))),
        }
    }
}

/// After the hostile writes the partition settles IDLE with an empty ring;
/// each target is done or untouched, the done ones a prefix of the stream;
/// nothing moves once IDLE; the guards are intact.
pub fn ring_outcome_holds(v: &Vg, ring: usize, fills: &[Fill], guard: u32) -> Result<(), String> {
    v.settle("after the ring writes")?;
    let (head, tail) = (v.rd(RegId::WRingHead, ring), v.rd(RegId::WRingTail, ring));
    ensure!(
        head == tail,
        "PartitionState::Idle with HEAD {head} TAIL {tail}"
    );
    let before: Vec<String> = fills.iter().map(|f| v.shape(f)).collect();
    for (i, s) in before.iter().enumerate() {
        ensure!(
            all_p(s) || s.chars().all(|c| c == 'Q'),
            "target {i} half done ({s}): a command was cut short or ran twice at once; all: {before:?}"
        );
    }
    let done: Vec<bool> = before.iter().map(|s| all_p(s)).collect();
    ensure!(
        !done.windows(2).any(|w| !w[0] && w[1]),
        "commands done out of ring order: {before:?}"
    );
    // IDLE means idle: nothing moves afterwards.
    std::thread::sleep(Duration::from_millis(10));
    let after: Vec<String> = fills.iter().map(|f| v.shape(f)).collect();
    ensure!(
        after == before,
        "targets changed after the partition read PartitionState::Idle: {before:?} -> {after:?}"
    );
    for f in fills.iter().filter(|f| !f.sys) {
        let g = Fill {
            at: f.at + f.len,
            len: GUARD,
            new: guard,
            old: !guard,
            sys: false,
        };
        let s = v.shape(&g);
        ensure!(all_p(&s), "the guard after target {:#x} changed", f.at);
    }
    Ok(())
}
