//! SPEC.md embeds the register tables generated from the register table;
//! this test fails when they drift. `UPDATE_SPEC=1` rewrites them.

use std::path::Path;

const BEGIN: &str = "<!-- BEGIN GENERATED REGISTER TABLES: edit vdevice/src/regs/table.rs, then run UPDATE_SPEC=1 cargo test -p vdevice --test spec -->\n";
const END: &str = "<!-- END GENERATED REGISTER TABLES -->";

#[test]
fn spec_md_register_tables_match_the_register_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("SPEC.md");
    let spec = std::fs::read_to_string(&path).expect("SPEC.md");
    let start = spec.find(BEGIN).expect("SPEC.md lacks the BEGIN marker") + BEGIN.len();
    let end = spec.find(END).expect("SPEC.md lacks the END marker");
    let want = vdevice::regs::spec_tables();
    if spec[start..end] != want {
        if std::env::var_os("UPDATE_SPEC").is_some() {
            let new = format!("{}{}{}", &spec[..start], want, &spec[end..]);
            std::fs::write(&path, new).unwrap();
            return;
        }
        panic!("SPEC.md register tables differ from vdevice/src/regs/table.rs; run UPDATE_SPEC=1 cargo test -p vdevice --test spec and review the diff");
    }
}

#[test]
fn spec_md_names_every_fault_code_opcode_and_injection() {
    let spec =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("SPEC.md")).unwrap();
    let prose = &spec[..spec.find(BEGIN).unwrap()];
    for (_, name) in vdevice::regs::FaultCode::VALUES
        .iter()
        .chain(vdevice::regs::InjectKind::VALUES)
        .chain(vdevice::regs::AccessError::VALUES)
    {
        assert!(
            prose.contains(&format!("`{name}`")),
            "SPEC.md prose does not explain `{name}`"
        );
    }
    for op in vdevice::command::Opcode::ALL {
        let name = op.name();
        assert!(
            prose.contains(&format!("`{name}`")),
            "SPEC.md prose does not explain `{name}`"
        );
    }
}

#[test]
fn host_driver_register_header_matches_the_register_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host-driver/include/vgpu_regs.h");
    let want = vdevice::regs::c_header();
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        if std::env::var_os("UPDATE_SPEC").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, want).unwrap();
            return;
        }
        panic!("host-driver/include/vgpu_regs.h differs from vdevice/src/regs/table.rs; run UPDATE_SPEC=1 cargo test -p vdevice --test spec");
    }
}

/// The reset values the manual states are the ones the device has: on a
/// new device and after DEVICE_RESET undoes a driver's settings.
#[test]
fn registers_read_their_tables_reset_value() {
    use vdevice::regs::{self, Access, Block, RegId, Reset, REGISTERS};
    use vdevice::testing::Harness;
    use vdevice::DeviceConfig;

    let h = Harness::new(
        DeviceConfig {
            vram_size_bytes: 16 << 20,
            partitions: 2,
            engines: 1,
            ..DeviceConfig::default()
        },
        4096,
    );
    let check = |when: &str| {
        for r in REGISTERS {
            let Reset::Value(want) = r.reset else {
                continue;
            };
            // Write-only registers read 0; TIMESTAMPs count from creation.
            if r.access == Access::Wo || r.name.ends_with("TIMESTAMP") {
                continue;
            }
            let instances = if r.block == Block::Global { 1 } else { 2 };
            for p in 0..instances {
                for e in 0..r.count as usize {
                    assert_eq!(h.reg(r.id, p, e), want, "{when}: {:?}[{p}][{e}]", r.id);
                }
            }
        }
    };
    check("new device");
    h.set(RegId::InjectDelayUs, 0, 0, 7);
    h.set(RegId::SchedTimesliceUs, 0, 0, 9);
    h.set(RegId::PtWeight, 1, 0, 200);
    h.set(RegId::WScratch, 0, 0, 0x1234);
    assert_eq!(h.reg(RegId::PtWeight, 1, 0), 200);
    h.set(RegId::DeviceReset, 0, 0, 1);
    check("after DEVICE_RESET");
    assert_eq!(
        h.reg(RegId::InjectDelayUs, 0, 0),
        u64::from(regs::INJECT_DELAY_US_RESET)
    );
}

/// SPEC.md's table of the command bytes (section 6) says what
/// command::layout and CmdFlags say.
#[test]
fn spec_md_command_layout_matches_the_command_format() {
    use vdevice::command::{layout, CmdFlags};
    let spec =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("SPEC.md")).unwrap();
    let bytes = |start: usize, len: usize| {
        if len == 1 {
            format!("| {start} |")
        } else {
            format!("| {start}–{} |", start + len - 1)
        }
    };
    for (name, offset, len) in layout::FIELDS {
        let name = name.to_lowercase();
        let row = bytes(offset, len);
        let want = if len == 1 {
            format!("{row} {name}")
        } else {
            format!("{row} `{name}`")
        };
        assert!(spec.contains(&want), "SPEC.md lacks the row {want:?}");
    }
    for r in layout::RESERVED {
        let want = format!("{} reserved, 0 |", bytes(r.start, r.len()));
        assert!(spec.contains(&want), "SPEC.md lacks the row {want:?}");
    }
    let flags = [
        ("DST_SYSMEM", CmdFlags::new().with_dst_sysmem(true)),
        ("SRC_SYSMEM", CmdFlags::new().with_src_sysmem(true)),
        ("INTR", CmdFlags::new().with_intr(true)),
    ];
    for (name, flag) in flags {
        let want = format!("bit {} `{name}`", flag.into_bits().trailing_zeros());
        assert!(spec.contains(&want), "SPEC.md lacks {want:?}");
    }
}
