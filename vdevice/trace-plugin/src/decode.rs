//! What the plugin does with one access, without QEMU: parse the plugin's
//! arguments, filter, and print the access decoded by vdevice's register
//! table as a text line or a JSON line. Also the device's side: device
//! events (vdevice::events) as lines of their own, a refused access
//! annotated with the device's reason, and both merged in time order.

use std::fmt::Write;
use vdevice::events::{Event, EventKind, IrqCause, IrqFate};
use vdevice::regs::{self, Block};
use vdevice::Function;

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
    /// Show device events (`events=on|off`, default on).
    pub events: bool,
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
            events: true,
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
  region=NAME       memory-region name to trace (default vgpu-pci.regs)
  events=on|off     device events (refusals with their reason, commands,
                    interrupts, partition states); partition= filters them,
                    reg= and rw= apply to refused accesses only";

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
            "events" => {
                c.events = match v {
                    "on" | "1" => true,
                    "off" | "0" => false,
                    _ => return Err(format!("events={v}: want on or off")),
                }
            }
            _ => return Err(format!("unknown argument {a:?}\n{USAGE}")),
        }
    }
    Ok(c)
}

/// One access to a register BAR, as the plugin saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Nanoseconds since the plugin was installed.
    pub time_ns: u64,
    pub vcpu: u32,
    /// Whose register BAR: the PF's, or VF n's (SR-IOV mode: partition n's
    /// window).
    pub function: Function,
    /// Offset inside that BAR.
    pub offset: u64,
    pub size: u32,
    pub value: u64,
    pub write: bool,
}

/// The function whose register BAR a memory region is: vgpu-pci's own
/// (`region`), or VF n's (`vgpu-pci-vfN.regs`, SR-IOV mode, traced with
/// the default region only).
pub fn region_function(c: &Config, name: &[u8]) -> Option<Function> {
    if name == c.region.as_bytes() {
        return Some(Function::Pf);
    }
    if c.region != REGS_REGION {
        return None;
    }
    let n = name.strip_prefix(b"vgpu-pci-vf")?.strip_suffix(b".regs")?;
    std::str::from_utf8(n).ok()?.parse().ok().map(Function::Vf)
}

fn partition_of(function: Function, offset: u64) -> Option<usize> {
    if let Function::Vf(n) = function {
        return Some(usize::from(n));
    }
    match regs::block_of(offset) {
        Some((Block::Global, _, _)) | None => None,
        Some((_, p, _)) => Some(p),
    }
}

/// The access as a line, or None when the filters drop it.
pub fn format(c: &Config, a: &Access) -> Option<String> {
    format_access(c, a, None)
}

/// A refused access as a line: the access's own line with the device's
/// reason appended (`  REJECTED BAD_VALUE (ring 0 off: ...)`, or a
/// `"rejected"` object in JSON). `e` is the device's REJECTED event.
pub fn format_rejected(c: &Config, a: &Access, e: &Event) -> Option<String> {
    format_access(c, a, Some(&e.kind))
}

fn format_access(c: &Config, a: &Access, rejected: Option<&EventKind>) -> Option<String> {
    if c.rw.is_some_and(|w| w != a.write) {
        return None;
    }
    if c.partition.is_some() && partition_of(a.function, a.offset) != c.partition {
        return None;
    }
    let bar = match a.function {
        Function::Pf => regs::REG_BAR,
        Function::Vf(_) => regs::VF_REG_BAR,
    };
    let decoded = regs::decode_function(a.function, bar, a.offset);
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
                regs::format_function_access(a.function, bar, a.offset, a.size, a.value, a.write)
            );
            if let Some(r) = rejected.and_then(EventKind::rejection) {
                let _ = write!(s, "  {r}");
            }
        }
        Format::Json => {
            let _ = write!(
                s,
                "{{\"t_ns\":{},\"vcpu\":{},\"function\":\"{}\",\"op\":\"{}\",\"size\":{},\"offset\":{},\"value\":{}",
                a.time_ns,
                a.vcpu,
                a.function,
                if a.write { "write" } else { "read" },
                a.size,
                a.offset,
                a.value
            );
            match &decoded {
                Some(d) => {
                    let _ = write!(s, ",\"reg\":\"{}\"", name.as_deref().unwrap_or(""));
                    if let Some(p) = partition_of(a.function, a.offset) {
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
            if let Some(EventKind::Rejected { code, why, .. }) = rejected {
                let _ = write!(
                    s,
                    ",\"rejected\":{{\"code\":\"{code}\",\"why\":\"{}\"}}",
                    json_escape(why)
                );
            }
            s.push('}');
        }
    }
    Some(s)
}

fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A device event as a line (`time dev   PART[0] ring 0 #5 FILL done`), or
/// None when the filters drop it. `partition=` applies to every event
/// with a partition (and drops those without); `reg=` and `rw=` apply to
/// refused accesses (other events are not register accesses). The time is
/// the event's: a plugin that receives events synchronously stamps them
/// with its own clock so that they sort among its accesses.
pub fn format_event(c: &Config, e: &Event) -> Option<String> {
    if !c.events {
        return None;
    }
    if c.partition.is_some() && e.kind.partition() != c.partition {
        return None;
    }
    if let EventKind::Rejected {
        function,
        bar,
        offset,
        write,
        ..
    } = e.kind
    {
        if c.rw.is_some_and(|w| w != write) {
            return None;
        }
        if !c.regs.is_empty() {
            let n = regs::decode_function(function, bar, offset)
                .map(|d| d.name())
                .unwrap_or_default();
            if !c.regs.iter().any(|r| n.contains(r.as_str())) {
                return None;
            }
        }
    }
    let mut s = String::new();
    match c.format {
        Format::Text => {
            let _ = write!(s, "{:>12} dev   ", e.time_ns);
            match &e.kind {
                EventKind::Rejected {
                    function,
                    bar,
                    offset,
                    size,
                    write,
                    value,
                    ..
                } => {
                    let rw = if *write { 'W' } else { 'R' };
                    let _ = write!(s, "{rw}{size} {offset:#08x} ");
                    if *function != Function::Pf {
                        // A VF's BARs: its register BAR is its partition's window.
                        s.push_str(&regs::format_function_access(
                            *function, *bar, *offset, *size, *value, *write,
                        ));
                    } else if *bar == regs::REG_BAR {
                        s.push_str(&regs::format_access(*offset, *size, *value, *write));
                    } else {
                        let _ = write!(s, "BAR{bar}");
                    }
                    let r = e.kind.rejection().unwrap_or_default();
                    let _ = write!(s, "  {r}");
                }
                k => {
                    let _ = write!(s, "{k}");
                }
            }
        }
        Format::Json => {
            let _ = write!(s, "{{\"t_ns\":{},\"dev\":\"{}\"", e.time_ns, e.kind.name());
            if let Some(p) = e.kind.partition() {
                let _ = write!(s, ",\"partition\":{p}");
            }
            event_json_fields(&mut s, &e.kind);
            let _ = write!(s, ",\"text\":\"{}\"}}", json_escape(&e.kind.to_string()));
        }
    }
    Some(s)
}

fn event_json_fields(s: &mut String, k: &EventKind) {
    let cmd = |s: &mut String, ring: usize, index: u32, op: &str| {
        let _ = write!(s, ",\"ring\":{ring},\"index\":{index},\"opcode\":\"{op}\"");
    };
    match k {
        EventKind::Rejected {
            function,
            bar,
            offset,
            size,
            write,
            value,
            code,
            why,
        } => {
            if *function != Function::Pf {
                let _ = write!(s, ",\"function\":\"{function}\"");
            }
            let _ = write!(
                s,
                ",\"bar\":{bar},\"offset\":{offset},\"size\":{size},\"op\":\"{}\",\"value\":{value},\"code\":\"{code}\",\"why\":\"{}\"",
                if *write { "write" } else { "read" },
                json_escape(why)
            );
            if let Some(d) = regs::decode_function(*function, *bar, *offset) {
                let _ = write!(s, ",\"reg\":\"{}\"", d.name());
            }
        }
        EventKind::CmdTaken {
            ring,
            index,
            opcode,
            ..
        }
        | EventKind::CmdDone {
            ring,
            index,
            opcode,
            ..
        } => cmd(s, *ring, *index, opcode.name()),
        EventKind::CmdAborted {
            ring,
            index,
            opcode,
            ..
        } => cmd(s, *ring, *index, opcode.map_or("", |o| o.name())),
        EventKind::CmdFault {
            ring,
            index,
            opcode,
            code,
            addr,
            write,
            ..
        } => {
            cmd(s, *ring, *index, opcode.map_or("", |o| o.name()));
            let _ = write!(s, ",\"code\":\"{code}\",\"addr\":{addr},\"write\":{write}");
        }
        EventKind::Irq {
            vector,
            cause,
            fate,
            ..
        } => {
            let cause = match cause {
                IrqCause::Fence => "FENCE".to_string(),
                IrqCause::Idle => "IDLE".to_string(),
                IrqCause::Fault => "FAULT".to_string(),
                IrqCause::Host(bits) => {
                    regs::format_fields(regs::register(regs::RegId::IntrStatus), u64::from(*bits))
                }
                IrqCause::Display(bits) => {
                    regs::format_fields(regs::register(regs::RegId::WIntrStatus), u64::from(*bits))
                }
            };
            let fate = match fate {
                IrqFate::Sent => "sent",
                IrqFate::Masked => "masked",
                IrqFate::Dropped => "dropped",
                IrqFate::Late => "late",
            };
            let _ = write!(
                s,
                ",\"vector\":{vector},\"cause\":\"{cause}\",\"fate\":\"{fate}\""
            );
        }
        EventKind::State { from, to, .. } => {
            let _ = write!(s, ",\"from\":\"{from}\",\"to\":\"{to}\"");
        }
        EventKind::XlateFault { addr, write, .. } => {
            let _ = write!(s, ",\"addr\":{addr},\"write\":{write}");
        }
        EventKind::XlateResolved { action, .. } => {
            let _ = write!(s, ",\"action\":\"{action}\"");
        }
        EventKind::PartitionReset { .. } | EventKind::DeviceReset => {}
    }
}

/// Whether `e` is the device's refusal of access `a` (the same function's register BAR, same offset,
/// size, direction and, for a write, value).
pub fn refuses(e: &Event, a: &Access) -> bool {
    match e.kind {
        EventKind::Rejected {
            function,
            bar,
            offset,
            size,
            write,
            value,
            ..
        } => {
            function == a.function
                && bar == regs::REG_BAR
                && offset == a.offset
                && size == a.size
                && write == a.write
                && (!write || value == a.value)
        }
        _ => false,
    }
}

/// The lines of an access and of what the device did inside it (`caused`,
/// in order, as a live tracer collects them): the access's line, with its
/// refusal appended if one of `caused` is it, then the other events,
/// stamped with the access's time.
pub fn access_lines(c: &Config, a: &Access, mut caused: Vec<Event>) -> Vec<String> {
    let line = match caused.iter().position(|e| refuses(e, a)) {
        Some(i) => format_rejected(c, a, &caused.remove(i)),
        None => format(c, a),
    };
    let mut out: Vec<String> = line.into_iter().collect();
    for mut e in caused {
        e.time_ns = a.time_ns;
        out.extend(format_event(c, &e));
    }
    out
}

/// How far apart (ns) a refused access and its REJECTED event may be
/// stamped and still be paired (they happen in the same access).
pub const REJECTION_WINDOW_NS: u64 = 1_000_000;

/// A decoded trace: register accesses and device events merged in time
/// order (an access before an event stamped at the same time), each
/// REJECTED event attached to the access it refused (same offset, size,
/// direction and, for writes, value; the nearest in time within
/// [`REJECTION_WINDOW_NS`]), filters applied. Rejections with no matching
/// access (an access the tracer did not see) get lines of their own.
pub fn merge(c: &Config, accesses: &[Access], events: &[Event]) -> Vec<String> {
    let mut acc: Vec<&Access> = accesses.iter().collect();
    acc.sort_by_key(|a| a.time_ns);
    let mut evs: Vec<&Event> = events.iter().collect();
    evs.sort_by_key(|e| e.time_ns);
    let mut refused: Vec<Option<&Event>> = vec![None; acc.len()];
    let mut standalone = Vec::new();
    for e in evs {
        if !matches!(e.kind, EventKind::Rejected { .. }) {
            standalone.push(e);
            continue;
        }
        let best = acc
            .iter()
            .enumerate()
            .filter(|(i, a)| {
                refused[*i].is_none()
                    && refuses(e, a)
                    && a.time_ns.abs_diff(e.time_ns) <= REJECTION_WINDOW_NS
            })
            .min_by_key(|(_, a)| a.time_ns.abs_diff(e.time_ns))
            .map(|(i, _)| i);
        match best {
            Some(i) => refused[i] = Some(e),
            None => standalone.push(e),
        }
    }
    let mut out = Vec::new();
    let mut ev = standalone.into_iter().peekable();
    for (a, r) in acc.iter().zip(&refused) {
        while let Some(e) = ev.next_if(|e| e.time_ns < a.time_ns) {
            out.extend(format_event(c, e));
        }
        out.extend(match r {
            Some(e) => format_rejected(c, a, e),
            None => format(c, a),
        });
    }
    out.extend(ev.filter_map(|e| format_event(c, e)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vdevice::command::Opcode;
    use vdevice::regs::RegId;

    fn access(id: RegId, p: usize, value: u64, write: bool) -> Access {
        Access {
            time_ns: 42,
            vcpu: 1,
            function: Function::Pf,
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
                "{{\"t_ns\":42,\"vcpu\":1,\"function\":\"PF\",\"op\":\"read\",\"size\":4,\"offset\":{},\"value\":1,\
                 \"reg\":\"PART[2].STATUS\",\"partition\":2,\"fields\":{{\"STATE\":\"IDLE\"}}}}",
                regs::offset_of(RegId::WStatus, 2, 0)
            )
        );
    }

    fn ev(time_ns: u64, kind: EventKind) -> Event {
        Event { time_ns, kind }
    }

    fn refused_doorbell(time_ns: u64) -> (Access, Event) {
        let a = Access {
            time_ns,
            offset: regs::offset_of(RegId::WDoorbell, 0, 0),
            ..access(RegId::WDoorbell, 0, 1, true)
        };
        let e = ev(
            time_ns + 10,
            EventKind::Rejected {
                function: Function::Pf,
                bar: 0,
                offset: a.offset,
                size: 4,
                write: true,
                value: 1,
                code: regs::AccessError::BadValue,
                why: "ring 0 off: RING_SIZE is 0".into(),
            },
        );
        (a, e)
    }

    #[test]
    fn a_refused_access_carries_the_reason_and_events_have_lines() {
        let c = Config::default();
        let (a, e) = refused_doorbell(42);
        assert_eq!(
            format_rejected(&c, &a, &e).unwrap(),
            "          42 vcpu1 W4 0x011000 PART[0].DOORBELL[0] <- 0x1  \
             REJECTED BAD_VALUE (ring 0 off: RING_SIZE is 0)"
        );
        assert_eq!(
            format_event(&c, &e).unwrap(),
            "          52 dev   W4 0x011000 PART[0].DOORBELL[0] <- 0x1  \
             REJECTED BAD_VALUE (ring 0 off: RING_SIZE is 0)"
        );
        let done = ev(
            7,
            EventKind::CmdDone {
                partition: 0,
                ring: 0,
                index: 5,
                opcode: Opcode::Fill,
            },
        );
        assert_eq!(
            format_event(&c, &done).unwrap(),
            "           7 dev   PART[0] ring 0 #5 FILL done"
        );
        let fault = ev(
            8,
            EventKind::CmdFault {
                partition: 0,
                ring: 0,
                index: 6,
                opcode: Some(Opcode::Copy),
                code: regs::FaultCode::VramOutOfBounds,
                addr: 0x2000000,
                write: true,
            },
        );
        assert_eq!(
            format_event(&c, &fault).unwrap(),
            "           8 dev   PART[0] ring 0 #6 COPY FAULT VRAM_OOB @0x2000000 write"
        );
        let state = ev(
            9,
            EventKind::State {
                partition: 0,
                from: regs::PartitionState::Idle,
                to: regs::PartitionState::Busy,
            },
        );
        assert_eq!(
            format_event(&c, &state).unwrap(),
            "           9 dev   PART[0] IDLE -> BUSY"
        );
    }

    #[test]
    fn json_carries_events_and_rejections() {
        let c = Config {
            format: Format::Json,
            ..Config::default()
        };
        let (a, e) = refused_doorbell(42);
        let line = format_rejected(&c, &a, &e).unwrap();
        assert!(
            line.ends_with(
                ",\"rejected\":{\"code\":\"BAD_VALUE\",\"why\":\"ring 0 off: RING_SIZE is 0\"}}"
            ),
            "{line}"
        );
        let irq = ev(
            3,
            EventKind::Irq {
                vector: 3,
                partition: Some(0),
                cause: IrqCause::Fault,
                fate: IrqFate::Sent,
            },
        );
        assert_eq!(
            format_event(&c, &irq).unwrap(),
            "{\"t_ns\":3,\"dev\":\"IRQ\",\"partition\":0,\"vector\":3,\"cause\":\"FAULT\",\
             \"fate\":\"sent\",\"text\":\"MSI-X 3 (PART[0] FAULT)\"}"
        );
    }

    #[test]
    fn filters_apply_to_events_where_they_make_sense() {
        let (_, refused) = refused_doorbell(42);
        let state = |p| {
            ev(
                1,
                EventKind::State {
                    partition: p,
                    from: regs::PartitionState::Idle,
                    to: regs::PartitionState::Busy,
                },
            )
        };
        let c = parse_args(&["partition=1"]).unwrap();
        assert!(format_event(&c, &state(1)).is_some());
        assert!(format_event(&c, &state(0)).is_none());
        assert!(format_event(&c, &ev(1, EventKind::DeviceReset)).is_none());
        assert!(format_event(&c, &refused).is_none());
        let c = parse_args(&["reg=STATUS"]).unwrap();
        assert!(format_event(&c, &refused).is_none());
        assert!(format_event(&c, &state(0)).is_some());
        let c = parse_args(&["rw=r"]).unwrap();
        assert!(format_event(&c, &refused).is_none());
        let c = parse_args(&["reg=DOORBELL", "rw=w"]).unwrap();
        assert!(format_event(&c, &refused).is_some());
        let c = parse_args(&["events=off"]).unwrap();
        assert!(format_event(&c, &state(0)).is_none());
        assert!(parse_args(&["events=maybe"]).is_err());
    }

    #[test]
    fn merge_interleaves_in_time_and_pairs_rejections() {
        let c = Config::default();
        let (refused_access, rejection) = refused_doorbell(100);
        let before = Access {
            time_ns: 50,
            ..access(RegId::WStatus, 0, 1, false)
        };
        let done = ev(
            70,
            EventKind::CmdDone {
                partition: 0,
                ring: 0,
                index: 0,
                opcode: Opcode::Nop,
            },
        );
        let lost = ev(900, EventKind::DeviceReset);
        let lines = merge(
            &c,
            &[refused_access, before],
            &[lost.clone(), rejection, done],
        );
        let shape: Vec<&str> = lines
            .iter()
            .map(|l| l.split_whitespace().nth(1).unwrap())
            .collect();
        assert_eq!(shape, ["vcpu1", "dev", "vcpu1", "dev"], "{lines:#?}");
        assert!(lines[2].ends_with("REJECTED BAD_VALUE (ring 0 off: RING_SIZE is 0)"));
        assert!(lines[3].ends_with("DEVICE_RESET"));
    }

    #[test]
    fn an_access_carries_its_refusal_and_is_followed_by_what_it_caused() {
        let c = Config::default();
        let (a, rejection) = refused_doorbell(100);
        let reset = ev(90, EventKind::PartitionReset { partition: 0 });
        let lines = access_lines(&c, &a, vec![reset.clone(), rejection.clone()]);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[0].contains("REJECTED BAD_VALUE"), "{}", lines[0]);
        assert!(lines[1].trim_start().starts_with("100 dev"), "{}", lines[1]);
        // Another access's refusal (other value) is not this one's.
        let other = Access { value: 2, ..a };
        assert!(!refuses(&rejection, &other));
        let lines = access_lines(&c, &other, vec![rejection]);
        assert!(!lines[0].contains("REJECTED"), "{}", lines[0]);
        assert!(lines[1].contains("dev   W4") && lines[1].contains("REJECTED"));
        assert_eq!(access_lines(&c, &a, vec![]).len(), 1);
    }

    #[test]
    fn a_vfs_accesses_decode_with_its_partitions_names() {
        let c = Config::default();
        assert_eq!(region_function(&c, b"vgpu-pci.regs"), Some(Function::Pf));
        assert_eq!(
            region_function(&c, b"vgpu-pci-vf3.regs"),
            Some(Function::Vf(3))
        );
        for other in [
            &b"vgpu-pci-vf.regs"[..],
            b"vgpu-pci-vfx.regs",
            b"serial",
            b"vgpu-pci.vram",
        ] {
            assert_eq!(region_function(&c, other), None, "{other:?}");
        }
        let custom = parse_args(&["region=other"]).unwrap();
        assert_eq!(region_function(&custom, b"vgpu-pci-vf3.regs"), None);
        let a = Access {
            function: Function::Vf(3),
            offset: regs::window_offset(RegId::WDoorbell, 0),
            ..access(RegId::Id, 0, 2, true)
        };
        let line = format(&c, &a).unwrap();
        assert!(line.ends_with("VF3 PART[3].DOORBELL[0] <- 0x2"), "{line}");
        assert!(format(&parse_args(&["partition=3"]).unwrap(), &a).is_some());
        assert!(format(&parse_args(&["partition=0"]).unwrap(), &a).is_none());
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
