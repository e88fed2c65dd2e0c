//! vgpu-mig-test: VFIO migration v2 of mdev vGPUs in L1, as a VMM drives it
//! (`make test-host`). Two vGPUs of one type (A, the source; B, the
//! destination) and one of another size (C) in one container: A saves its
//! state with work queued behind a semaphore wait, B takes it and runs the
//! work once, with and without a pre-copy while A's engine writes VRAM; a
//! cancelled save and pre-copy, a corrupted, a cut and a wrong-type stream,
//! and a destination closed while resuming each fail with a reason and leave
//! the vGPUs usable.
//!
//! Usage: vgpu-mig-test [--only SUBSTRING]... Prints `ok`/`FAIL` per check
//! and `bench` lines; exit status 1 if a check failed. With `--only`, only
//! the checks whose names contain one of the substrings run (in table
//! order), e.g. for `make test-trace`, which traces one migration.

use vgpu_guest_tests::migration::{
    cancelled, close_while_resuming, corrupted, dma_logging, driver, migrates, offered, other_type,
    precopy_cancelled, precopy_info_refused, precopy_migrates, Mig, DMA_BYTES, IOVA,
};
use vgpu_guest_tests::vfio::{Container, DmaBuf, VfioVgpu};
use vgpu_guest_tests::vgpu::{fatal, framebuffer_bytes};
use vgpu_guest_tests::{Check, Report};
use vgpuctl::{Gpu, Vgpu, VgpuType};

const UUID_A: &str = "0a0a0a0a-0000-4000-8000-0000000000a1";
const UUID_B: &str = "0b0b0b0b-0000-4000-8000-0000000000b1";
const UUID_C: &str = "0c0c0c0c-0000-4000-8000-0000000000c1";

/// A destination closed while resuming: its data fd fails, the vGPU goes.
fn closed_while_resuming(m: &mut Mig) -> Result<String, String> {
    close_while_resuming(m.c.take().ok_or("no vGPU C")?)?;
    Vgpu::destroy(UUID_C).map_err(|e| format!("remove C: {e}"))?;
    Ok(String::new())
}

const CHECKS: &[Check<Mig>] = &[
    Check {
        name: "migration: offered (STOP_COPY, P2P, PRE_COPY), RUNNING at open, its data size",
        run: offered,
    },
    Check {
        name: "migration: DMA logging reports exactly the pages the vGPU wrote, once",
        run: dma_logging,
    },
    Check {
        name: "migration: a save abandoned in STOP_COPY leaves the source running",
        run: cancelled,
    },
    Check {
        name: "migration: work queued behind a semaphore and VRAM move to B and run there once",
        run: migrates,
    },
    Check {
        name: "migration: pre-copy while A's engine writes VRAM; B gets A's VRAM exactly and runs its work once",
        run: precopy_migrates,
    },
    Check {
        name: "migration: a pre-copy cancelled back to RUNNING leaves the source running",
        run: precopy_cancelled,
    },
    Check {
        name: "migration: PRECOPY_INFO outside PRE_COPY or with a short argsz is refused",
        run: precopy_info_refused,
    },
    Check {
        name: "migration: corrupted, cut and foreign streams are refused; B recovers by reset",
        run: corrupted,
    },
    Check {
        name: "migration: a stream of another vGPU type is refused",
        run: other_type,
    },
    Check {
        name: "migration: a destination closed while resuming is removed cleanly",
        run: closed_while_resuming,
    },
];

/// Two types of different sizes: the one with most instances for A and B.
fn pick(gpu: &Gpu) -> Result<(VgpuType, VgpuType), String> {
    let types = gpu.types().map_err(|e| e.to_string())?;
    let ab = types
        .iter()
        .filter(|t| t.available >= 2)
        .max_by_key(|t| t.available)
        .ok_or("no type with room for two vGPUs")?
        .clone();
    let c = types
        .iter()
        .find(|t| framebuffer_bytes(t) != framebuffer_bytes(&ab) && t.available >= 1)
        .ok_or("no type of another size")?
        .clone();
    Ok((ab, c))
}

/// The checks `--only` selects (all of them without it); usage errors
/// exit with status 2.
fn selected() -> Vec<Check<Mig>> {
    let usage = || -> ! {
        eprintln!("usage: vgpu-mig-test [--only SUBSTRING]...");
        std::process::exit(2)
    };
    let mut only = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--only", Some(s)) => only.push(s),
            _ => usage(),
        }
    }
    let checks: Vec<Check<Mig>> = CHECKS
        .iter()
        .filter(|c| only.is_empty() || only.iter().any(|s| c.name.contains(s.as_str())))
        .map(|c| Check {
            name: c.name,
            run: c.run,
        })
        .collect();
    if checks.is_empty() {
        eprintln!("vgpu-mig-test: no check's name contains any of {only:?}");
        usage();
    }
    checks
}

fn main() {
    let checks = selected();
    let mut r = Report::default();
    let gpu = Gpu::find(None).unwrap_or_else(|e| fatal(format!("find an mdev parent: {e}")));
    let (ab, c) = pick(&gpu).unwrap_or_else(|e| fatal(e));
    for (u, t) in [(UUID_A, &ab), (UUID_B, &ab), (UUID_C, &c)] {
        gpu.create(&t.id, u)
            .unwrap_or_else(|e| fatal(format!("create {u} of {}: {e}", t.id)));
    }
    let container = Container::open().unwrap_or_else(|e| fatal(format!("/dev/vfio/vfio: {e}")));
    let dma = DmaBuf::new(DMA_BYTES).unwrap_or_else(|e| fatal(e));
    let open = |uuid, first| {
        VfioVgpu::open(&container, uuid, first, dma, IOVA).map(|(hw, gf)| (driver(hw), gf))
    };
    let opened = (|| {
        let (a, ga) = open(UUID_A, true)?;
        container
            .map_dma(dma.vaddr(0), IOVA, DMA_BYTES as u64)
            .map_err(|e| format!("map DMA: {e}"))?;
        let (b, gb) = open(UUID_B, false)?;
        let (c, gc) = open(UUID_C, false)?;
        Ok::<_, String>((a, b, c, vec![ga, gb, gc]))
    })();
    let (a, b, c, groups) = opened.unwrap_or_else(|e| fatal(format!("open the vGPUs: {e}")));
    let mut m = Mig {
        a,
        b,
        c: Some(c),
        dma,
        stream: Vec::new(),
        bench: "mig_l1",
        container,
        groups,
    };
    r.run(&mut m, &checks);
    let Mig { a, b, .. } = m;
    drop((a, b));
    for u in [UUID_A, UUID_B] {
        if let Err(e) = Vgpu::destroy(u) {
            r.check("remove the test vGPUs", || Err(format!("{u}: {e}")));
        }
    }
    std::process::exit(r.finish());
}
