//! OVA archives (plain, gzip, xz), OVF descriptors and OVF directories: the descriptor's
//! hardware is read, the manifest verified, and every disk converted — from inside an
//! uncompressed OVA without any temporary copy.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use hyper2kvm::appliance::Container;
use hyper2kvm::{Appliance, CancelToken, ConvertOptions, ImageFormat, ProbeOptions, Probed};
use support::*;

/// Conversion only: these images hold no OS to fix.
fn no_fix() -> ConvertOptions {
    ConvertOptions { fix: None, ..ConvertOptions::default() }
}

const CAP1: u64 = 64 << 20;
const CAP2: u64 = 32 << 20;

/// Two VMware-style stream-optimized disks and their raw references.
fn two_disks(dir: &Path) -> [(PathBuf, PathBuf); 2] {
    let d1 = (dir.join("web01-disk1.vmdk"), dir.join("ref1.raw"));
    let d2 = (dir.join("web01-disk2.vmdk"), dir.join("ref2.raw"));
    vmware_stream_optimized(&d1.0, &d1.1, CAP1);
    vmware_stream_optimized(&d2.0, &d2.1, CAP2);
    [d1, d2]
}

fn appliance(path: &Path) -> Appliance {
    match hyper2kvm::probe(path, &ProbeOptions::default()).unwrap_or_else(|e| panic!("{e}")) {
        Probed::Appliance(a) => a,
        other => panic!("expected an appliance, got {other:?}"),
    }
}

fn assert_vmware_hardware(a: &Appliance) {
    assert_eq!(a.ovf.name, "web01");
    assert_eq!(a.ovf.cpus, Some(2));
    assert_eq!(a.ovf.memory_mib, Some(2048));
    assert_eq!(a.ovf.firmware, "bios");
    assert_eq!(a.ovf.os_type.as_deref(), Some("debian11_64Guest"));
    assert_eq!(a.ovf.hardware_family.as_deref(), Some("vmx-19"));
    assert_eq!(a.ovf.nics.len(), 1);
    assert_eq!(a.ovf.nics[0].mac.as_deref(), Some("00:50:56:ab:cd:ef"));
    assert_eq!(a.ovf.nics[0].network.as_deref(), Some("VM Network"));
    let caps: Vec<u64> = a.disks.iter().map(|d| d.capacity).collect();
    assert_eq!(caps, vec![CAP1, CAP2]);
    assert_eq!(a.ovf.disks[1].controller.as_deref(), Some("scsi"));
    assert_eq!(a.ovf.disks[1].unit, Some(1));
    let m = a.manifest.as_ref().expect("manifest found");
    assert!(m.verified);
    assert_eq!(m.entries, 3);
}

#[test]
fn ova_with_two_disks_converts_in_place() {
    let t = scratch();
    let disks = two_disks(t.path());
    let ova = t.path().join("web01.ova");
    build_ova(&ova, "web01", &[(&disks[0].0, CAP1), (&disks[1].0, CAP2)], &["00:50:56:AB:CD:EF"]);
    let a = appliance(&ova);
    assert_eq!(a.container, Container::Ova);
    assert_vmware_hardware(&a);
    for d in &a.disks {
        let img = d.image.as_ref().unwrap();
        assert_eq!(img.format, ImageFormat::Vmdk);
        assert_eq!(img.subformat, "streamOptimized");
        assert_eq!(img.virtual_size, d.capacity);
        let region = img.region.expect("disk is read in place");
        assert_eq!(img.path, ova);
        // qemu reads the member straight out of the archive: raw driver, offset and size.
        let spec = img.block_spec().unwrap().to_arg();
        assert!(spec.contains(&format!("\"offset\":{}", region.offset)), "{spec}");
        assert!(img.cross_check.as_ref().unwrap().agrees);
    }
    let out = t.path().join("out");
    let tmp_before = std::fs::read_dir(std::env::temp_dir()).unwrap().count();
    let mut seen_parts = 0;
    let mut strays = Vec::new();
    let report = hyper2kvm::convert(
        &ova,
        &out,
        &no_fix(),
        &mut |_| {
            // While converting, the output directory holds nothing but our partial outputs.
            for e in std::fs::read_dir(&out).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                if name.ends_with(".hyper2kvm-part") {
                    seen_parts += 1;
                } else {
                    strays.push(name);
                }
            }
        },
        &CancelToken::new(),
    )
    .unwrap();
    assert!(strays.is_empty(), "unexpected files during conversion: {strays:?}");
    assert!(seen_parts > 0);
    assert_eq!(std::fs::read_dir(std::env::temp_dir()).unwrap().count(), tmp_before);
    let names: Vec<String> = report
        .outputs
        .iter()
        .map(|o| o.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["web01.qcow2", "web01-vmdisk2.qcow2"]);
    same_qcow2(&disks[0].1, &report.outputs[0].path);
    same_qcow2(&disks[1].1, &report.outputs[1].path);
    let mut left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, vec!["web01-vmdisk2.qcow2", "web01.qcow2", "web01.xml"]);
    // The domain beside the disks names both outputs in order and keeps the OVF's MAC.
    let d = report.domain.as_ref().unwrap();
    assert_eq!(d.xml, out.canonicalize().unwrap().join("web01.xml"));
    let back =
        hyper2kvm::appliance::domxml::parse(&d.xml, &std::fs::read_to_string(&d.xml).unwrap())
            .unwrap();
    let files: Vec<PathBuf> = back.files.iter().map(|f| PathBuf::from(&f.href)).collect();
    let outputs: Vec<PathBuf> =
        report.outputs.iter().map(|o| o.path.canonicalize().unwrap()).collect();
    assert_eq!(files, outputs);
    assert_eq!(back.nics[0].mac.as_deref(), Some("00:50:56:ab:cd:ef"));
    assert_eq!((back.memory_mib, back.cpus), (Some(2048), Some(2)));
}

fn compress(ova: &Path, kind: &str) -> PathBuf {
    let data = std::fs::read(ova).unwrap();
    let out = ova.with_extension(format!("ova.{kind}"));
    let f = std::fs::File::create(&out).unwrap();
    match kind {
        "gz" => {
            let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            e.write_all(&data).unwrap();
            e.finish().unwrap();
        }
        _ => {
            let mut e = liblzma::write::XzEncoder::new(f, 1);
            e.write_all(&data).unwrap();
            e.finish().unwrap();
        }
    }
    out
}

#[test]
fn compressed_ovas_are_extracted_only_into_the_output_directory() {
    for (kind, container) in [("gz", Container::OvaGzip), ("xz", Container::OvaXz)] {
        let t = scratch();
        let disks = two_disks(t.path());
        let ova = t.path().join("web01.ova");
        build_ova(
            &ova,
            "web01",
            &[(&disks[0].0, CAP1), (&disks[1].0, CAP2)],
            &["00:50:56:AB:CD:EF"],
        );
        let packed = compress(&ova, kind);
        std::fs::remove_file(&ova).unwrap();
        let a = appliance(&packed);
        assert_eq!(a.container, container);
        assert_vmware_hardware(&a);
        assert!(a.disks.iter().all(|d| d.image.is_none()));
        let out = t.path().join(format!("out-{kind}"));
        let report =
            hyper2kvm::convert(&packed, &out, &no_fix(), &mut |_| {}, &CancelToken::new()).unwrap();
        assert_eq!(report.outputs.len(), 2);
        same_qcow2(&disks[0].1, &report.outputs[0].path);
        same_qcow2(&disks[1].1, &report.outputs[1].path);
        let left = std::fs::read_dir(&out).unwrap().count();
        assert_eq!(left, 3, "two disks and the domain; the extraction directory must be gone");
    }
}

#[test]
fn ovf_file_and_directory() {
    let t = scratch();
    let disks = two_disks(t.path());
    let ova = t.path().join("web01.ova");
    build_ova(&ova, "web01", &[(&disks[0].0, CAP1), (&disks[1].0, CAP2)], &["00:50:56:AB:CD:EF"]);
    let dir = t.path().join("export");
    std::fs::create_dir(&dir).unwrap();
    sh(Command::new("tar").arg("-xf").arg(&ova).arg("-C").arg(&dir));
    for input in [dir.clone(), dir.join("web01.ovf")] {
        let a = appliance(&input);
        assert_eq!(a.container, Container::Ovf);
        assert_vmware_hardware(&a);
        assert_eq!(a.disks[0].image.as_ref().unwrap().path, dir.join("web01-disk1.vmdk"));
    }
    let out = t.path().join("out");
    let report =
        hyper2kvm::convert(&dir, &out, &no_fix(), &mut |_| {}, &CancelToken::new()).unwrap();
    same_qcow2(&disks[0].1, &report.outputs[0].path);
    same_qcow2(&disks[1].1, &report.outputs[1].path);
}

#[test]
fn efi_firmware_and_secure_boot_are_read() {
    let t = scratch();
    let ovf = vmware_ovf("efi-vm", &[("d.vmdk", 1 << 30, 100)], &[], true).replace(
        "uefi.secureBoot.enabled\" vmw:value=\"false\"",
        "uefi.secureBoot.enabled\" vmw:value=\"true\"",
    );
    let p = t.path().join("efi-vm.ovf");
    std::fs::write(&p, ovf).unwrap();
    let desc =
        hyper2kvm::appliance::ovf::OvfDescriptor::parse(&p, &std::fs::read_to_string(&p).unwrap())
            .unwrap();
    assert_eq!(desc.firmware, "efi");
    assert!(desc.secure_boot);
    assert_eq!(desc.disks[0].capacity, 1 << 30);
}
