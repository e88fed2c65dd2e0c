//! One vGPU opened through VFIO with the buffers the episodes use, and
//! the FILL targets whose shape the checks read.

use super::*;

/// CRC-32 of `len` bytes of the little-endian word `pattern` repeated, as
/// the device computes it, without building the bytes: concatenations of
/// equal words commute, so CRCs of powers of two are combined.
pub fn pattern_crc(pattern: u32, len: u64) -> u32 {
    assert!(len & 3 == 0, "a FILL length");
    let mut unit = crc32fast::Hasher::new();
    unit.update(&pattern.to_le_bytes());
    let mut acc = crc32fast::Hasher::new();
    let mut words = len / 4;
    while words > 0 {
        if words & 1 == 1 {
            acc.combine(&unit);
        }
        let u = unit.clone();
        unit.combine(&u);
        words >>= 1;
    }
    acc.finalize()
}

/// A FILL whose target the checks look at: VRAM offset, or IOVA in the
/// vGPU's large system-memory buffer.
#[derive(Clone, Copy)]
pub struct Fill {
    pub sys: bool,
    pub at: u64,
    pub len: u64,
    pub new: u32,
    pub old: u32,
}

impl Fill {
    pub fn new(sys: bool, at: u64, len: u64, e: &mut Rng) -> Self {
        let new = e.pattern();
        Self {
            sys,
            at,
            len,
            new,
            old: !new,
        }
    }
    pub fn loc(&self) -> Loc {
        Loc::new(self.sys, self.at)
    }
    pub fn cmd(&self) -> Command {
        Command::fill(self.loc(), self.len, self.new)
    }
}

/// The state of a target, one letter per 1 MiB of it (the engine's unit of
/// work, counted from the command's start): 'P' the new pattern, 'Q' the
/// old one, 'x' mixed or neither. Sampled: the first and last word of every
/// page.
pub fn shape(f: &Fill, word: impl Fn(u64) -> u32) -> String {
    let mut s = String::new();
    let mut c = 0;
    while c < f.len {
        let end = (c + MIB).min(f.len);
        let (mut new, mut old, mut all) = (0, 0, 0);
        let mut p = c;
        while p < end {
            for w in [p, (p + PAGE).min(end) - 4] {
                let x = word(f.at + w);
                all += 1;
                new += usize::from(x == f.new);
                old += usize::from(x == f.old);
            }
            p += PAGE;
        }
        s.push(if new == all {
            'P'
        } else if old == all {
            'Q'
        } else {
            'x'
        });
        c = end;
    }
    s
}

/// "PPPQQ": a prefix done, the rest untouched, nothing half done.
pub fn is_prefix(s: &str) -> bool {
    s.trim_start_matches('P').chars().all(|c| c == 'Q')
}

pub fn all_p(s: &str) -> bool {
    s.chars().all(|c| c == 'P')
}

pub fn intr_all() -> u64 {
    PartIntr::new()
        .with_fence(true)
        .with_fault(true)
        .with_idle(true)
        .into_bits() as u64
}

/// One vGPU opened through VFIO, with its buffers in the shared container.
pub struct Vg {
    /// Its framebuffer, as the type table says ("32M").
    pub label: String,
    pub uuid: &'static str,
    pub g: Driver<VfioVgpu>,
    /// BAR0's doorbell page, mmap'ed as a VMM maps it into its guest.
    pub bells: memmap2::MmapRaw,
    pub fb: u64,
    pub iova: u64,
    pub big: DmaBuf,
    pub scratch: DmaBuf,
    pub ubuf: [DmaBuf; 2],
    pub ctrl: DmaBuf,
    pub efd: [EventFd; 2],
    pub _group: File,
}

impl Vg {
    pub fn rd(&self, id: RegId, elem: usize) -> u64 {
        self.g.reg(id, 0, elem)
    }

    pub fn wr(&self, id: RegId, elem: usize, v: u64) {
        self.g.set(id, 0, elem, v)
    }

    pub fn state(&self) -> PartitionState {
        self.g.state(0)
    }

    pub fn fault(&self) -> FaultCode {
        vg::fault_code(&self.g)
    }

    pub fn describe(&self) -> String {
        vg::describe(&self.g)
    }

    /// DOORBELL[ring] = v, through the mmap'ed page or the trapped BAR0.
    pub fn doorbell(&self, ring: usize, v: u64, mmap: bool) {
        if mmap {
            // SAFETY: the doorbell page is mapped and DOORBELL[ring] is in it.
            unsafe {
                std::ptr::write_volatile((self.bells.as_mut_ptr() as *mut u32).add(ring), v as u32)
            }
        } else {
            self.wr(RegId::WDoorbell, ring, v);
        }
    }

    pub fn vram_u64(&self, off: u64) -> u64 {
        vg::vram_u64(&self.g, off)
    }

    /// A word of a target: VRAM, or the large system-memory buffer.
    pub fn word(&self, sys: bool, at: u64) -> u32 {
        if sys {
            self.big.u32_at(at - self.iova - BIG_OFF)
        } else {
            vg::vram_u32(&self.g, at)
        }
    }

    pub fn shape(&self, f: &Fill) -> String {
        shape(f, |a| self.word(f.sys, a))
    }

    pub fn drain(&self) {
        for e in &self.efd {
            e.wait(0);
        }
    }

    /// Back to a known state after whatever came before: memory decoding
    /// and bus mastering on, VFIO_DEVICE_RESET, MSI-X to our eventfds.
    pub fn recover(&self) -> Result<(), String> {
        let dev = &self.g.hw.dev;
        let cfg = region_base(CONFIG_REGION.into());
        dev.pwrite_raw(cfg | 4, &[0x06, 0x00])
            .map_err(|e| format!("config COMMAND: {e}"))?;
        dev.reset().map_err(|e| format!("VFIO_DEVICE_RESET: {e}"))?;
        for index in [vfio::IRQ_INTX, vfio::IRQ_MSI, vfio::IRQ_MSIX] {
            let _ = dev.disable_irqs(index);
        }
        dev.set_irq_eventfds(vfio::IRQ_MSIX, &[self.efd[0].raw(), self.efd[1].raw()])
            .map_err(|e| format!("SET_IRQS MSI-X: {e}"))?;
        self.drain();
        ensure!(
            self.state() == PartitionState::Idle,
            "after VFIO_DEVICE_RESET: {}",
            self.describe()
        );
        Ok(())
    }

    /// Ring base: copy 0 or 1 of ring `ring`, in VRAM or in the control
    /// buffer.
    pub fn ring_base(&self, ring: usize, copy: u64, sys: bool) -> u64 {
        let off = ring as u64 * 0x8000 + copy * 0x4000;
        if sys {
            self.iova + SYS_RINGS + off
        } else {
            off
        }
    }

    pub fn configure_ring(&self, ring: usize, base: u64, sys: bool) {
        self.wr(RegId::WRingCtrl, ring, u64::from(sys));
        self.wr(RegId::WRingBase, ring, base);
        self.wr(RegId::WRingSize, ring, ENTRIES as u64);
    }

    /// Commands into ring slots 0.. at `base`.
    pub fn put(&self, base: u64, sys: bool, cmds: &[Command]) {
        for (i, c) in cmds.iter().enumerate() {
            let at = base + (i * COMMAND_BYTES) as u64;
            if sys {
                self.g.hw.sys_write(at, &c.encode());
            } else {
                self.g.hw.vram_write(at, &c.encode());
            }
        }
    }

    /// Start `cmds` from a fresh VRAM ring 0.
    pub fn start(&self, cmds: &[Command], mmap: bool) {
        self.configure_ring(0, 0, false);
        self.put(0, false, cmds);
        self.doorbell(0, cmds.len() as u64, mmap);
    }

    /// Run `cmds` on a fresh VRAM ring 0: all must complete.
    pub fn run(&self, cmds: &[Command]) -> Result<(), String> {
        self.start(cmds, false);
        let st = self.g.wait_settled(0, T);
        ensure!(
            st == PartitionState::Idle,
            "{} commands: {}",
            cmds.len(),
            self.describe()
        );
        Ok(())
    }

    /// Wait for the partition to settle: it must end IDLE.
    pub fn settle(&self, what: &str) -> Result<(), String> {
        let st = self.g.wait_settled(0, T);
        ensure!(st == PartitionState::Idle, "{what}: {}", self.describe());
        Ok(())
    }
}

impl Vg {
    /// Open `uuid` as the `index`th vGPU of the container (the first one
    /// chooses the IOMMU), with its buffers mapped in its IOVA area and the
    /// doorbell page mmap'ed.
    pub fn open(
        container: &Container,
        uuid: &'static str,
        index: u64,
        label: String,
    ) -> Result<Self, String> {
        let iova = AREA + index * AREA_STRIDE;
        let ctrl = DmaBuf::new(CTRL_BYTES)?;
        let (hw, group) = VfioVgpu::open(container, uuid, index == 0, ctrl, iova)?;
        let bells = hw
            .dev
            .mmap(&hw.bar0, regs::DOORBELL_PAGE, PAGE as usize)
            .map_err(|e| format!("doorbell page mmap: {e}"))?;
        let fb = hw.bar2.size;
        let big = DmaBuf::new(BIG_BYTES)?;
        let scratch = DmaBuf::new((SCRATCH_PAGES * PAGE) as usize)?;
        let ubuf = [
            DmaBuf::new(U_BYTES as usize)?,
            DmaBuf::new(U_BYTES as usize)?,
        ];
        let map = |b: &DmaBuf, off: u64, len: u64| {
            container
                .map_dma(b.vaddr(0), iova + off, len)
                .map_err(|e| format!("MAP_DMA at {:#x}: {e}", iova + off))
        };
        map(&ctrl, 0, CTRL_BYTES as u64)?;
        map(&big, BIG_OFF, big.len() as u64)?;
        for p in 0..SCRATCH_PAGES {
            container
                .map_dma(scratch.vaddr(p * PAGE), iova + SCRATCH_OFF + p * PAGE, PAGE)
                .map_err(|e| format!("MAP_DMA scratch: {e}"))?;
        }
        Ok(Vg {
            label,
            uuid,
            g: Driver::new(hw),
            bells,
            fb,
            iova,
            big,
            scratch,
            ubuf,
            ctrl,
            efd: [
                EventFd::new().map_err(|e| e.to_string())?,
                EventFd::new().map_err(|e| e.to_string())?,
            ],
            _group: group,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_crc_is_the_crc_of_the_bytes() {
        for (p, len) in [
            (0u32, 0u64),
            (0x1234_5678, 4),
            (0xdead_beef, 12),
            (7, 4096),
            (0xc4a0_0001, 3 << 20),
        ] {
            let bytes: Vec<u8> = p
                .to_le_bytes()
                .iter()
                .cycle()
                .take(len as usize)
                .copied()
                .collect();
            assert_eq!(pattern_crc(p, len), crc32fast::hash(&bytes), "{p:#x} {len}");
        }
    }

    #[test]
    fn shapes() {
        let f = Fill {
            sys: false,
            at: 0,
            len: 3 * MIB,
            new: 1,
            old: 2,
        };
        assert_eq!(shape(&f, |a| if a < MIB { 1 } else { 2 }), "PQQ");
        assert_eq!(shape(&f, |a| if a < MIB + 8192 { 1 } else { 2 }), "PxQ");
        assert!(is_prefix("PPQ") && is_prefix("QQ") && is_prefix("PP") && !is_prefix("QP"));
    }
}
