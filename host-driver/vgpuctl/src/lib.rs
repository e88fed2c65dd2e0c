//! The host driver as seen from user space: mdev parents (GPUs), their vGPU
//! types and vGPUs through the standard mdev sysfs ABI, and the RM's state
//! through debugfs. Used by the `vgpuctl` CLI and the L1 test tier.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub const MDEV_BUS: &str = "/sys/class/mdev_bus";
pub const MDEV_DEVICES: &str = "/sys/bus/mdev/devices";
pub const RM_DEBUGFS: &str = "/sys/kernel/debug/vgpu_rm";

#[derive(Debug)]
pub enum Error {
    BadUuid(String),
    NoGpu(String),
    UnknownType {
        gpu: String,
        name: String,
        known: Vec<String>,
    },
    NoVgpu(String),
    Io {
        what: String,
        err: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadUuid(u) => write!(f, "{u:?} is not a UUID (want 8-4-4-4-12 hex digits)"),
            Error::NoGpu(g) => write!(
                f,
                "no vGPU-capable GPU {g:?} (see `vgpuctl list`; is vgpu_vfio loaded?)"
            ),
            Error::UnknownType { gpu, name, known } => {
                write!(
                    f,
                    "GPU {gpu} has no vGPU type {name:?}; types: {}",
                    known.join(", ")
                )
            }
            Error::NoVgpu(u) => write!(f, "no vGPU {u}"),
            Error::Io { what, err } => write!(f, "{what}: {err}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn io_err(what: impl fmt::Display) -> impl FnOnce(io::Error) -> Error {
    let what = what.to_string();
    move |err| Error::Io { what, err }
}

fn read_trim(p: &Path) -> Result<String> {
    fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .map_err(io_err(p.display()))
}

/// Accept only canonical 8-4-4-4-12 hex UUIDs (what mdev's create parses).
pub fn check_uuid(u: &str) -> Result<()> {
    let groups: Vec<&str> = u.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(Error::BadUuid(u.to_string()))
    }
}

/// A random version-4 UUID from the kernel.
pub fn new_uuid() -> Result<String> {
    read_trim(Path::new("/proc/sys/kernel/random/uuid"))
}

#[derive(Clone, Debug)]
pub struct VgpuType {
    /// Directory name under mdev_supported_types (driver prefix included).
    pub id: String,
    pub name: String,
    pub description: String,
    pub available: u32,
    pub device_api: String,
}

impl VgpuType {
    /// A `key=value` from the description ("framebuffer=64M, ...").
    pub fn desc_value(&self, key: &str) -> Option<&str> {
        self.description
            .split(',')
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

#[derive(Clone, Debug)]
pub struct Gpu {
    /// PCI name, e.g. 0000:00:02.0
    pub name: String,
    pub path: PathBuf,
}

impl Gpu {
    pub fn all() -> Result<Vec<Gpu>> {
        let rd = match fs::read_dir(MDEV_BUS) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(MDEV_BUS)(e)),
        };
        let mut gpus: Vec<Gpu> = rd
            .filter_map(|e| e.ok())
            .map(|e| Gpu {
                name: e.file_name().to_string_lossy().into_owned(),
                path: e.path(),
            })
            .collect();
        gpus.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(gpus)
    }

    /// The named GPU, or the only one when `name` is None.
    pub fn find(name: Option<&str>) -> Result<Gpu> {
        let all = Gpu::all()?;
        match name {
            Some(n) => all
                .into_iter()
                .find(|g| g.name == n || g.name.ends_with(n))
                .ok_or_else(|| Error::NoGpu(n.to_string())),
            None => all
                .into_iter()
                .next()
                .ok_or_else(|| Error::NoGpu("(any)".into())),
        }
    }

    pub fn types(&self) -> Result<Vec<VgpuType>> {
        let dir = self.path.join("mdev_supported_types");
        let mut types = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(dir.display()))? {
            let e = e.map_err(io_err(dir.display()))?;
            let p = e.path();
            types.push(VgpuType {
                id: e.file_name().to_string_lossy().into_owned(),
                name: read_trim(&p.join("name")).unwrap_or_default(),
                description: read_trim(&p.join("description")).unwrap_or_default(),
                available: read_trim(&p.join("available_instances"))?
                    .parse()
                    .unwrap_or(0),
                device_api: read_trim(&p.join("device_api")).unwrap_or_default(),
            });
        }
        types.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(types)
    }

    /// A type by directory name, or by the part after the driver prefix.
    pub fn find_type(&self, name: &str) -> Result<VgpuType> {
        let types = self.types()?;
        let known = types.iter().map(|t| t.id.clone()).collect();
        types
            .into_iter()
            .find(|t| t.id == name || t.id.split_once('-').is_some_and(|(_, rest)| rest == name))
            .ok_or(Error::UnknownType {
                gpu: self.name.clone(),
                name: name.to_string(),
                known,
            })
    }

    /// Create a vGPU of `type_id` with `uuid` (checked first).
    pub fn create(&self, type_id: &str, uuid: &str) -> Result<()> {
        check_uuid(uuid)?;
        let t = self.find_type(type_id)?;
        let p = self
            .path
            .join("mdev_supported_types")
            .join(&t.id)
            .join("create");
        fs::write(&p, uuid).map_err(io_err(format!("create {} on {}", t.id, self.name)))
    }
}

#[derive(Clone, Debug)]
pub struct Vgpu {
    pub uuid: String,
    pub gpu: String,
    pub type_id: String,
    pub iommu_group: Option<u32>,
}

impl Vgpu {
    pub fn all() -> Result<Vec<Vgpu>> {
        let rd = match fs::read_dir(MDEV_DEVICES) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(MDEV_DEVICES)(e)),
        };
        let mut out: Vec<Vgpu> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| Vgpu::get(&e.file_name().to_string_lossy()).ok())
            .collect();
        out.sort_by(|a, b| a.uuid.cmp(&b.uuid));
        Ok(out)
    }

    pub fn get(uuid: &str) -> Result<Vgpu> {
        check_uuid(uuid)?;
        let p = Path::new(MDEV_DEVICES).join(uuid);
        if !p.exists() {
            return Err(Error::NoVgpu(uuid.to_string()));
        }
        let link_name = |l: &str| {
            fs::read_link(p.join(l))
                .ok()
                .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
        };
        Ok(Vgpu {
            uuid: uuid.to_string(),
            gpu: fs::canonicalize(&p)
                .ok()
                .and_then(|c| {
                    c.parent()
                        .and_then(|d| d.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                })
                .unwrap_or_default(),
            type_id: link_name("mdev_type").unwrap_or_default(),
            iommu_group: link_name("iommu_group").and_then(|g| g.parse().ok()),
        })
    }

    pub fn destroy(uuid: &str) -> Result<()> {
        check_uuid(uuid)?;
        let p = Path::new(MDEV_DEVICES).join(uuid);
        if !p.exists() {
            return Err(Error::NoVgpu(uuid.to_string()));
        }
        fs::write(p.join("remove"), "1").map_err(io_err(format!("remove {uuid}")))
    }
}

/// One line of a vgpu_rm debugfs table: `key=value` pairs.
pub type Record = Vec<(String, String)>;

pub fn parse_records(text: &str) -> Vec<Record> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            l.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

pub fn field<'a>(r: &'a Record, key: &str) -> Option<&'a str> {
    r.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A debugfs table of the RM for GPU `gpu` ("partitions", "types", ...).
pub fn rm_table(gpu: &str, file: &str) -> Result<Vec<Record>> {
    let p = Path::new(RM_DEBUGFS).join(gpu).join(file);
    let text = fs::read_to_string(&p).map_err(io_err(format!(
        "{} (is debugfs mounted and vgpu_rm loaded?)",
        p.display()
    )))?;
    Ok(parse_records(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_checked() {
        assert!(check_uuid("a1b2c3d4-0000-4000-8000-0123456789ab").is_ok());
        for bad in [
            "",
            "not-a-uuid",
            "a1b2c3d4-0000-4000-8000-0123456789a",
            "g1b2c3d4-0000-4000-8000-0123456789ab",
        ] {
            let e = check_uuid(bad).unwrap_err();
            assert!(e.to_string().contains("not a UUID"), "{e}");
        }
    }

    #[test]
    fn records_and_descriptions_parse() {
        let r =
            parse_records("# index state\nindex=0 state=IDLE owner=x\n\nindex=1 state=DISABLED\n");
        assert_eq!(r.len(), 2);
        assert_eq!(field(&r[0], "state"), Some("IDLE"));
        assert_eq!(field(&r[1], "owner"), None);
        let t = VgpuType {
            id: "vgpu_vfio-vgpu-64M".into(),
            name: String::new(),
            description: "framebuffer=64M, max_instances=4, weight=16".into(),
            available: 4,
            device_api: String::new(),
        };
        assert_eq!(t.desc_value("max_instances"), Some("4"));
        assert_eq!(t.desc_value("weight"), Some("16"));
    }
}
