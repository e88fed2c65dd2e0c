//! Shared pieces of the guest test programs: finding the GPU in sysfs,
//! mapping its BARs, DMA-able memory with known bus addresses, and a
//! transcript that reports each check and benchmark.

use std::collections::HashMap;
use std::fmt::Display;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::ptr;

use memmap2::{MmapOptions, MmapRaw};
use vdevice::driver::Hardware;

pub mod checks;
pub mod console;
pub mod guest_driver;
pub mod migration;
pub mod pattern;
pub mod screens;
pub mod uapi;
pub mod vfio;
pub mod vgpu;

pub const PAGE: usize = 4096;

/// A PCI function in sysfs.
pub struct PciDev {
    pub path: PathBuf,
}

fn read_hex(p: &Path) -> Option<u64> {
    let s = fs::read_to_string(p).ok()?;
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

impl PciDev {
    /// The first function with this vendor and device ID.
    pub fn find(vendor: u16, device: u16) -> Result<Self, String> {
        let mut found: Vec<PathBuf> = fs::read_dir("/sys/bus/pci/devices")
            .map_err(|e| format!("cannot list /sys/bus/pci/devices: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                read_hex(&p.join("vendor")) == Some(vendor as u64)
                    && read_hex(&p.join("device")) == Some(device as u64)
            })
            .collect();
        found.sort();
        found
            .into_iter()
            .next()
            .map(|path| Self { path })
            .ok_or_else(|| format!("no PCI device {vendor:04x}:{device:04x}"))
    }

    pub fn attr(&self, name: &str) -> Option<u64> {
        read_hex(&self.path.join(name))
    }

    /// The function's address (`0000:01:00.0`), as sysfs and VFIO name it.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The last path component of the symlink `link` (a driver's or an
    /// IOMMU group's name), None when there is no such link.
    pub fn link_name(&self, link: &str) -> Option<String> {
        let t = fs::read_link(self.path.join(link)).ok()?;
        Some(t.file_name()?.to_string_lossy().into_owned())
    }

    /// The bound driver's name.
    pub fn driver(&self) -> Option<String> {
        self.link_name("driver")
    }

    /// The IOMMU group number, None without an IOMMU.
    pub fn iommu_group(&self) -> Option<u32> {
        self.link_name("iommu_group")?.parse().ok()
    }

    /// The function that the link `link` names (an SR-IOV PF's `virtfnN`).
    pub fn linked(&self, link: &str) -> Result<Self, String> {
        let t = fs::canonicalize(self.path.join(link))
            .map_err(|e| format!("{}/{link}: {e}", self.name()))?;
        Ok(Self { path: t })
    }

    /// Write a sysfs attribute of the function.
    pub fn write_attr(&self, name: &str, value: &str) -> Result<(), String> {
        fs::write(self.path.join(name), value)
            .map_err(|e| format!("write {value:?} to {}/{name}: {e}", self.name()))
    }

    /// Bind the function to driver `drv` as an administrator does for
    /// device assignment: `driver_override`, unbind from any other driver,
    /// `drivers_probe`. Fails unless `drv` is bound afterwards.
    pub fn bind_override(&self, drv: &str) -> Result<(), String> {
        if self.driver().as_deref() == Some(drv) {
            return Ok(());
        }
        self.write_attr("driver_override", drv)?;
        if self.driver().is_some() {
            self.write_attr("driver/unbind", &self.name())?;
        }
        fs::write("/sys/bus/pci/drivers_probe", self.name())
            .map_err(|e| format!("drivers_probe {}: {e}", self.name()))?;
        match self.driver() {
            Some(d) if d == drv => Ok(()),
            other => Err(format!("{} bound to {other:?}, not {drv}", self.name())),
        }
    }

    /// Turn on memory decoding and bus mastering in the command register.
    pub fn enable_mem_and_bus_master(&self) -> Result<(), String> {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path.join("config"))
            .map_err(|e| format!("config: {e}"))?;
        let mut cmd = [0u8; 2];
        f.seek(SeekFrom::Start(4)).map_err(|e| e.to_string())?;
        f.read_exact(&mut cmd).map_err(|e| e.to_string())?;
        let v = u16::from_le_bytes(cmd) | 0x2 | 0x4;
        f.write_all_at(&v.to_le_bytes(), 4)
            .map_err(|e| format!("config write: {e}"))
    }

    /// Size of BAR `n` from the `resource` file.
    pub fn bar_size(&self, n: usize) -> Option<u64> {
        let s = fs::read_to_string(self.path.join("resource")).ok()?;
        let line = s.lines().nth(n)?;
        let mut it = line
            .split_whitespace()
            .map(|x| u64::from_str_radix(x.trim_start_matches("0x"), 16));
        let (start, end) = (it.next()?.ok()?, it.next()?.ok()?);
        (end > start).then(|| end - start + 1)
    }

    /// Map BAR `n` (write-combined when the kernel offers it).
    pub fn map_bar(&self, n: usize, prefer_wc: bool) -> Result<Bar, String> {
        let wc = self.path.join(format!("resource{n}_wc"));
        let path = if prefer_wc && wc.exists() {
            wc
        } else {
            self.path.join(format!("resource{n}"))
        };
        let len = self.bar_size(n).ok_or(format!("BAR{n} has no size"))? as usize;
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let map = MmapOptions::new()
            .len(len)
            .map_raw(&f)
            .map_err(|e| format!("mmap {}: {e}", path.display()))?;
        Ok(Bar { map, len })
    }
}

/// A mapped BAR, accessed with volatile loads and stores of the given size.
pub struct Bar {
    map: MmapRaw,
    pub len: usize,
}

impl Bar {
    fn at(&self, off: u64, size: usize) -> *mut u8 {
        assert!(
            off as usize + size <= self.len,
            "BAR access beyond {:#x}",
            self.len
        );
        // SAFETY: bounds checked above.
        unsafe { self.map.as_mut_ptr().add(off as usize) }
    }

    pub fn read(&self, off: u64, size: u32) -> u64 {
        let p = self.at(off, size as usize);
        // SAFETY: in bounds, naturally aligned by the callers' contract.
        unsafe {
            match size {
                1 => ptr::read_volatile(p) as u64,
                2 => ptr::read_volatile(p as *const u16) as u64,
                4 => ptr::read_volatile(p as *const u32) as u64,
                _ => ptr::read_volatile(p as *const u64),
            }
        }
    }

    pub fn write(&self, off: u64, v: u64, size: u32) {
        let p = self.at(off, size as usize);
        // SAFETY: as for read.
        unsafe {
            match size {
                1 => ptr::write_volatile(p, v as u8),
                2 => ptr::write_volatile(p as *mut u16, v as u16),
                4 => ptr::write_volatile(p as *mut u32, v as u32),
                _ => ptr::write_volatile(p as *mut u64, v),
            }
        }
    }

    pub fn copy_in(&self, off: u64, data: &[u8]) {
        let p = self.at(off, data.len());
        // SAFETY: bounds checked.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) }
    }

    pub fn copy_out(&self, off: u64, buf: &mut [u8]) {
        let p = self.at(off, buf.len());
        // SAFETY: bounds checked.
        unsafe { ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) }
    }
}

/// Locked anonymous memory whose page bus addresses come from
/// /proc/self/pagemap (L1 has no IOMMU: bus address = physical address).
pub struct DmaBuffer {
    map: memmap2::MmapMut,
    bus: Vec<u64>,
    page_of_pfn: HashMap<u64, usize>,
}

impl DmaBuffer {
    pub fn new(pages: usize) -> Result<Self, String> {
        let mut map = MmapOptions::new()
            .len(pages * PAGE)
            .map_anon()
            .map_err(|e| format!("mmap: {e}"))?;
        map.fill(0);
        // SAFETY: mlock of our own mapping.
        if unsafe { libc::mlock(map.as_ptr().cast(), map.len()) } != 0 {
            return Err(format!("mlock: {}", std::io::Error::last_os_error()));
        }
        let pagemap = File::open("/proc/self/pagemap").map_err(|e| format!("pagemap: {e}"))?;
        let base = map.as_ptr() as u64 / PAGE as u64;
        let mut bus = Vec::with_capacity(pages);
        let mut page_of_pfn = HashMap::new();
        for i in 0..pages {
            let mut e = [0u8; 8];
            pagemap
                .read_exact_at(&mut e, (base + i as u64) * 8)
                .map_err(|e| format!("pagemap read: {e}"))?;
            let e = u64::from_le_bytes(e);
            let pfn = e & ((1 << 55) - 1);
            if e >> 63 == 0 || pfn == 0 {
                return Err("pagemap gives no PFNs (not root?)".into());
            }
            bus.push(pfn * PAGE as u64);
            page_of_pfn.insert(pfn, i);
        }
        Ok(Self {
            map,
            bus,
            page_of_pfn,
        })
    }

    pub fn pages(&self) -> usize {
        self.bus.len()
    }

    /// Bus address of page `i`.
    pub fn bus(&self, i: usize) -> u64 {
        self.bus[i]
    }

    fn locate(&self, bus: u64) -> usize {
        let page = *self
            .page_of_pfn
            .get(&(bus / PAGE as u64))
            .unwrap_or_else(|| panic!("bus address {bus:#x} is not in the DMA buffer"));
        page * PAGE + (bus % PAGE as u64) as usize
    }

    /// Access by bus address; a range may not cross into another page
    /// unless the pages happen to be physically contiguous.
    pub fn write_bus(&mut self, bus: u64, data: &[u8]) {
        for (i, chunk) in split_pages(bus, data.len()) {
            let at = self.locate(bus + i as u64);
            self.map[at..at + chunk].copy_from_slice(&data[i..i + chunk]);
        }
    }

    pub fn read_bus(&self, bus: u64, buf: &mut [u8]) {
        for (i, chunk) in split_pages(bus, buf.len()) {
            let at = self.locate(bus + i as u64);
            buf[i..i + chunk].copy_from_slice(&self.map[at..at + chunk]);
        }
    }

    /// The buffer by its virtual layout (page i at i * PAGE).
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }
}

/// (offset into the access, length) pieces that do not cross a page.
fn split_pages(bus: u64, len: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < len {
        let in_page = ((bus + i as u64) % PAGE as u64) as usize;
        let n = (PAGE - in_page).min(len - i);
        out.push((i, n));
        i += n;
    }
    out
}

/// The physical GPU as seen from a bare-metal driver in a guest.
pub struct MappedGpu {
    pub regs: Bar,
    pub vram: Bar,
    pub dma: std::sync::Mutex<DmaBuffer>,
}

impl Hardware for MappedGpu {
    fn reg_read(&self, offset: u64, size: u32) -> u64 {
        self.regs.read(offset, size)
    }

    fn reg_write(&self, offset: u64, value: u64, size: u32) {
        self.regs.write(offset, value, size)
    }

    fn vram_write(&self, offset: u64, data: &[u8]) {
        self.vram.copy_in(offset, data)
    }

    fn vram_read(&self, offset: u64, buf: &mut [u8]) {
        self.vram.copy_out(offset, buf)
    }

    fn sys_write(&self, bus: u64, data: &[u8]) {
        self.dma.lock().unwrap().write_bus(bus, data)
    }

    fn sys_read(&self, bus: u64, buf: &mut [u8]) {
        self.dma.lock().unwrap().read_bus(bus, buf)
    }
}

/// Best (shortest) of `reps` timed runs of `f`, in seconds.
pub fn best_of(reps: u32, mut f: impl FnMut()) -> f64 {
    (0..reps.max(1))
        .map(|_| {
            let t = std::time::Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

/// One named check of a test program: `run` proves what `name` says on the
/// program's context `C`, returning a detail for the transcript or why it
/// failed. A program is a table of these, run in order by [`Report::run`].
pub struct Check<C> {
    pub name: &'static str,
    pub run: fn(&mut C) -> Result<String, String>,
}

/// A benchmark figure, one line `bench name value`.
pub fn bench(name: &str, value: impl Display) {
    println!("bench {name} {value}");
}

/// Prints one line per check (`ok`/`FAIL`) and per benchmark (`bench`),
/// and a closing `N passed, N failed` line.
#[derive(Default)]
pub struct Report {
    passed: u32,
    failed: u32,
}

impl Report {
    pub fn check(&mut self, name: &str, f: impl FnOnce() -> Result<String, String>) -> bool {
        match f() {
            Ok(detail) if detail.is_empty() => {
                println!("ok   {name}");
                self.passed += 1;
                true
            }
            Ok(detail) => {
                println!("ok   {name}: {detail}");
                self.passed += 1;
                true
            }
            Err(why) => {
                println!("FAIL {name}: {why}");
                self.failed += 1;
                false
            }
        }
    }

    /// Run a table of checks in order; false if any failed.
    pub fn run<C>(&mut self, ctx: &mut C, checks: &[Check<C>]) -> bool {
        let mut all = true;
        for c in checks {
            all &= self.check(c.name, || (c.run)(ctx));
        }
        all
    }

    /// Like [`Report::run`] for tables whose names say what the setup
    /// found (a device node, a size): each name goes through `name` first.
    pub fn run_named<C>(
        &mut self,
        ctx: &mut C,
        checks: &[Check<C>],
        name: impl Fn(&C, &'static str) -> String,
    ) -> bool {
        let mut all = true;
        for c in checks {
            let shown = name(ctx, c.name);
            all &= self.check(&shown, || (c.run)(ctx));
        }
        all
    }

    pub fn note(&self, text: impl Display) {
        println!("# {text}");
    }

    /// Print the summary; the process exit code.
    pub fn finish(&self) -> i32 {
        println!("{} passed, {} failed", self.passed, self.failed);
        i32::from(self.failed != 0)
    }
}

/// `ensure!(cond, "fmt", args)` inside a check closure.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_never_cross_a_page() {
        assert_eq!(split_pages(4090, 10), vec![(0, 6), (6, 4)]);
        assert_eq!(split_pages(0, 8192), vec![(0, 4096), (4096, 4096)]);
        assert_eq!(split_pages(5, 0), vec![]);
    }
}
