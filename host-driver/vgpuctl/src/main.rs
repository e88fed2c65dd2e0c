//! vgpuctl: list GPUs, vGPU types and vGPUs; create and destroy vGPUs; show
//! a vGPU's partition, VRAM slice and counters (sysfs + vgpu_rm debugfs).

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use vgpuctl::{field, new_uuid, rm_table, Gpu, Result, Vgpu};

#[derive(Parser)]
#[command(name = "vgpuctl", version, about = "Manage vGPUs of vgpu-pci GPUs")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// GPUs, their types (with available instances) and vGPUs
    List,
    /// vGPU types of a GPU
    Types {
        /// PCI name of the GPU (default: the only one)
        #[arg(long)]
        gpu: Option<String>,
    },
    /// Create a vGPU; prints its UUID
    Create {
        /// type name as listed by `vgpuctl types` (with or without the driver prefix)
        #[arg(long = "type")]
        type_name: String,
        #[arg(long)]
        gpu: Option<String>,
        /// UUID to use (default: a random one)
        #[arg(long)]
        uuid: Option<String>,
    },
    /// Destroy a vGPU
    Destroy { uuid: String },
    /// A vGPU's partition, VRAM slice and counters
    Show { uuid: String },
}

fn list() -> Result<()> {
    let gpus = Gpu::all()?;
    if gpus.is_empty() {
        println!("no vGPU-capable GPUs (is vgpu_vfio loaded?)");
    }
    for g in &gpus {
        println!("gpu {}", g.name);
        types(g)?;
    }
    for v in Vgpu::all()? {
        println!(
            "vgpu {} gpu={} type={} iommu_group={}",
            v.uuid,
            v.gpu,
            v.type_id,
            v.iommu_group.map_or("-".into(), |g| g.to_string())
        );
    }
    Ok(())
}

fn types(g: &Gpu) -> Result<()> {
    for t in g.types()? {
        println!(
            "  type {} available={} name=\"{}\" {}",
            t.id, t.available, t.name, t.description
        );
    }
    Ok(())
}

fn show(uuid: &str) -> Result<()> {
    let v = Vgpu::get(uuid)?;
    println!("vgpu {} gpu={} type={}", v.uuid, v.gpu, v.type_id);
    let parts = rm_table(&v.gpu, "partitions")?;
    match parts.iter().find(|r| field(r, "owner") == Some(uuid)) {
        Some(r) => {
            for (k, val) in r {
                println!("  {k}={val}");
            }
        }
        None => println!("  (the RM lists no partition for it)"),
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::List => list(),
        Cmd::Types { gpu } => types(&Gpu::find(gpu.as_deref())?),
        Cmd::Create {
            type_name,
            gpu,
            uuid,
        } => {
            let g = Gpu::find(gpu.as_deref())?;
            let uuid = match uuid {
                Some(u) => u,
                None => new_uuid()?,
            };
            g.create(&type_name, &uuid)?;
            println!("{uuid}");
            Ok(())
        }
        Cmd::Destroy { uuid } => Vgpu::destroy(&uuid),
        Cmd::Show { uuid } => show(&uuid),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vgpuctl: {e}");
            ExitCode::FAILURE
        }
    }
}
