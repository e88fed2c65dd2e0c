//! vgpu-types-test: runtime-defined vGPU types in mdev mode (L1, host
//! tier). Runs as root with vgpu_rm and vgpu_vfio loaded, no vGPU existing
//! and configfs mounted: defines two types of sizes that are not powers of
//! two through configfs, creates mdevs of both, fragments the VRAM on
//! purpose and checks that every type's available_instances is what really
//! fits (computed independently from the RM's slice map, and proven by
//! creating that many), refuses bad input with an errno and a kernel
//! message while losing nothing, and removes the types again.
//!
//! Usage: vgpu-types-test (no arguments)

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use vgpu_guest_tests::vgpu::{fatal, framebuffer_bytes, max_instances};
use vgpu_guest_tests::{ensure, Check, Report};
use vgpuctl::{Gpu, Vgpu};

const CONFIGFS: &str = "/sys/kernel/config/vgpu";
/// The runtime types: (name, framebuffer, max_instances, weight).
const SMALL: (&str, &str, u32, u32) = ("rt-48M", "48M", 5, 12);
const LARGE: (&str, &str, u32, u32) = ("rt-96M", "96M", 2, 24);
const MIB: u64 = 1 << 20;
/// The RM's slice granule: VRAM_BASE and VRAM_SIZE are multiples of it.
const GRANULE: u64 = 64 << 10;

struct Ctx {
    gpu: Gpu,
    /// /sys/kernel/config/vgpu/<PF>
    dir: PathBuf,
    /// vGPUs made, by UUID and mdev type.
    made: Vec<(String, String)>,
    serial: u32,
}

impl Ctx {
    fn type_dir(&self, name: &str) -> PathBuf {
        self.dir.join("types").join(name)
    }

    fn mdev_type(name: &str) -> String {
        format!("vgpu_rm-{name}")
    }

    fn create(&mut self, mdev_type: &str) -> Result<String, String> {
        self.serial += 1;
        let u = format!("7e7e7e7e-0000-4000-8000-{:012x}", self.serial);
        self.gpu.create(mdev_type, &u).map_err(|e| e.to_string())?;
        self.made.push((u.clone(), mdev_type.to_string()));
        Ok(u)
    }

    fn destroy(&mut self, u: &str) -> Result<(), String> {
        Vgpu::destroy(u).map_err(|e| e.to_string())?;
        self.made.retain(|(m, _)| m != u);
        Ok(())
    }

    fn destroy_all(&mut self) -> Result<(), String> {
        for (u, _) in std::mem::take(&mut self.made) {
            Vgpu::destroy(&u).map_err(|e| format!("destroy {u}: {e}"))?;
        }
        Ok(())
    }

    fn available(&self, mdev_type: &str) -> Result<u32, String> {
        Ok(self
            .gpu
            .find_type(mdev_type)
            .map_err(|e| e.to_string())?
            .available)
    }
}

/// An errno, by name in the transcript.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Errno {
    Einval,
    Ebusy,
    Eexist,
    Enoent,
    Enodev,
    Eopnotsupp,
    Other(i32),
}

impl From<io::Error> for Errno {
    fn from(e: io::Error) -> Self {
        match e.raw_os_error().unwrap_or(0) {
            libc::EINVAL => Errno::Einval,
            libc::EBUSY => Errno::Ebusy,
            libc::EEXIST => Errno::Eexist,
            libc::ENOENT => Errno::Enoent,
            libc::ENODEV => Errno::Enodev,
            libc::EOPNOTSUPP => Errno::Eopnotsupp,
            n => Errno::Other(n),
        }
    }
}

/// Write `v` to `p`; the errno on failure.
fn write(p: &Path, v: &str) -> Result<(), Errno> {
    fs::write(p, v).map_err(Errno::from)
}

fn mkdir(p: &Path) -> Result<(), Errno> {
    fs::create_dir(p).map_err(Errno::from)
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default().trim().to_string()
}

/// The last kernel message.
fn last_kmsg() -> String {
    Command::new("dmesg")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .last()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}

/// `what` must be refused with `kind`, and the kernel must say why in a
/// message containing `says`.
fn refused(what: &str, r: Result<(), Errno>, kind: Errno, says: &str) -> Result<String, String> {
    match r {
        Ok(()) => Err(format!("{what}: accepted")),
        Err(k) if k != kind => Err(format!("{what}: {k:?}, want {kind:?}")),
        Err(_) => {
            let msg = last_kmsg();
            ensure!(
                says.is_empty() || msg.contains(says),
                "{what}: kernel said {msg:?}, want {says:?}"
            );
            Ok(format!("{what}: {kind:?}"))
        }
    }
}

/// Define a type through configfs and enable it.
fn define(c: &Ctx, (name, fb, max, weight): (&str, &str, u32, u32)) -> Result<(), String> {
    let d = c.type_dir(name);
    fs::create_dir(&d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
    for (attr, v) in [
        ("framebuffer", fb.to_string()),
        ("max_instances", max.to_string()),
        ("weight", weight.to_string()),
        ("enable", "1".to_string()),
    ] {
        write(&d.join(attr), &v).map_err(|k| format!("{name}/{attr} = {v}: {k:?}"))?;
    }
    Ok(())
}

// ---- the checks -------------------------------------------------------------

/// Two types of sizes that are not powers of two appear as mdev types with
/// their description, every instance available, and distinct IDs.
fn define_two_types(c: &mut Ctx) -> Result<String, String> {
    fs::create_dir(&c.dir).map_err(|e| format!("mkdir {}: {e}", c.dir.display()))?;
    define(c, SMALL)?;
    define(c, LARGE)?;
    let mut ids = Vec::new();
    for (name, fb, max, weight) in [SMALL, LARGE] {
        let t = c
            .gpu
            .find_type(&Ctx::mdev_type(name))
            .map_err(|e| format!("{name} is no mdev type: {e}"))?;
        let want = format!("framebuffer={fb}, max_instances={max}, weight={weight}");
        ensure!(
            t.description == want,
            "{name}: description {:?}",
            t.description
        );
        ensure!(
            t.available == max,
            "{name}: available {} != {max}",
            t.available
        );
        ids.push(read(&c.type_dir(name).join("id")));
    }
    ensure!(
        ids[0] != "0" && ids[1] != "0" && ids[0] != ids[1],
        "ids {ids:?}"
    );
    Ok(format!(
        "{} and {} listed beside the built-in types",
        SMALL.0, LARGE.0
    ))
}

/// Slices of both sizes are made, side by side on one GPU.
fn mixed_sizes(c: &mut Ctx) -> Result<String, String> {
    let small = Ctx::mdev_type(SMALL.0);
    let large = Ctx::mdev_type(LARGE.0);
    c.create(&large)?;
    c.create(&small)?;
    let slices = rm_slices(&c.gpu.name)?;
    let sizes: Vec<u64> = slices.iter().map(|s| s.1 / MIB).collect();
    ensure!(
        sizes.contains(&48) && sizes.contains(&96),
        "slices {slices:x?}"
    );
    c.destroy_all()?;
    Ok("a 96M and a 48M vGPU at once".into())
}

/// (vram_base, vram_size) of every slice, and the VRAM size, from the RM's
/// debugfs "vram" table.
fn rm_slices(gpu: &str) -> Result<Vec<(u64, u64)>, String> {
    let recs = vgpuctl::rm_table(gpu, "vram").map_err(|e| e.to_string())?;
    let num = |r: &vgpuctl::Record, k: &str| {
        vgpuctl::field(r, k).and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
    };
    Ok(recs
        .iter()
        .filter_map(|r| Some((num(r, "vram_base")?, num(r, "vram_size")?)))
        .collect())
}

fn rm_vram_total(gpu: &str) -> Result<u64, String> {
    let recs = vgpuctl::rm_table(gpu, "vram").map_err(|e| e.to_string())?;
    recs.iter()
        .find_map(|r| vgpuctl::field(r, "total_bytes")?.parse().ok())
        .ok_or_else(|| "no total_bytes in vram".into())
}

/// How many slices of `size` fit the free extents of `total` bytes of VRAM
/// outside `used`: a power of two is placed at a multiple of its size,
/// others at any granule (the RM's placement rule, SPEC 4 alignment).
fn slices_that_fit(total: u64, used: &[(u64, u64)], size: u64) -> u32 {
    let align = if size.is_power_of_two() {
        size
    } else {
        GRANULE
    };
    let mut used = used.to_vec();
    used.sort();
    let mut free = Vec::new();
    let mut at = 0;
    for &(base, len) in &used {
        if base > at {
            free.push((at, base));
        }
        at = at.max(base + len);
    }
    free.push((at, total));
    let mut n = 0;
    for (start, end) in free {
        let mut p = start.div_ceil(align) * align;
        while p + size <= end {
            n += 1;
            p += size;
        }
    }
    n
}

/// Fragment the VRAM (five 48M slices, then the 2nd and 4th removed): 112M
/// are free but no 96M extent, and 32M slices fit only at 32M boundaries.
/// Every type's available_instances must equal what the free extents
/// really hold (capped by max_instances and partitions), and creating that
/// many must succeed and one more fail.
fn fragmentation(c: &mut Ctx) -> Result<String, String> {
    let small = Ctx::mdev_type(SMALL.0);
    let mut five = Vec::new();
    for _ in 0..5 {
        five.push(c.create(&small)?);
    }
    c.destroy(&five[1])?;
    c.destroy(&five[3])?;
    let total = rm_vram_total(&c.gpu.name)?;
    let used = rm_slices(&c.gpu.name)?;
    let free: u64 = total - used.iter().map(|s| s.1).sum::<u64>();
    let parts = vgpuctl::rm_table(&c.gpu.name, "partitions")
        .map_err(|e| e.to_string())?
        .len() as u32;
    let parts_free = parts - used.len() as u32;
    let mut detail = vec![format!("{}M free", free / MIB)];
    let types = c.gpu.types().map_err(|e| e.to_string())?;
    for t in &types {
        let size = framebuffer_bytes(t);
        let created = c.made.iter().filter(|(_, ty)| ty == &t.id).count() as u32;
        let want = slices_that_fit(total, &used, size)
            .min(max_instances(t) - created)
            .min(parts_free);
        ensure!(
            t.available == want,
            "{}: available_instances {} but {} fit ({} free bytes)",
            t.id,
            t.available,
            want,
            free
        );
        // Prove it: create that many, then one more must fail.
        let mut extra = Vec::new();
        for i in 0..want {
            extra.push(c.create(&t.id).map_err(|e| format!("{} #{i}: {e}", t.id))?);
        }
        let over = c.create(&t.id);
        for u in &extra {
            c.destroy(u)?;
        }
        ensure!(
            over.is_err(),
            "{}: one more than available was created",
            t.id
        );
        if let Ok(u) = over {
            c.destroy(&u)?;
        }
        detail.push(format!("{}={}", t.id.trim_start_matches("vgpu_rm-"), want));
    }
    let large = c.available(&Ctx::mdev_type(LARGE.0))?;
    ensure!(
        large == 0 && free >= 96 * MIB,
        "{} free, 96M available {large}",
        free
    );
    c.destroy_all()?;
    Ok(detail.join(" "))
}

/// Bad sizes, limits, names and removals are refused with an errno and a
/// kernel message; the type keeps its values.
fn bad_input(c: &mut Ctx) -> Result<String, String> {
    let d = c.type_dir("rt-bad");
    fs::create_dir(&d).map_err(|e| format!("mkdir rt-bad: {e}"))?;
    let fb = d.join("framebuffer");
    let mut out = Vec::new();
    let inval = Errno::Einval;
    out.push(refused(
        "enable without a size",
        write(&d.join("enable"), "1"),
        inval,
        "write its framebuffer size",
    )?);
    out.push(refused(
        "size 100K",
        write(&fb, "100K"),
        inval,
        "multiple of 64K",
    )?);
    out.push(refused(
        "size 0",
        write(&fb, "0"),
        inval,
        "multiple of 64K",
    )?);
    out.push(refused("size 1G", write(&fb, "1G"), inval, "VRAM size")?);
    out.push(refused(
        "size abc",
        write(&fb, "abc"),
        inval,
        "is not a size",
    )?);
    out.push(refused(
        "max_instances 0",
        write(&d.join("max_instances"), "0"),
        inval,
        "max_instances must be",
    )?);
    out.push(refused(
        "max_instances 9",
        write(&d.join("max_instances"), "9"),
        inval,
        "max_instances must be",
    )?);
    out.push(refused(
        "weight 256",
        write(&d.join("weight"), "256"),
        inval,
        "weight must be",
    )?);
    ensure!(read(&fb) == "0", "framebuffer {} after refusals", read(&fb));
    fs::remove_dir(&d).map_err(|e| format!("rmdir rt-bad: {e}"))?;

    let dup = mkdir(&c.type_dir(SMALL.0));
    out.push(refused("duplicate name", dup, Errno::Eexist, "")?);
    let builtin = mkdir(&c.type_dir("vgpu-64M"));
    out.push(refused(
        "a built-in type's name",
        builtin,
        Errno::Eexist,
        "a built-in type has that name",
    )?);
    let badname = mkdir(&c.type_dir("bad:name"));
    out.push(refused("name bad:name", badname, inval, "letters, digits")?);
    let unknown = fs::remove_dir(c.type_dir("no-such-type")).map_err(Errno::from);
    out.push(refused(
        "removal of an unknown type",
        unknown,
        Errno::Enoent,
        "",
    )?);
    let nogpu = mkdir(&Path::new(CONFIGFS).join("0000:00:1f.7"));
    out.push(refused(
        "a GPU that is not there",
        nogpu,
        Errno::Enodev,
        "no GPU 0000:00:1f.7",
    )?);
    Ok(out.join("; "))
}

/// A type in use cannot be removed or changed, and the type list cannot
/// change while mdevs exist (the mdev core's fixed list); the vGPU and the
/// types survive every refusal.
fn in_use_refused(c: &mut Ctx) -> Result<String, String> {
    let small = Ctx::mdev_type(SMALL.0);
    let u = c.create(&small)?;
    let d = c.type_dir(SMALL.0);
    let busy = Errno::Ebusy;
    let mut out = Vec::new();
    out.push(refused(
        "disable a type in use",
        write(&d.join("enable"), "0"),
        busy,
        "in use by 1 vGPU",
    )?);
    out.push(refused(
        "change a type in use",
        write(&d.join("framebuffer"), "64M"),
        busy,
        "is enabled",
    )?);
    let rm = fs::remove_dir(&d).map_err(Errno::from);
    out.push(refused("rmdir a type in use", rm, busy, "")?);
    // Another type, unused, cannot be disabled either while mdevs exist.
    let other = c.type_dir(LARGE.0);
    out.push(refused(
        "disable an unused type beside an mdev",
        write(&other.join("enable"), "0"),
        busy,
        "remove every mdev of the GPU",
    )?);
    ensure!(
        read(&other.join("enable")) == "1",
        "{} disabled anyway",
        LARGE.0
    );
    ensure!(read(&d.join("framebuffer")) == "48M", "framebuffer changed");
    ensure!(Vgpu::get(&u).is_ok(), "the vGPU went away");
    ensure!(c.gpu.find_type(&small).is_ok(), "{small} no longer listed");
    c.destroy_all()?;
    Ok(out.join("; "))
}

/// With no vGPU left the types are disabled and removed, the mdev type
/// list loses them, and every built-in type is fully available again.
fn remove_types(c: &mut Ctx) -> Result<String, String> {
    for (name, ..) in [SMALL, LARGE] {
        let d = c.type_dir(name);
        write(&d.join("enable"), "0").map_err(|k| format!("disable {name}: {k:?}"))?;
        fs::remove_dir(&d).map_err(|e| format!("rmdir {name}: {e}"))?;
        ensure!(
            c.gpu.find_type(&Ctx::mdev_type(name)).is_err(),
            "{name} still listed"
        );
    }
    fs::remove_dir(&c.dir).map_err(|e| format!("rmdir {}: {e}", c.dir.display()))?;
    for t in c.gpu.types().map_err(|e| e.to_string())? {
        ensure!(
            t.available == max_instances(&t),
            "{}: available {}",
            t.id,
            t.available
        );
    }
    Ok(String::new())
}

/// The GPU's mode: mdev, and sriov refused on a GPU without SR-IOV.
fn mode_without_sriov(c: &mut Ctx) -> Result<String, String> {
    let m = Path::new("/sys/bus/pci/devices")
        .join(&c.gpu.name)
        .join("vgpu_mode");
    ensure!(read(&m) == "mdev", "vgpu_mode {:?}", read(&m));
    let r = refused(
        "sriov without SR-IOV",
        write(&m, "sriov"),
        Errno::Eopnotsupp,
        "no SR-IOV capability",
    )?;
    let bad = refused(
        "mode bogus",
        write(&m, "bogus"),
        Errno::Einval,
        "write mdev or sriov",
    )?;
    ensure!(
        read(&m) == "mdev",
        "vgpu_mode {:?} after refusals",
        read(&m)
    );
    ensure!(
        c.gpu.types().is_ok_and(|t| !t.is_empty()),
        "mdev types gone"
    );
    Ok(format!("{r}; {bad}"))
}

const CHECKS: &[Check<Ctx>] = &[
    Check {
        name: "types: two runtime types of different sizes defined through configfs",
        run: define_two_types,
    },
    Check {
        name: "types: vGPUs of both sizes on one GPU",
        run: mixed_sizes,
    },
    Check {
        name: "types: available_instances is what really fits after fragmentation",
        run: fragmentation,
    },
    Check {
        name: "types: bad sizes, limits, names and removals are refused",
        run: bad_input,
    },
    Check {
        name: "types: a type in use, or the list while mdevs exist, cannot change",
        run: in_use_refused,
    },
    Check {
        name: "types: runtime types removed, built-in types all available",
        run: remove_types,
    },
    Check {
        name: "mode: vgpu_mode is mdev; sriov refused without SR-IOV",
        run: mode_without_sriov,
    },
];

fn main() {
    if std::env::args().len() > 1 {
        eprintln!("usage: vgpu-types-test (no arguments)");
        std::process::exit(2);
    }
    let gpu = Gpu::find(None).unwrap_or_else(|e| fatal(format!("find an mdev parent: {e}")));
    let dir = Path::new(CONFIGFS).join(&gpu.name);
    let mut c = Ctx {
        gpu,
        dir,
        made: Vec::new(),
        serial: 0,
    };
    let mut r = Report::default();
    r.run(&mut c, CHECKS);
    // Whatever a failed check left behind.
    let _ = c.destroy_all();
    std::process::exit(r.finish());
}
