//! The generated libvirt domain XML: golden files for OVF (VMware exporter shape, BIOS and
//! EFI) and VMX (SCSI, SATA and NVMe disks, two NICs) inputs, schema validation by libvirt's
//! own `virt-xml-validate` for a Linux BIOS, a Linux UEFI, a multi-disk and a Windows-flavoured
//! guest, and (with the `libvirt` feature) definition through the `virt` crate on libvirt's
//! `test:///default` driver, which must give back the same disks, MACs, memory and firmware.
//!
//! Golden files live in `tests/fixtures/libvirt/`; `HYPER2KVM_UPDATE_GOLDEN=1` rewrites them
//! (review the diff).

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use hyper2kvm::appliance::ovf::OvfDescriptor;
use hyper2kvm::appliance::{domxml, vmx};
use hyper2kvm::libvirt::firmware::Ovmf;
use hyper2kvm::libvirt::{
    DomainDisk, DomainOptions, DomainType, VmDescription, build_domain, to_xml,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/libvirt")
}

/// Fixed firmware paths so golden files do not depend on the host.
fn ovmf() -> Ovmf {
    Ovmf {
        code: "/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
        vars: "/usr/share/OVMF/OVMF_VARS_4M.fd".into(),
    }
}

fn options(domain_type: DomainType) -> DomainOptions {
    DomainOptions { domain_type, uuid: None, ovmf: Some(ovmf()), ..DomainOptions::default() }
}

/// The domain for a descriptor with one output per disk under /srv/vms.
fn domain_xml(d: &OvfDescriptor, origin: &str, domain_type: DomainType) -> String {
    let desc = VmDescription::from_descriptor(d, origin);
    let disks: Vec<DomainDisk> = (0..d.disks.len().max(1))
        .map(|i| DomainDisk {
            path: if i == 0 {
                format!("/srv/vms/{}.qcow2", d.name).into()
            } else {
                format!("/srv/vms/{}-disk{i}.qcow2", d.name).into()
            },
            format: "qcow2".into(),
        })
        .collect();
    let mut opts = options(domain_type);
    if desc.uuid.is_none() {
        opts.uuid = Some("6f1c2a9e-0b7d-4c55-9a43-2f8e1d0c7b10".into());
    }
    let nvram = PathBuf::from(format!("/srv/vms/{}_VARS.fd", d.name));
    to_xml(&build_domain(&desc, None, &disks, nvram, &opts).unwrap())
}

fn ovf_bios() -> OvfDescriptor {
    let text = support::vmware_ovf(
        "web01",
        &[("web01-disk1.vmdk", 16 << 30, 1 << 30), ("web01-disk2.vmdk", 4 << 30, 1 << 20)],
        &["00:50:56:ab:cd:ef"],
        false,
    );
    OvfDescriptor::parse(Path::new("web01.ovf"), &text).unwrap()
}

fn ovf_efi() -> OvfDescriptor {
    let text = support::vmware_ovf(
        "efi01",
        &[("efi01-disk1.vmdk", 8 << 30, 1 << 30)],
        &["00:50:56:01:02:03"],
        true,
    );
    OvfDescriptor::parse(Path::new("efi01.ovf"), &text).unwrap()
}

fn vmx_fixture(name: &str) -> OvfDescriptor {
    let path = fixtures().join(name);
    vmx::parse(&path, &std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn check_golden(name: &str, actual: &str) {
    let path = fixtures().join(name);
    if std::env::var_os("HYPER2KVM_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e} (HYPER2KVM_UPDATE_GOLDEN=1 writes it)", path.display())
    });
    assert_eq!(actual, expected, "{name} differs from the golden file");
}

#[test]
fn golden_ovf_bios() {
    check_golden("ovf-bios.xml", &domain_xml(&ovf_bios(), "web01.ovf", DomainType::Kvm));
}

#[test]
fn golden_ovf_efi() {
    check_golden("ovf-efi.xml", &domain_xml(&ovf_efi(), "efi01.ovf", DomainType::Kvm));
}

#[test]
fn golden_vmx_scsi_sata_nvme_two_nics() {
    check_golden(
        "vmx-app01.xml",
        &domain_xml(&vmx_fixture("app01.vmx"), "app01.vmx", DomainType::Kvm),
    );
}

#[test]
fn golden_vmx_windows() {
    check_golden(
        "vmx-win2019.xml",
        &domain_xml(&vmx_fixture("win2019.vmx"), "win2019.vmx", DomainType::Kvm),
    );
}

/// The four flavours the issue names.
fn flavours(domain_type: DomainType) -> Vec<(&'static str, String)> {
    vec![
        ("linux-bios-multidisk", domain_xml(&ovf_bios(), "web01.ovf", domain_type)),
        ("linux-uefi", domain_xml(&ovf_efi(), "efi01.ovf", domain_type)),
        ("linux-uefi-three-disks", domain_xml(&vmx_fixture("app01.vmx"), "app01.vmx", domain_type)),
        ("windows", domain_xml(&vmx_fixture("win2019.vmx"), "win2019.vmx", domain_type)),
    ]
}

#[test]
fn generated_xml_passes_virt_xml_validate() {
    let t = tempfile::tempdir().unwrap();
    for (name, xml) in flavours(DomainType::Kvm) {
        let f = t.path().join(format!("{name}.xml"));
        std::fs::write(&f, &xml).unwrap();
        let o = Command::new("virt-xml-validate").arg(&f).arg("domain").output().unwrap();
        assert!(
            o.status.success(),
            "{name}: virt-xml-validate failed:\n{}{}\n{xml}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // And the checker can fail: a domain without a name is not valid.
    let bad = t.path().join("bad.xml");
    std::fs::write(&bad, "<domain type='kvm'><memory>1</memory></domain>").unwrap();
    let o = Command::new("virt-xml-validate").arg(&bad).arg("domain").output().unwrap();
    assert!(!o.status.success());
}

#[test]
fn our_xml_reads_back_as_an_input() {
    // A generated domain is itself accepted as a libvirt-XML input with the same facts.
    let xml = domain_xml(&vmx_fixture("app01.vmx"), "app01.vmx", DomainType::Kvm);
    let back = domxml::parse(Path::new("app01.xml"), &xml).unwrap();
    assert_eq!(back.memory_mib, Some(4096));
    assert_eq!((back.cpus, back.cores_per_socket), (Some(4), Some(2)));
    assert_eq!(back.firmware, "efi");
    assert_eq!(back.uuid.as_deref(), Some("421c5e39-1f2a-4d2b-9e77-0c613a5510fe"));
    let macs: Vec<_> = back.nics.iter().map(|n| n.mac.clone().unwrap()).collect();
    assert_eq!(macs, vec!["00:50:56:9c:12:34", "00:50:56:3f:00:02"]);
    let files: Vec<_> = back.files.iter().map(|f| f.href.clone()).collect();
    assert_eq!(
        files,
        vec!["/srv/vms/app01.qcow2", "/srv/vms/app01-disk1.qcow2", "/srv/vms/app01-disk2.qcow2"]
    );
}

#[cfg(feature = "libvirt")]
#[test]
fn test_driver_defines_each_flavour_and_gives_back_the_same_devices() {
    use hyper2kvm::libvirt::define::{DefineOptions, define};
    let opts = DefineOptions { uri: Some("test:///default".into()), ..Default::default() };
    for (name, xml) in flavours(DomainType::Test) {
        let sent = domxml::parse(Path::new("sent.xml"), &xml).unwrap();
        let defined = define(&xml, &[], &opts).unwrap_or_else(|e| panic!("{name}: {e}\n{xml}"));
        assert_eq!(defined.name, sent.name, "{name}");
        let back = domxml::parse(Path::new("back.xml"), &defined.xml).unwrap();
        assert_eq!(back.memory_mib, sent.memory_mib, "{name}: memory");
        assert_eq!(back.firmware, sent.firmware, "{name}: firmware\n{}", defined.xml);
        let hrefs = |d: &OvfDescriptor| d.files.iter().map(|f| f.href.clone()).collect::<Vec<_>>();
        assert_eq!(hrefs(&back), hrefs(&sent), "{name}: disks");
        let macs = |d: &OvfDescriptor| d.nics.iter().map(|n| n.mac.clone()).collect::<Vec<_>>();
        assert_eq!(macs(&back), macs(&sent), "{name}: MACs");
        assert_eq!(back.uuid, sent.uuid, "{name}: uuid");
    }
}

fn no_fix() -> hyper2kvm::ConvertOptions {
    hyper2kvm::ConvertOptions { fix: None, ..Default::default() }
}

/// The domain file a conversion wrote, validated by libvirt's schema and read back.
fn written_domain(report: &hyper2kvm::ConvertReport) -> OvfDescriptor {
    let d = report.domain.as_ref().expect("a domain");
    let o = Command::new("virt-xml-validate").arg(&d.xml).arg("domain").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    domxml::parse(&d.xml, &std::fs::read_to_string(&d.xml).unwrap()).unwrap()
}

#[test]
fn vmx_input_converts_with_its_disks_nics_and_uefi() {
    let t = support::scratch();
    let vm = t.path().join("app01");
    std::fs::create_dir(&vm).unwrap();
    std::fs::copy(fixtures().join("app01.vmx"), vm.join("app01.vmx")).unwrap();
    for (file, size) in [("app01.vmdk", "64M"), ("app01_1.vmdk", "32M"), ("app01_2.vmdk", "16M")] {
        support::qemu_create(&vm.join(file), "vmdk", None, size);
    }
    let out = t.path().join("out");
    let cancel = hyper2kvm::CancelToken::new();
    let report =
        hyper2kvm::convert(&vm.join("app01.vmx"), &out, &no_fix(), &mut |_| {}, &cancel).unwrap();
    let sizes: Vec<u64> = report.outputs.iter().map(|o| o.virtual_size).collect();
    assert_eq!(sizes, vec![64 << 20, 32 << 20, 16 << 20], "SCSI, then SATA, then NVMe");
    let back = written_domain(&report);
    let files: Vec<PathBuf> = back.files.iter().map(|f| PathBuf::from(&f.href)).collect();
    let outputs: Vec<PathBuf> =
        report.outputs.iter().map(|o| o.path.canonicalize().unwrap()).collect();
    assert_eq!(files, outputs);
    let macs: Vec<_> = back.nics.iter().map(|n| n.mac.clone().unwrap()).collect();
    assert_eq!(macs, vec!["00:50:56:9c:12:34", "00:50:56:3f:00:02"]);
    assert_eq!(back.firmware, "efi");
    assert_eq!(back.uuid.as_deref(), Some("421c5e39-1f2a-4d2b-9e77-0c613a5510fe"));
    // The variable store is this domain's own copy of the host's template.
    let nvram = report.domain.as_ref().unwrap().nvram.clone().unwrap();
    assert!(nvram.starts_with(out.canonicalize().unwrap()));
    let template = hyper2kvm::libvirt::firmware::find(false).unwrap().vars;
    assert_eq!(std::fs::read(&nvram).unwrap(), std::fs::read(template).unwrap());
}

#[test]
fn libvirt_xml_input_converts() {
    let t = support::scratch();
    let disk = t.path().join("images/web.qcow2");
    std::fs::create_dir_all(disk.parent().unwrap()).unwrap();
    support::qemu_create(&disk, "qcow2", None, "48M");
    let xml = format!(
        "<domain type='kvm'><name>web</name><memory unit='MiB'>3072</memory><vcpu>3</vcpu>\
         <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os><devices>\
         <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
         <source file='{}'/><target dev='sda' bus='sata'/></disk>\
         <interface type='network'><mac address='52:54:00:12:34:56'/><source network='default'/></interface>\
         </devices></domain>",
        disk.display()
    );
    let def = t.path().join("web.xml");
    std::fs::write(&def, xml).unwrap();
    let out = t.path().join("out");
    let cancel = hyper2kvm::CancelToken::new();
    let report = hyper2kvm::convert(&def, &out, &no_fix(), &mut |_| {}, &cancel).unwrap();
    assert_eq!(report.outputs.len(), 1);
    let back = written_domain(&report);
    assert_eq!((back.memory_mib, back.cpus), (Some(3072), Some(3)));
    assert_eq!(back.nics[0].mac.as_deref(), Some("52:54:00:12:34:56"));
    assert_eq!(back.firmware, "bios");
}

#[test]
fn golden_manifest_vsphere_export() {
    let text = std::fs::read_to_string(fixtures().join("manifest-vsphere.json")).unwrap();
    let m: hyper2kvm::manifest::Manifest = serde_json::from_str(&text).unwrap();
    let desc = m.vm_description("artifact-manifest.json");
    let disks: Vec<DomainDisk> = m
        .disks
        .iter()
        .enumerate()
        .map(|(i, d)| DomainDisk {
            path: if i == 0 {
                "/srv/vms/db01.qcow2".into()
            } else {
                format!("/srv/vms/db01-{}.qcow2", d.id).into()
            },
            format: "qcow2".into(),
        })
        .collect();
    let mut opts = options(DomainType::Kvm);
    opts.uuid = Some("0c9a1f3e-5d2b-4a61-8e7f-1b2c3d4e5f60".into());
    let d = build_domain(&desc, None, &disks, "/srv/vms/db01_VARS.fd".into(), &opts).unwrap();
    let xml = to_xml(&d);
    check_golden("manifest-vsphere.xml", &xml);
    let back = domxml::parse(Path::new("db01.xml"), &xml).unwrap();
    assert_eq!(back.nics[0].mac.as_deref(), Some("00:50:56:ab:12:34"));
    assert_eq!((back.memory_mib, back.cpus, back.firmware.as_str()), (Some(8192), Some(4), "efi"));
}
