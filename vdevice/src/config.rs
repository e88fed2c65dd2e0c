//! Device configuration (what the VMM command line sets) and its validation.

use crate::regs::{MAX_ENGINES, MAX_PARTITIONS, VRAM_GRANULE};
use std::fmt;

pub const MIN_VRAM_BYTES: u64 = 16 << 20;
pub const MAX_VRAM_BYTES: u64 = 64 << 30;
/// Smallest VF VRAM BAR: one VRAM granule (a slice's smallest size).
pub const MIN_VF_VRAM_BAR_BYTES: u64 = VRAM_GRANULE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    pub vram_size_bytes: u64,
    pub partitions: usize,
    pub engines: usize,
    /// SR-IOV mode (SPEC 15): partitions 0..sriov_vfs are virtual
    /// functions 0..sriov_vfs (TotalVFs). 0: no SR-IOV (mdev mode).
    pub sriov_vfs: usize,
    /// Size of every VF's VRAM BAR; 0: derived (see
    /// [`DeviceConfig::vf_vram_bar_bytes`]). Only with `sriov_vfs > 0`.
    pub vf_vram_bar_size: u64,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            vram_size_bytes: 1 << 30,
            partitions: 16,
            engines: 2,
            sriov_vfs: 0,
            vf_vram_bar_size: 0,
        }
    }
}

#[derive(Debug)]
pub enum ConfigError {
    VramSize(u64),
    Partitions(usize),
    Engines(usize),
    /// More VFs than partitions.
    SriovVfs {
        vfs: usize,
        partitions: usize,
    },
    /// A VF VRAM BAR size that is not a power of two in range.
    VfVramBarSize {
        size: u64,
        vram: u64,
    },
    /// A VF VRAM BAR size without SR-IOV.
    VfVramBarWithoutSriov(u64),
    Backing(std::io::Error),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::VramSize(v) => write!(
                f,
                "vram_size must be a power of two between 16 MiB and 64 GiB (got {v} bytes)"
            ),
            ConfigError::Partitions(p) => {
                write!(
                    f,
                    "partitions must be between 1 and {MAX_PARTITIONS} (got {p})"
                )
            }
            ConfigError::Engines(e) => {
                write!(f, "engines must be between 1 and {MAX_ENGINES} (got {e})")
            }
            ConfigError::SriovVfs { vfs, partitions } => write!(
                f,
                "sriov_vfs must be between 0 (no SR-IOV) and partitions = {partitions} (got {vfs})"
            ),
            ConfigError::VfVramBarSize { size, vram } => write!(
                f,
                "vf_vram_bar_size must be 0 (derived) or a power of two between {} KiB and vram_size = {} MiB (got {size} bytes)",
                MIN_VF_VRAM_BAR_BYTES >> 10,
                vram >> 20
            ),
            ConfigError::VfVramBarWithoutSriov(size) => write!(
                f,
                "vf_vram_bar_size is for SR-IOV mode: set sriov_vfs too, or leave vf_vram_bar_size 0 (got {size} bytes)"
            ),
            ConfigError::Backing(e) => write!(f, "cannot create the VRAM backing memfd: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl DeviceConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let v = self.vram_size_bytes;
        if !v.is_power_of_two() || !(MIN_VRAM_BYTES..=MAX_VRAM_BYTES).contains(&v) {
            return Err(ConfigError::VramSize(v));
        }
        if !(1..=MAX_PARTITIONS).contains(&self.partitions) {
            return Err(ConfigError::Partitions(self.partitions));
        }
        if !(1..=MAX_ENGINES).contains(&self.engines) {
            return Err(ConfigError::Engines(self.engines));
        }
        if self.sriov_vfs > self.partitions {
            return Err(ConfigError::SriovVfs {
                vfs: self.sriov_vfs,
                partitions: self.partitions,
            });
        }
        let bar = self.vf_vram_bar_size;
        if bar != 0 {
            if self.sriov_vfs == 0 {
                return Err(ConfigError::VfVramBarWithoutSriov(bar));
            }
            if !bar.is_power_of_two() || !(MIN_VF_VRAM_BAR_BYTES..=v).contains(&bar) {
                return Err(ConfigError::VfVramBarSize { size: bar, vram: v });
            }
        }
        Ok(())
    }

    /// The size of every VF's VRAM BAR (SPEC 15), 0 without SR-IOV: the
    /// configured size, or VRAM divided evenly among the VFs and rounded
    /// down to a power of two (so that all VFs' BARs together never exceed
    /// the VRAM size). Call on a validated config.
    pub fn vf_vram_bar_bytes(&self) -> u64 {
        if self.sriov_vfs == 0 {
            return 0;
        }
        if self.vf_vram_bar_size != 0 {
            return self.vf_vram_bar_size;
        }
        let share = self
            .vram_size_bytes
            .checked_div(self.sriov_vfs as u64)
            .unwrap_or(0);
        match share.checked_ilog2() {
            Some(log) => (1u64 << log).max(MIN_VF_VRAM_BAR_BYTES),
            None => MIN_VF_VRAM_BAR_BYTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let ok = DeviceConfig::default();
        assert!(ok.validate().is_ok());
        let e = DeviceConfig {
            vram_size_bytes: 3 << 20,
            ..ok
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("power of two"), "{e}");
        let e = DeviceConfig {
            partitions: 65,
            ..ok
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("got 65"), "{e}");
        let e = DeviceConfig { engines: 0, ..ok }.validate().unwrap_err();
        assert!(e.to_string().contains("engines"), "{e}");
        assert!(DeviceConfig {
            vram_size_bytes: 128 << 30,
            ..ok
        }
        .validate()
        .is_err());
    }

    #[test]
    fn sriov_configs_say_what_is_wrong() {
        let ok = DeviceConfig {
            vram_size_bytes: 256 << 20,
            partitions: 4,
            sriov_vfs: 4,
            ..DeviceConfig::default()
        };
        assert!(ok.validate().is_ok());
        let e = DeviceConfig { sriov_vfs: 5, ..ok }.validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "sriov_vfs must be between 0 (no SR-IOV) and partitions = 4 (got 5)"
        );
        for bad in [3 << 20, 32 << 10, 512 << 20] {
            let e = DeviceConfig {
                vf_vram_bar_size: bad,
                ..ok
            }
            .validate()
            .unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("vf_vram_bar_size must be 0 (derived) or a power of two between 64 KiB and vram_size = 256 MiB"), "{msg}");
            assert!(msg.ends_with(&format!("(got {bad} bytes)")), "{msg}");
        }
        let e = DeviceConfig {
            sriov_vfs: 0,
            vf_vram_bar_size: 1 << 20,
            ..ok
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("set sriov_vfs too"), "{e}");
        let full = DeviceConfig {
            vf_vram_bar_size: 256 << 20,
            ..ok
        };
        assert!(full.validate().is_ok());
        assert_eq!(full.vf_vram_bar_bytes(), 256 << 20);
    }

    #[test]
    fn the_derived_vf_vram_bar_shares_vram_in_powers_of_two() {
        let cfg = |vram: u64, vfs: usize| DeviceConfig {
            vram_size_bytes: vram,
            partitions: 64,
            sriov_vfs: vfs,
            ..DeviceConfig::default()
        };
        assert_eq!(cfg(256 << 20, 0).vf_vram_bar_bytes(), 0);
        assert_eq!(cfg(256 << 20, 1).vf_vram_bar_bytes(), 256 << 20);
        assert_eq!(cfg(256 << 20, 3).vf_vram_bar_bytes(), 64 << 20);
        assert_eq!(cfg(256 << 20, 4).vf_vram_bar_bytes(), 64 << 20);
        assert_eq!(cfg(16 << 20, 64).vf_vram_bar_bytes(), 256 << 10);
        for vfs in 1..=64 {
            let c = cfg(1 << 30, vfs);
            assert!(c.validate().is_ok());
            let bar = c.vf_vram_bar_bytes();
            assert!(
                bar.is_power_of_two() && bar * vfs as u64 <= 1 << 30,
                "{vfs}: {bar}"
            );
            assert!(
                bar * 2 * vfs as u64 > 1 << 30,
                "{vfs}: {bar} is not the largest"
            );
        }
    }
}
