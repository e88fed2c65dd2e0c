//! Episode big: FILL / COPY / CRC32 of many MiB beside other work and unmaps.

use super::*;

/// FILL / COPY / CRC32 of many MiB on each of `vs` (two at once sometimes),
/// the bystander reading its whole slice meanwhile (three busy partitions on
/// two engines: time slices end inside commands); sometimes pinned pages
/// are unmapped under the running commands, each unmap stopping them at a
/// chunk boundary. Results must be exact.
pub fn ep_big(
    vs: &[&Vg],
    byst: Option<(&Vg, u32)>,
    c: &Container,
    e: &mut Rng,
    st: &mut Stats,
) -> Result<(), String> {
    let res = big_inner(vs, byst, c, e, st);
    // Whatever failed, the bystander is idle and the scratch pages mapped
    // again for the next episode (EEXIST for those still mapped).
    if let Some((b, _)) = byst {
        b.g.wait_settled(0, T);
    }
    for v in vs {
        for p in 0..SCRATCH_PAGES {
            let _ = c.map_dma(
                v.scratch.vaddr(p * PAGE),
                v.iova + SCRATCH_OFF + p * PAGE,
                PAGE,
            );
        }
    }
    res
}

/// The large commands started on one vGPU, and what they must produce.
pub struct Job<'a> {
    pub v: &'a Vg,
    pub crc: u32,
    pub len: u64,
    pub fence: u64,
    pub sys_copy: Option<Fill>,
    pub scratch: u32,
}

pub fn big_inner(
    vs: &[&Vg],
    byst: Option<(&Vg, u32)>,
    c: &Container,
    e: &mut Rng,
    st: &mut Stats,
) -> Result<(), String> {
    let unmaps = e.coin();
    let mut jobs = Vec::new();
    for &v in vs {
        jobs.push(start_big_job(v, unmaps, e, st)?);
    }
    if let Some((b, _)) = byst {
        let blen = b.fb - DATA;
        b.g.hw.vram_write(RES, &[0u8; 24]);
        b.start(
            &[
                Command::crc32(Loc::Vram(RES), Loc::Vram(DATA), blen),
                Command::crc32(Loc::Vram(RES + 8), Loc::Vram(DATA), blen),
                Command::fence(Loc::Vram(RES + 16), 1, false),
            ],
            false,
        );
    }
    if unmaps {
        unmap_scratch_pages(&jobs, c, e, st)?;
    }
    for j in &jobs {
        big_job_exact(j)?;
    }
    if let Some((b, crc)) = byst {
        b.settle("the bystander's CRC32s")?;
        for slot in [RES, RES + 8] {
            ensure!(
                b.vram_u64(slot) == crc as u64,
                "the bystander's VRAM changed (CRC32 {:#x}, want {crc:#x})",
                b.vram_u64(slot)
            );
        }
    }
    Ok(())
}

/// Start the large commands on `v`: a scratch FILL first when pages will be
/// unmapped, then in VRAM FILL, COPY and CRC32 of both copies, or in the
/// whole large system-memory buffer FILL, COPY in and out and CRC32 of both.
pub fn start_big_job<'a>(
    v: &'a Vg,
    unmaps: bool,
    e: &mut Rng,
    st: &mut Stats,
) -> Result<Job<'a>, String> {
    v.recover()?;
    let mut cmds = Vec::new();
    let scratch = e.pattern() | 1;
    if unmaps {
        v.scratch.fill(0, SCRATCH_PAGES * PAGE, 0);
        cmds.push(Command::fill(
            Loc::Sys(v.iova + SCRATCH_OFF),
            SCRATCH_PAGES * PAGE,
            scratch,
        ));
    }
    let p = e.pattern();
    let (a, mut sys_copy) = (DATA, None);
    let len;
    if e.coin() {
        // VRAM: FILL, COPY, CRC32 of both copies.
        let half = ((v.fb - DATA) / MIB / 2 - 1).min(48);
        len = MIB * (half / 2 + 1 + e.below(half - half / 2));
        let b = a + len;
        cmds.extend([
            Command::fill(Loc::Vram(a), len, p),
            Command::copy(Loc::Vram(b), Loc::Vram(a), len),
            Command::crc32(Loc::Vram(RES), Loc::Vram(b), len),
            Command::crc32(Loc::Vram(RES + 8), Loc::Vram(a), len),
        ]);
        st.big_mib += 4 * len / MIB;
    } else {
        // System memory, the whole large buffer: FILL it, COPY VRAM
        // into it and back out, CRC32 of both.
        len = v.big.len() as u64;
        let (sys, c) = (Loc::Sys(v.iova + BIG_OFF), a + len);
        let f = Fill {
            sys: true,
            at: v.iova + BIG_OFF,
            len,
            new: p,
            old: !p,
        };
        cmds.extend([
            Command::fill(sys, len, f.old),
            Command::fill(Loc::Vram(c), len, p),
            Command::copy(sys, Loc::Vram(c), len),
            Command::crc32(Loc::Vram(RES), sys, len),
            Command::copy(Loc::Vram(a), sys, len),
            Command::crc32(Loc::Vram(RES + 8), Loc::Vram(a), len),
        ]);
        sys_copy = Some(f);
        st.big_mib += 6 * len / MIB;
    }
    let fence = e.next() | 1;
    cmds.push(Command::fence(Loc::Vram(RES + 16), fence, true));
    v.g.hw.vram_write(RES, &[0u8; 24]);
    v.start(&cmds, e.coin());
    Ok(Job {
        v,
        crc: pattern_crc(p, len),
        len,
        fence,
        sys_copy,
        scratch,
    })
}

/// Once the scratch FILLs are done their pages are pinned and no command
/// uses them again: unmap some of them, one by one, while the large
/// commands run. Each unmap costs the running ones a stop at a chunk
/// boundary and fresh translations, nothing else.
pub fn unmap_scratch_pages(
    jobs: &[Job],
    c: &Container,
    e: &mut Rng,
    st: &mut Stats,
) -> Result<(), String> {
    for j in jobs {
        let t0 = Instant::now();
        while j.v.scratch.u32_at(SCRATCH_PAGES * PAGE - 4) != j.scratch {
            ensure!(
                t0.elapsed() < T,
                "the scratch FILL did not finish: {}",
                j.v.describe()
            );
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    for i in 0..1 + e.below(SCRATCH_PAGES) {
        std::thread::sleep(Duration::from_micros(e.below(2000)));
        let j = &jobs[i as usize % jobs.len()];
        let page = i / jobs.len() as u64;
        let busy = matches!(
            j.v.state(),
            PartitionState::Busy | PartitionState::XlateWait
        );
        c.unmap_dma(j.v.iova + SCRATCH_OFF + page * PAGE, PAGE)
            .map_err(|e| format!("UNMAP_DMA of a scratch page: {e}"))?;
        st.invalidations += 1;
        st.invalidations_busy += u64::from(busy);
    }
    Ok(())
}

/// A job's commands settle IDLE with both CRC32s, the fence and the copy
/// into system memory exact.
pub fn big_job_exact(j: &Job) -> Result<(), String> {
    j.v.settle("the large commands")?;
    for slot in [RES, RES + 8] {
        let got = j.v.vram_u64(slot);
        ensure!(
            got == j.crc as u64,
            "{}: CRC32 of {} MiB at result {:#x}: {got:#x}, want {:#x}",
            j.v.label,
            j.len / MIB,
            slot,
            j.crc
        );
    }
    ensure!(j.v.vram_u64(RES + 16) == j.fence, "{}: fence", j.v.label);
    if let Some(f) = &j.sys_copy {
        let s = j.v.shape(f);
        ensure!(all_p(&s), "{}: the copy into system memory: {s}", j.v.label);
    }
    Ok(())
}
