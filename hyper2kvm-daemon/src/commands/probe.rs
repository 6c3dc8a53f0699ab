//! `hyper2kvm probe FILE... [--json]`.

use std::process::ExitCode;

use hyper2kvm::{Appliance, DiskImage, ProbeOptions, Probed};

use crate::cli::ProbeArgs;
use crate::output::{for_each_input, human_bytes};

fn describe_disk(d: &DiskImage, indent: &str) {
    println!(
        "{indent}{}: {} ({}), virtual size {} ({} bytes), allocated {}",
        d.path.display(),
        d.format,
        d.subformat,
        human_bytes(d.virtual_size),
        d.virtual_size,
        human_bytes(d.allocated_size)
    );
    if let Some(r) = d.region {
        println!("{indent}  in place at byte {} ({} bytes) of the archive", r.offset, r.size);
    }
    if d.files.len() > 1 {
        for f in &d.files {
            println!("{indent}  file: {}", f.display());
        }
    }
    if let Some(c) = &d.cross_check {
        let verdict = if c.agrees { "agrees" } else { "DISAGREES" };
        println!("{indent}  qemu-img {verdict}: {} with {} bytes", c.format, c.virtual_size);
    }
    for w in &d.warnings {
        println!("{indent}  warning: {w}");
    }
    if let Some(b) = &d.backing {
        println!("{indent}  backing:");
        describe_disk(b, &format!("{indent}    "));
    }
}

fn describe_appliance(a: &Appliance) {
    let o = &a.ovf;
    println!(
        "{}: {:?} appliance {:?}, descriptor {}",
        a.path.display(),
        a.container,
        o.name,
        a.descriptor
    );
    println!(
        "  cpus {}, memory {} MiB, firmware {}{}, os {}",
        o.cpus.map_or("?".into(), |c| c.to_string()),
        o.memory_mib.map_or("?".into(), |m| m.to_string()),
        o.firmware,
        if o.secure_boot { " (secure boot)" } else { "" },
        o.os_type.as_deref().or(o.os_description.as_deref()).unwrap_or("unknown")
    );
    match &a.manifest {
        Some(m) if m.verified => {
            println!("  manifest {}: {} checksums verified", m.file, m.entries)
        }
        Some(m) => println!("  manifest {}: {} checksums NOT verified", m.file, m.entries),
        None => println!("  no manifest"),
    }
    for d in &a.disks {
        println!(
            "  disk {} ({}), capacity {}",
            d.disk_id,
            d.href.as_deref().unwrap_or("blank"),
            human_bytes(d.capacity)
        );
        if let Some(img) = &d.image {
            describe_disk(img, "    ");
        }
    }
    for n in &o.nics {
        println!(
            "  nic {:?}: mac {}, network {}",
            n.name,
            n.mac.as_deref().unwrap_or("-"),
            n.network.as_deref().unwrap_or("-")
        );
    }
    for w in &a.warnings {
        println!("  warning: {w}");
    }
}

/// Runs the subcommand.
pub fn run(args: &ProbeArgs) -> ExitCode {
    let opts = ProbeOptions { cross_check: !args.no_cross_check, verify_manifest: !args.no_verify };
    for_each_input(
        &args.files,
        args.json,
        |path| hyper2kvm::probe(path, &opts),
        |_, p| match p {
            Probed::Disk(d) => describe_disk(d, ""),
            Probed::Appliance(a) => describe_appliance(a),
        },
    )
}
