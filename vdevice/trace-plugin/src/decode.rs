//! What the plugin does with one access, without QEMU: parse the plugin's
//! arguments, filter, and print the access decoded by vdevice's register
//! table as a text line or a JSON line.

use std::fmt::Write;
use vdevice::regs::{self, Block};

/// The memory region vgpu-pci registers for its register BAR (BAR 0).
pub const REGS_REGION: &str = "vgpu-pci.regs";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where the trace goes (`out=`).
    pub out: String,
    pub format: Format,
    /// Only this partition's table entry and window (`partition=`).
    pub partition: Option<usize>,
    /// Only registers whose decoded name contains one of these (`reg=A|B`).
    pub regs: Vec<String>,
    /// Only reads (`rw=r`) or writes (`rw=w`).
    pub rw: Option<bool>,
    /// The memory-region name to trace (`region=`, default vgpu-pci.regs).
    pub region: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            out: "vgpu-trace.log".into(),
            format: Format::Text,
            partition: None,
            regs: Vec::new(),
            rw: None,
            region: REGS_REGION.into(),
        }
    }
}

pub const USAGE: &str = "vgpu-trace plugin arguments (comma separated in -plugin):
  out=FILE          trace file (default vgpu-trace.log)
  format=text|json  one readable line or one JSON object per access
  bar=0             the register BAR (the only trapped BAR: VRAM is RAM,
                    MSI-X is QEMU's msix-table shared by every device)
  partition=N       only partition N's table entry and window
  reg=NAME[|NAME]   only registers whose name contains NAME (e.g. RING_BASE)
  rw=r|w            only reads or only writes
  region=NAME       memory-region name to trace (default vgpu-pci.regs)";

/// Parse `key=value` plugin arguments; a bad one is an error naming it.
pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<Config, String> {
    let mut c = Config::default();
    for a in args {
        let a = a.as_ref();
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| format!("argument {a:?} is not key=value\n{USAGE}"))?;
        match k {
            "out" if !v.is_empty() => c.out = v.into(),
            "format" => {
                c.format = match v {
                    "text" => Format::Text,
                    "json" => Format::Json,
                    _ => return Err(format!("format={v}: want text or json")),
                }
            }
            "bar" => {
                if v != "0" && v != "regs" {
                    return Err(format!(
                        "bar={v}: only BAR 0 (registers) is trapped; the VRAM BAR is \
                         guest RAM (zero-copy) and MSI-X is QEMU's generic msix-table"
                    ));
                }
            }
            "partition" => {
                let p: usize = v
                    .parse()
                    .map_err(|_| format!("partition={v}: not a number"))?;
                if p >= regs::MAX_PARTITIONS {
                    return Err(format!(
                        "partition={p}: at most {} partitions",
                        regs::MAX_PARTITIONS
                    ));
                }
                c.partition = Some(p);
            }
            "reg" if !v.is_empty() => c.regs = v.split('|').map(str::to_string).collect(),
            "rw" => {
                c.rw = match v {
                    "r" => Some(false),
                    "w" => Some(true),
                    _ => return Err(format!("rw={v}: want r or w")),
                }
            }
            "region" if !v.is_empty() => c.region = v.into(),
            _ => return Err(format!("unknown argument {a:?}\n{USAGE}")),
        }
    }
    Ok(c)
}

/// One access to the register BAR, as the plugin saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Nanoseconds since the plugin was installed.
    pub time_ns: u64,
    pub vcpu: u32,
    /// Offset inside BAR 0.
    pub offset: u64,
    pub size: u32,
    pub value: u64,
    pub write: bool,
}

fn partition_of(offset: u64) -> Option<usize> {
    match regs::block_of(offset) {
        Some((Block::Global, _, _)) | None => None,
        Some((_, p, _)) => Some(p),
    }
}

/// The access as a line, or None when the filters drop it.
pub fn format(c: &Config, a: &Access) -> Option<String> {
    if c.rw.is_some_and(|w| w != a.write) {
        return None;
    }
    if c.partition.is_some() && partition_of(a.offset) != c.partition {
        return None;
    }
    let decoded = regs::decode(a.offset);
    let name = decoded.as_ref().map(|d| d.name());
    if !c.regs.is_empty() {
        let n = name.as_deref().unwrap_or("");
        if !c.regs.iter().any(|r| n.contains(r.as_str())) {
            return None;
        }
    }
    let mut s = String::new();
    match c.format {
        Format::Text => {
            let _ = write!(
                s,
                "{:>12} vcpu{} {}{} {:#08x} {}",
                a.time_ns,
                a.vcpu,
                if a.write { 'W' } else { 'R' },
                a.size,
                a.offset,
                regs::format_access(a.offset, a.size, a.value, a.write)
            );
        }
        Format::Json => {
            let _ = write!(
                s,
                "{{\"t_ns\":{},\"vcpu\":{},\"op\":\"{}\",\"size\":{},\"offset\":{},\"value\":{}",
                a.time_ns,
                a.vcpu,
                if a.write { "write" } else { "read" },
                a.size,
                a.offset,
                a.value
            );
            match &decoded {
                Some(d) => {
                    let _ = write!(s, ",\"reg\":\"{}\"", name.as_deref().unwrap_or(""));
                    if let Some(p) = partition_of(a.offset) {
                        let _ = write!(s, ",\"partition\":{p}");
                    }
                    if d.byte == 0 && a.size >= d.reg.width as u32 && !d.reg.fields.is_empty() {
                        s.push_str(",\"fields\":{");
                        for (i, f) in d.reg.fields.iter().enumerate() {
                            let v = f.extract(a.value);
                            let _ = write!(s, "{}\"{}\":", if i > 0 { "," } else { "" }, f.name);
                            match f.value_name(v) {
                                Some(label) => {
                                    let _ = write!(s, "\"{label}\"");
                                }
                                None => {
                                    let _ = write!(s, "{v}");
                                }
                            }
                        }
                        s.push('}');
                    }
                }
                None => s.push_str(",\"reg\":null"),
            }
            s.push('}');
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vdevice::regs::RegId;

    fn access(id: RegId, p: usize, value: u64, write: bool) -> Access {
        Access {
            time_ns: 42,
            vcpu: 1,
            offset: regs::offset_of(id, p, 0),
            size: 4,
            value,
            write,
        }
    }

    #[test]
    fn arguments_parse_and_bad_ones_say_why() {
        let c = parse_args(&[
            "out=/tmp/t",
            "format=json",
            "partition=3",
            "reg=STATUS|DOORBELL",
        ])
        .unwrap();
        assert_eq!(c.out, "/tmp/t");
        assert_eq!(c.format, Format::Json);
        assert_eq!(c.partition, Some(3));
        assert_eq!(c.regs, ["STATUS", "DOORBELL"]);
        for (bad, why) in [
            ("partition=64", "at most 64"),
            ("partition=x", "not a number"),
            ("bar=2", "zero-copy"),
            ("format=xml", "text or json"),
            ("colour=red", "unknown argument"),
            ("nokey", "not key=value"),
        ] {
            let e = parse_args(&[bad]).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn text_lines_name_the_register_and_its_fields() {
        let c = Config::default();
        let a = access(RegId::WStatus, 2, 1, false);
        let line = format(&c, &a).unwrap();
        let want = std::format!(
            "          42 vcpu1 R4 {:#08x} PART[2].STATUS -> 0x1 {{STATE=IDLE}}",
            a.offset
        );
        assert_eq!(line, want);
        let line = format(
            &c,
            &Access {
                offset: regs::REG_BAR_SIZE - 8,
                ..access(RegId::Id, 0, 7, true)
            },
        )
        .unwrap();
        assert!(line.contains("(unmapped, 4 bytes)"), "{line}");
    }

    #[test]
    fn json_lines_carry_fields_and_partition() {
        let c = Config {
            format: Format::Json,
            ..Config::default()
        };
        let line = format(&c, &access(RegId::WStatus, 2, 1, false)).unwrap();
        assert_eq!(
            line,
            format!(
                "{{\"t_ns\":42,\"vcpu\":1,\"op\":\"read\",\"size\":4,\"offset\":{},\"value\":1,\
                 \"reg\":\"PART[2].STATUS\",\"partition\":2,\"fields\":{{\"STATE\":\"IDLE\"}}}}",
                regs::offset_of(RegId::WStatus, 2, 0)
            )
        );
    }

    #[test]
    fn filters_drop_what_was_not_asked_for() {
        let c = parse_args(&["partition=1", "reg=STATUS", "rw=r"]).unwrap();
        assert!(format(&c, &access(RegId::WStatus, 1, 1, false)).is_some());
        assert!(format(&c, &access(RegId::WStatus, 0, 1, false)).is_none());
        assert!(format(&c, &access(RegId::WStatus, 1, 1, true)).is_none());
        assert!(format(&c, &access(RegId::WIntrMask, 1, 1, false)).is_none());
        assert!(format(&c, &access(RegId::Id, 0, 1, false)).is_none());
    }
}
