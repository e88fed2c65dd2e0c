//! Device configuration (what the VMM command line sets) and its validation.

use crate::regs::{MAX_ENGINES, MAX_PARTITIONS};
use std::fmt;

pub const MIN_VRAM_BYTES: u64 = 16 << 20;
pub const MAX_VRAM_BYTES: u64 = 64 << 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    pub vram_size_bytes: u64,
    pub partitions: usize,
    pub engines: usize,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            vram_size_bytes: 1 << 30,
            partitions: 16,
            engines: 2,
        }
    }
}

#[derive(Debug)]
pub enum ConfigError {
    VramSize(u64),
    Partitions(usize),
    Engines(usize),
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
        Ok(())
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
}
