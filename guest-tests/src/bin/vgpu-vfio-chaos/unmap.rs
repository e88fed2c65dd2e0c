//! Episode unmap: VFIO_IOMMU_UNMAP_DMA under running commands, a canary in
//! the unmapped pages.

use super::*;

/// VFIO_IOMMU_UNMAP_DMA of pieces of a buffer that commands are writing,
/// reading or fetching their ring from. After the unmap returns those pages
/// are the VMM's alone: a canary written then must be intact at the end of
/// the episode, whatever the device did meanwhile (it goes on into other
/// memory mapped at the same addresses, is reset, or faults).
pub fn ep_unmap(
    v: &Vg,
    c: &Container,
    nth: u64,
    e: &mut Rng,
    st: &mut Stats,
) -> Result<(), String> {
    let res = unmap_inner(v, c, nth, e, st);
    // The area is unmapped between episodes, whatever happened.
    let _ = c.unmap_dma(v.iova + UNMAP_OFF, U_BYTES);
    res
}

/// One unmap episode's choices: which buffer is mapped first (`x`, the
/// other `y` mapped at the same addresses afterwards), what the commands
/// do with it, and the pieces `a..b` unmapped under them.
pub struct UnmapPlan {
    pub x: DmaBuf,
    pub y: DmaBuf,
    pub base: u64,
    /// 0 FILL into it, 1 COPY into it, 2 COPY out of it, 3 CRC32 of it,
    /// 4 the ring itself in it.
    pub kind: u64,
    /// Every page pinned before the race, so the commands run at speed.
    pub prepin: bool,
    pub a: u64,
    pub b: u64,
    pub reps: u64,
    /// The VRAM pattern the commands use.
    pub pd: u32,
}

impl UnmapPlan {
    /// Map `y`'s pieces `a..b` where `x`'s were.
    pub fn remap(&self, c: &Container) -> Result<(), String> {
        for p in self.a..self.b {
            c.map_dma(self.y.vaddr(p * PIECE), self.base + p * PIECE, PIECE)
                .map_err(|e| format!("MAP_DMA again: {e}"))?;
        }
        Ok(())
    }
}

/// Words written into `x`'s unmapped pieces right after the unmap
/// returned: the device may neither change them nor have read them.
pub struct Canary {
    pub bytes: Vec<u8>,
    pub nonce: u64,
    /// At the unmap: whether the partition was busy.
    pub busy: bool,
}

impl Canary {
    pub fn intact(&self, p: &UnmapPlan, when: &str) -> Result<(), String> {
        let mut now = vec![0u8; self.bytes.len()];
        p.x.read(p.a * PIECE, &mut now);
        let changed = now.iter().zip(&self.bytes).filter(|(p, q)| p != q).count();
        ensure!(
            changed == 0,
            "{changed} bytes of the unmapped buffer changed after UNMAP_DMA returned ({when}; pieces {}..{}, command kind {}, busy at the unmap: {})",
            p.a,
            p.b,
            p.kind,
            self.busy
        );
        Ok(())
    }
}

pub fn unmap_inner(
    v: &Vg,
    c: &Container,
    nth: u64,
    e: &mut Rng,
    st: &mut Stats,
) -> Result<(), String> {
    let p = unmap_prepare(v, c, nth, e)?;
    let cmds = unmap_start(v, &p, e, st);
    let (canary, head_before) = unmap_under_commands(v, c, &p, e, st)?;
    // Then: nothing, the VMM maps other memory there, or a reset after
    // a while (commands left running meanwhile).
    let after = e.pick(&[0, 0, 0, 1, 1, 1, 2, 3]);
    let head_after = v.rd(RegId::WRingHead, 0);
    if after >= 2 {
        std::thread::sleep(Duration::from_micros(e.below(2000)));
    }
    match after {
        0 => {}
        1 => p.remap(c)?,
        2 => {
            p.remap(c)?;
            v.g.hw
                .dev
                .reset()
                .map_err(|e| format!("VFIO_DEVICE_RESET: {e}"))?;
        }
        _ => {
            v.wr(RegId::WReset, 0, 1);
            p.remap(c)?;
        }
    }
    let s = v.g.wait_settled(0, T);
    trace(|| {
        format!(
            "  unmap: kind {} prepin {} reps {} pieces {}..{} busy {} \
             HEAD {head_before} -> {head_after} of {}, then {after}: {}",
            p.kind,
            p.prepin,
            p.reps,
            p.a,
            p.b,
            canary.busy,
            cmds,
            v.describe()
        )
    });
    ensure!(
        s == PartitionState::Idle
            || (s == PartitionState::Faulted && v.fault() == FaultCode::XlateCancelled),
        "after the unmap: {}",
        v.describe()
    );
    std::thread::sleep(Duration::from_millis(5));
    canary.intact(&p, "the commands settled")?;
    if p.kind == 2 {
        nothing_read_after_unmap(v, &p, &canary)?;
    }
    remapped_memory_works(v, c, &p, after == 0, e)?;
    canary.intact(&p, "after DMA to the re-mapped addresses")
}

/// Map `x` in pieces, give both buffers patterns, choose what the commands
/// do, and prepare VRAM (and, with `prepin`, every page of the buffer).
pub fn unmap_prepare(v: &Vg, c: &Container, nth: u64, e: &mut Rng) -> Result<UnmapPlan, String> {
    v.recover()?;
    let xi = e.below(2) as usize;
    let (x, y) = (v.ubuf[xi], v.ubuf[1 - xi]);
    let base = v.iova + UNMAP_OFF;
    for p in 0..PIECES {
        c.map_dma(x.vaddr(p * PIECE), base + p * PIECE, PIECE)
            .map_err(|e| format!("MAP_DMA: {e}"))?;
    }
    x.fill(0, U_BYTES, e.pattern());
    y.fill(0, U_BYTES, e.pattern());
    let kind = nth % 5;
    let prepin = e.below(3) != 0;
    let a = e.below(PIECES);
    let b = a + 1 + e.below(PIECES - a);
    let reps = if prepin {
        4 + e.below(26)
    } else {
        1 + e.below(2)
    };
    let pd = e.pattern();
    v.run(&[Command::fill(Loc::Vram(DATA), U_BYTES, pd)])?;
    if prepin {
        let q = e.pattern();
        v.run(&[Command::fill(Loc::Sys(base), U_BYTES, q)])?;
    }
    Ok(UnmapPlan {
        x,
        y,
        base,
        kind,
        prepin,
        a,
        b,
        reps,
        pd,
    })
}

/// Start the commands on the buffer (from a VRAM ring, or for kind 4 from
/// a ring in the buffer itself), sometimes after a pause or with a doorbell
/// rewind. Returns how many commands there are.
pub fn unmap_start(v: &Vg, p: &UnmapPlan, e: &mut Rng, st: &mut Stats) -> usize {
    let sys = Loc::Sys(p.base);
    let mut cmds = Vec::new();
    for _ in 0..p.reps {
        cmds.push(match p.kind {
            0 => Command::fill(sys, U_BYTES, p.pd ^ 0x5a5a_5a5a),
            1 => Command::copy(sys, Loc::Vram(DATA), U_BYTES),
            2 => Command::copy(Loc::Vram(DATA + U_BYTES), sys, U_BYTES),
            3 => Command::crc32(Loc::Vram(RES), sys, U_BYTES),
            _ => Command::fill(Loc::Vram(DATA), MIB, p.pd),
        });
        if p.prepin {
            // Long VRAM work in between: the partition is still busy
            // when the unmap comes, with commands on the buffer to go.
            let len = MIB * (1 + e.below(8));
            cmds.push(Command::fill(Loc::Vram(DATA + 2 * U_BYTES), len, p.pd));
        }
    }
    cmds.push(Command::fence(Loc::Vram(RES + 8), 1, true));
    let mmap = e.coin();
    if p.kind == 4 {
        // The ring itself in the pieces to go; the memory mapped there
        // afterwards holds the same commands (a VMM that moved it).
        let off = p.a * PIECE;
        for buf in [p.x, p.y] {
            for (i, cmd) in cmds.iter().enumerate() {
                buf.write(off + (i * COMMAND_BYTES) as u64, &cmd.encode());
            }
        }
        v.configure_ring(0, p.base + off, true);
        v.doorbell(0, cmds.len() as u64, mmap);
    } else {
        v.start(&cmds, mmap);
    }
    if e.below(4) == 0 {
        std::thread::sleep(Duration::from_micros(e.below(1000)));
    }
    if e.below(3) == 0 {
        // The old attack: a rewind made a busy partition read IDLE, and
        // the host unpinned what the engine kept writing.
        let head = v.rd(RegId::WRingHead, 0);
        v.doorbell(0, head, e.coin());
        st.rewinds += 1;
    }
    cmds.len()
}

/// UNMAP_DMA of pieces `a..b` under the running commands, then the canary
/// into them at once. Returns it and RING_HEAD just before the unmap.
pub fn unmap_under_commands(
    v: &Vg,
    c: &Container,
    p: &UnmapPlan,
    e: &mut Rng,
    st: &mut Stats,
) -> Result<(Canary, u64), String> {
    let busy = matches!(v.state(), PartitionState::Busy | PartitionState::XlateWait);
    let head_before = v.rd(RegId::WRingHead, 0);
    c.unmap_dma(p.base + p.a * PIECE, (p.b - p.a) * PIECE)
        .map_err(|e| format!("UNMAP_DMA under running commands: {e}"))?;
    let nonce = e.next();
    let bytes: Vec<u8> = (p.a * PIECE..p.b * PIECE)
        .step_by(8)
        .flat_map(|o| (nonce ^ o).to_le_bytes())
        .collect();
    p.x.write(p.a * PIECE, &bytes);
    st.unmaps += 1;
    st.unmaps_busy += u64::from(busy);
    Ok((Canary { bytes, nonce, busy }, head_before))
}

/// Nothing read the pages after the unmap either: no canary word in what
/// the copies out of the buffer wrote.
pub fn nothing_read_after_unmap(v: &Vg, p: &UnmapPlan, canary: &Canary) -> Result<(), String> {
    let mut got = vec![0u8; U_BYTES as usize];
    v.g.hw.vram_read(DATA + U_BYTES, &mut got);
    let leaked = got
        .chunks(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap()) ^ canary.nonce)
        .filter(|o| (p.a * PIECE..p.b * PIECE).contains(o) && o % 8 == 0)
        .count();
    ensure!(
        leaked == 0,
        "{leaked} words of the unmapped buffer were read after UNMAP_DMA returned"
    );
    Ok(())
}

/// The memory mapped at those addresses now works, and only it is used: a
/// FILL of the whole area lands in `x` outside `a..b` and in `y` inside.
pub fn remapped_memory_works(
    v: &Vg,
    c: &Container,
    p: &UnmapPlan,
    remap: bool,
    e: &mut Rng,
) -> Result<(), String> {
    v.recover()?;
    if remap {
        p.remap(c)?;
    }
    let sys = Loc::Sys(p.base);
    let p2 = e.pattern();
    v.run(&[
        Command::fill(sys, U_BYTES, p2),
        Command::crc32(Loc::Vram(RES), sys, U_BYTES),
    ])?;
    ensure!(
        v.vram_u64(RES) == pattern_crc(p2, U_BYTES) as u64,
        "CRC32 of the re-mapped buffer"
    );
    let (a, b) = (p.a, p.b);
    let stale = p.x.count_not(0, a * PIECE, p2)
        + p.x.count_not(b * PIECE, U_BYTES - b * PIECE, p2)
        + p.y.count_not(a * PIECE, (b - a) * PIECE, p2);
    ensure!(stale == 0, "{stale} words of the mapped memory not filled");
    Ok(())
}
