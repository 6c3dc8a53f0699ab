//! `hyper2kvm inspect INPUT... [--json]`.

use std::process::ExitCode;

use hyper2kvm::ProbeOptions;
use hyper2kvm::guest::GuestOptions;
use hyper2kvm::guest::inspect::Inspection;
use hyper2kvm::inspect_input::inspect_input;

use crate::cli::InspectArgs;
use crate::output::for_each_input;

fn describe(i: &Inspection) {
    println!("  os: {} {} {} ({}), {}", i.os_type, i.distro, i.version, i.product_name, i.arch);
    println!("  hostname: {}, packages: {}", i.hostname, i.package_format);
    println!(
        "  firmware: {} ({} partition table), bootloader: {}",
        i.firmware, i.partition_table, i.bootloader
    );
    for (mp, dev) in &i.mountpoints {
        println!("  mount: {mp} <- {dev}");
    }
    if !i.storage.is_empty() {
        println!("  storage: {}", i.storage.join(", "));
    }
    for k in &i.kernels {
        let initrd = match k.initramfs_has_virtio_blk {
            Some(true) => "initramfs has virtio_blk",
            Some(false) => "initramfs LACKS virtio_blk",
            None => "initramfs unknown",
        };
        println!(
            "  kernel {}: virtio {}, {initrd}",
            k.version,
            if k.virtio_builtin {
                "built in"
            } else if k.virtio_capable {
                "as modules"
            } else {
                "MISSING"
            }
        );
    }
    println!(
        "  network: {}",
        if i.network.is_empty() { "none found".into() } else { i.network.join(", ") }
    );
    println!(
        "  hypervisor tools: {}",
        if i.hypervisor_tools.is_empty() { "none".into() } else { i.hypervisor_tools.join(", ") }
    );
    println!("  appliance ran with {:?}", i.accel);
}

/// The boot-chain verdict on a source: the answer, then each failed check.
pub fn print_verdict(prefix: &str, v: &hyper2kvm::bootchain::Verdict) {
    println!("{prefix}boots on KVM as it is (virtio-blk): {}", v.line());
    for c in v.checks.iter().filter(|c| !c.ok) {
        println!("{prefix}  failed check {}: {}", c.check, c.detail);
    }
}

/// Runs the subcommand.
pub fn run(args: &InspectArgs) -> ExitCode {
    let work = |input: &std::path::Path| {
        inspect_input(input, &ProbeOptions::default(), &GuestOptions::default())
    };
    for_each_input(&args.inputs, args.json, work, |input, r| {
        println!("{}:", input.display());
        match &r.guest {
            Some(g) => describe(g),
            None => println!("  no operating system found (a data or blank disk)"),
        }
        if let Some(v) = &r.boot_verdict {
            print_verdict("  ", v);
        }
    })
}
