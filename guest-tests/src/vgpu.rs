//! What the VFIO test programs (vgpu-vfio-test, vgpu-vfio-chaos) share: a
//! vGPU driven through VFIO as `Driver<VfioVgpu>`, the readings of its
//! window that their checks are made of, and what a vGPU type says.

use std::time::Duration;
use vdevice::driver::{Driver, Hardware};
use vdevice::regs::{FaultCode, FaultStatus, PartitionState, RegId};
use vgpuctl::VgpuType;

use crate::vfio::VfioVgpu;

/// A vGPU opened through VFIO, driven through its one window (partition 0
/// of the driver).
pub type VfioDriver = Driver<VfioVgpu>;

/// How long any wait for the device may take before a check fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// [`TIMEOUT`] for `poll`.
pub const TIMEOUT_MS: i32 = TIMEOUT.as_millis() as i32;

/// The fault code in the window's FAULT_STATUS.
pub fn fault_code<H: Hardware>(g: &Driver<H>) -> FaultCode {
    FaultStatus::from_bits(g.reg(RegId::WFaultStatus, 0, 0) as u32).code()
}

/// The window's state, with the fault and its address when it faulted.
pub fn describe<H: Hardware>(g: &Driver<H>) -> String {
    let st = g.state(0);
    let mut s = st.to_string();
    if st == PartitionState::Faulted {
        s += &format!(
            " ({} at {:#x})",
            fault_code(g),
            g.reg(RegId::WFaultAddr, 0, 0)
        );
    }
    s
}

/// The little-endian word at `off` of the vGPU's VRAM (through BAR2).
pub fn vram_u64<H: Hardware>(g: &Driver<H>, off: u64) -> u64 {
    let mut b = [0u8; 8];
    g.hw.vram_read(off, &mut b);
    u64::from_le_bytes(b)
}

pub fn vram_u32<H: Hardware>(g: &Driver<H>, off: u64) -> u32 {
    let mut b = [0u8; 4];
    g.hw.vram_read(off, &mut b);
    u32::from_le_bytes(b)
}

/// The little-endian word at `iova` of the vGPU's DMA buffer.
pub fn sys_u64<H: Hardware>(g: &Driver<H>, iova: u64) -> u64 {
    let mut b = [0u8; 8];
    g.hw.sys_read(iova, &mut b);
    u64::from_le_bytes(b)
}

/// `max_instances` of a type's description (0 when it has none).
pub fn max_instances(t: &VgpuType) -> u32 {
    t.desc_value("max_instances")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Framebuffer bytes of a type, from its description ("framebuffer=128M";
/// 0 when it has none).
pub fn framebuffer_bytes(t: &VgpuType) -> u64 {
    let s = t.desc_value("framebuffer").unwrap_or("0");
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().unwrap_or(0);
    match unit {
        "G" => n << 30,
        "M" => n << 20,
        "K" => n << 10,
        _ => n,
    }
}

/// A setup step failed: say so as a check line and stop with status 1
/// (nothing after it could run).
pub fn fatal(what: impl std::fmt::Display) -> ! {
    println!("FAIL {what}");
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(description: &str) -> VgpuType {
        VgpuType {
            id: "t".into(),
            name: "t".into(),
            description: description.into(),
            available: 1,
            device_api: "vfio-pci".into(),
        }
    }

    #[test]
    fn type_descriptions_are_read() {
        let t = ty("framebuffer=128M, max_instances=2, weight=32");
        assert_eq!(framebuffer_bytes(&t), 128 << 20);
        assert_eq!(max_instances(&t), 2);
        assert_eq!(framebuffer_bytes(&ty("framebuffer=1G")), 1 << 30);
        assert_eq!((framebuffer_bytes(&ty("")), max_instances(&ty(""))), (0, 0));
    }
}
