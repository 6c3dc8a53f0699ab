//! The planned libvirt domain mapped to KubeVirt's and CDI's objects.

use serde_json::{Map, Value, json};

use super::names::dns_label;
use super::{DataVolumeSource, KubeDisk, KubeVirtGuest, KubeVirtOptions};
use crate::libvirt::{Clock, DiskBus, Domain, Firmware, Graphics, Machine, NetSource, NicModel};

/// The label every object carries, and its value.
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "hyper2kvm");
/// The annotation with the VM's name as the source had it (when it was not a DNS label).
const SOURCE_NAME: &str = "hyper2kvm.io/source-name";
/// The annotation naming a DataVolume's disk file (beside the YAML).
const DISK_FILE: &str = "hyper2kvm.io/disk-file";
/// Networks that mean "the pod's own network" when a NIC is mapped to them.
const POD_NETWORKS: [&str; 2] = ["default", "pod"];

/// A size in bytes as a Kubernetes quantity, rounded up to whole MiB.
fn quantity_mib(bytes: u64) -> String {
    format!("{}Mi", bytes.div_ceil(1 << 20))
}

fn metadata(name: &str, source_name: &str, opts: &KubeVirtOptions) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    if let Some(ns) = &opts.namespace {
        m.insert("namespace".into(), json!(ns));
    }
    m.insert("labels".into(), json!({ MANAGED_BY.0: MANAGED_BY.1 }));
    if source_name != name {
        m.insert("annotations".into(), json!({ SOURCE_NAME: source_name }));
    }
    m
}

/// KubeVirt's disk bus for ours.
fn bus(b: DiskBus) -> &'static str {
    match b {
        DiskBus::VirtioBlk => "virtio",
        DiskBus::VirtioScsi => "scsi",
        DiskBus::Sata => "sata",
    }
}

/// The VM's CPU topology: the domain's cores per socket when they divide its vCPUs.
fn cpu(d: &Domain) -> Value {
    let vcpus = d.vcpus.max(1);
    let cores = d.cores_per_socket.filter(|c| *c > 0 && vcpus.is_multiple_of(*c)).unwrap_or(vcpus);
    json!({ "cores": cores, "sockets": vcpus / cores, "threads": 1 })
}

/// The KubeVirt objects for `domain`, whose disks are `disks` (same order).
pub fn build(domain: &Domain, disks: &[KubeDisk], opts: &KubeVirtOptions) -> KubeVirtGuest {
    let mut warnings = Vec::new();
    let vm_name = dns_label(&domain.name, "");

    // Firmware, and what it needs.
    let mut features = json!({ "acpi": {} });
    let mut firmware = json!({ "uuid": domain.uuid });
    match &domain.firmware {
        Firmware::Bios => firmware["bootloader"] = json!({ "bios": {} }),
        Firmware::Uefi(u) => {
            firmware["bootloader"] = json!({ "efi": { "secureBoot": u.secure_boot } });
            if u.secure_boot {
                // KubeVirt refuses secure boot without SMM.
                features["smm"] = json!({ "enabled": true });
            }
        }
    }
    if domain.machine == Machine::I440fx {
        warnings.push(format!(
            "{}: planned on an i440fx machine for libvirt; KubeVirt runs q35 machines only (the guest gets PCIe)",
            domain.name
        ));
    }
    let mut clock = json!({ "utc": {} });
    if domain.clock == Clock::Localtime {
        warnings.push(format!(
            "{}: the guest keeps its clock in local time (a Windows guest); KubeVirt has no local-time clock: the VM's clock is UTC, set spec.template.spec.domain.clock.timezone to the guest's time zone",
            domain.name
        ));
    }
    if domain.windows {
        features["apic"] = json!({});
        features["hyperv"] = json!({
            "relaxed": {}, "vapic": {}, "spinlocks": { "spinlocks": 8191 },
        });
        clock["timer"] = json!({
            "hpet": { "present": false },
            "pit": { "tickPolicy": "delay" },
            "rtc": { "tickPolicy": "catchup" },
            "hyperv": {},
        });
    }

    // Disks, in boot order, each backed by its DataVolume.
    let mut kdisks = Vec::new();
    let mut volumes = Vec::new();
    let mut data_volumes = Vec::new();
    for (i, (d, k)) in domain.disks.iter().zip(disks).enumerate() {
        let disk = format!("disk-{i}");
        let dv = dns_label(&domain.name, &format!("-{disk}"));
        kdisks.push(json!({
            "name": disk,
            "bootOrder": d.boot_order,
            "disk": { "bus": bus(d.bus) },
        }));
        volumes.push(json!({ "name": disk, "dataVolume": { "name": dv } }));
        let source = match &opts.source {
            DataVolumeSource::Upload => json!({ "upload": {} }),
            DataVolumeSource::Pvc { namespace } => {
                json!({ "pvc": { "namespace": namespace, "name": dv } })
            }
        };
        let mut meta = metadata(&dv, &dv, opts);
        meta.insert("annotations".into(), json!({ DISK_FILE: k.file }));
        data_volumes.push(json!({
            "apiVersion": "cdi.kubevirt.io/v1beta1",
            "kind": "DataVolume",
            "metadata": meta,
            "spec": {
                "source": source,
                "storage": { "resources": { "requests": { "storage": quantity_mib(k.virtual_size) } } },
            },
        }));
    }

    // NICs: the first one on the pod's network gets it (masquerade, the MAC kept); the others
    // go to the Multus network of their name (bridge binding).
    let mut interfaces = Vec::new();
    let mut networks = Vec::new();
    let mut pod_taken = false;
    for (i, nic) in domain.interfaces.iter().enumerate() {
        let name = format!("nic-{i}");
        let (target, is_bridge) = match &nic.source {
            NetSource::Network(n) => (n.as_str(), false),
            NetSource::Bridge(b) => (b.as_str(), true),
        };
        let mut iface = json!({
            "name": name,
            "model": match nic.model { NicModel::Virtio => "virtio", NicModel::E1000 => "e1000" },
        });
        if let Some(mac) = &nic.mac {
            iface["macAddress"] = json!(mac);
        }
        if !pod_taken && !is_bridge && POD_NETWORKS.contains(&target) {
            pod_taken = true;
            iface["masquerade"] = json!({});
            networks.push(json!({ "name": name, "pod": {} }));
        } else {
            iface["bridge"] = json!({});
            let network = dns_label(target, "");
            warnings.push(format!(
                "{}: NIC {i} ({}) is on the Multus network {network:?}: a NetworkAttachmentDefinition of that name must exist in the VM's namespace",
                domain.name,
                nic.mac.as_deref().unwrap_or("no MAC")
            ));
            networks.push(json!({ "name": name, "multus": { "networkName": network } }));
        }
        interfaces.push(iface);
    }

    let mut devices = json!({
        "disks": kdisks,
        "interfaces": interfaces,
        "autoattachSerialConsole": true,
        "autoattachGraphicsDevice": domain.graphics != Graphics::None,
        "rng": {},
    });
    if domain.windows {
        devices["inputs"] = json!([{ "name": "tablet", "type": "tablet", "bus": "usb" }]);
    }
    let mut template_labels = Map::new();
    template_labels.insert("kubevirt.io/vm".into(), json!(vm_name));
    template_labels.insert(MANAGED_BY.0.into(), json!(MANAGED_BY.1));
    let vm = json!({
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": metadata(&vm_name, &domain.name, opts),
        "spec": {
            // Started by its owner once the disks are uploaded.
            "runStrategy": "Halted",
            "template": {
                "metadata": { "labels": template_labels },
                "spec": {
                    "domain": {
                        "cpu": cpu(domain),
                        "memory": { "guest": format!("{}Mi", domain.memory_mib) },
                        "resources": { "requests": { "memory": format!("{}Mi", domain.memory_mib) } },
                        "machine": { "type": "q35" },
                        "firmware": firmware,
                        "features": features,
                        "clock": clock,
                        "devices": devices,
                    },
                    "networks": networks,
                    "volumes": volumes,
                },
            },
        },
    });
    let mut documents = vec![vm];
    documents.extend(data_volumes);
    KubeVirtGuest { documents, warnings }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::libvirt::{Disk, DomainType, Interface, Uefi};

    fn domain(uefi: Option<bool>, windows: bool) -> Domain {
        Domain {
            domain_type: DomainType::Kvm,
            name: "Web01_Prod".into(),
            uuid: "4237a8b2-0000-4000-8000-000000000001".into(),
            genid: None,
            description: String::new(),
            memory_mib: 4096,
            vcpus: 4,
            cores_per_socket: Some(2),
            machine: Machine::Q35,
            firmware: match uefi {
                None => Firmware::Bios,
                Some(sb) => Firmware::Uefi(Uefi {
                    loader: PathBuf::from("/x/OVMF_CODE.fd"),
                    nvram: PathBuf::from("/o/VARS.fd"),
                    template: None,
                    secure_boot: sb,
                }),
            },
            windows,
            clock: if windows { Clock::Localtime } else { Clock::Utc },
            disks: (0..2)
                .map(|i| Disk {
                    path: PathBuf::from(format!("/o/d{i}.qcow2")),
                    format: "qcow2".into(),
                    bus: if windows { DiskBus::Sata } else { DiskBus::VirtioBlk },
                    target: format!("vd{}", (b'a' + i as u8) as char),
                    boot_order: i + 1,
                })
                .collect(),
            interfaces: vec![
                Interface {
                    mac: Some("00:50:56:ab:cd:ef".into()),
                    source: NetSource::Network("default".into()),
                    model: NicModel::Virtio,
                },
                Interface {
                    mac: Some("00:50:56:ab:cd:f0".into()),
                    source: NetSource::Bridge("br-storage".into()),
                    model: NicModel::E1000,
                },
            ],
            graphics: Graphics::Vnc,
        }
    }

    fn disks() -> Vec<KubeDisk> {
        vec![
            KubeDisk { file: "Web01_Prod.qcow2".into(), virtual_size: 10 << 30 },
            KubeDisk { file: "Web01_Prod-disk-1.qcow2".into(), virtual_size: (1 << 20) + 1 },
        ]
    }

    #[test]
    fn a_bios_guest_maps_every_field() {
        let g = build(&domain(None, false), &disks(), &KubeVirtOptions::default());
        let vm = &g.documents[0];
        assert_eq!(vm["metadata"]["name"], "web01-prod");
        assert_eq!(vm["metadata"]["annotations"][SOURCE_NAME], "Web01_Prod");
        let d = &vm["spec"]["template"]["spec"]["domain"];
        assert_eq!(d["cpu"], json!({"cores": 2, "sockets": 2, "threads": 1}));
        assert_eq!(d["memory"]["guest"], "4096Mi");
        assert_eq!(d["firmware"]["bootloader"], json!({"bios": {}}));
        assert_eq!(d["firmware"]["uuid"], "4237a8b2-0000-4000-8000-000000000001");
        assert_eq!(
            d["devices"]["disks"][0],
            json!({"name": "disk-0", "bootOrder": 1, "disk": {"bus": "virtio"}})
        );
        assert_eq!(d["devices"]["interfaces"][0]["macAddress"], "00:50:56:ab:cd:ef");
        assert_eq!(d["devices"]["interfaces"][0]["masquerade"], json!({}));
        assert_eq!(d["devices"]["interfaces"][1]["model"], "e1000");
        let nets = &vm["spec"]["template"]["spec"]["networks"];
        assert_eq!(nets[0], json!({"name": "nic-0", "pod": {}}));
        assert_eq!(nets[1], json!({"name": "nic-1", "multus": {"networkName": "br-storage"}}));
        assert_eq!(g.warnings.len(), 1, "{:?}", g.warnings);
        assert!(g.warnings[0].contains("NetworkAttachmentDefinition"));
        // One DataVolume per disk, sized from the virtual size (rounded up to MiB).
        assert_eq!(g.documents.len(), 3);
        let dv = &g.documents[2];
        assert_eq!(dv["metadata"]["name"], "web01-prod-disk-1");
        assert_eq!(dv["metadata"]["annotations"][DISK_FILE], "Web01_Prod-disk-1.qcow2");
        assert_eq!(dv["spec"]["storage"]["resources"]["requests"]["storage"], "2Mi");
        assert_eq!(dv["spec"]["source"], json!({"upload": {}}));
        assert_eq!(
            vm["spec"]["template"]["spec"]["volumes"][1]["dataVolume"]["name"],
            "web01-prod-disk-1"
        );
    }

    #[test]
    fn secure_boot_brings_smm_and_windows_its_clock_warning() {
        let opts = KubeVirtOptions {
            namespace: Some("vms".into()),
            source: DataVolumeSource::Pvc { namespace: "imports".into() },
        };
        let g = build(&domain(Some(true), true), &disks(), &opts);
        let d = &g.documents[0]["spec"]["template"]["spec"]["domain"];
        assert_eq!(d["firmware"]["bootloader"], json!({"efi": {"secureBoot": true}}));
        assert_eq!(d["features"]["smm"], json!({"enabled": true}));
        assert_eq!(d["devices"]["disks"][1]["disk"]["bus"], "sata");
        assert_eq!(d["clock"]["utc"], json!({}));
        assert!(g.warnings.iter().any(|w| w.contains("local time")), "{:?}", g.warnings);
        assert!(g.documents.iter().all(|o| o["metadata"]["namespace"] == "vms"));
        assert_eq!(
            g.documents[1]["spec"]["source"],
            json!({"pvc": {"namespace": "imports", "name": "web01-prod-disk-0"}})
        );
        let no_sb = build(&domain(Some(false), false), &disks(), &KubeVirtOptions::default());
        let d = &no_sb.documents[0]["spec"]["template"]["spec"]["domain"];
        assert!(d["features"].get("smm").is_none());
        let yaml = no_sb.to_yaml().unwrap();
        assert_eq!(yaml.matches("---\n").count(), 3, "{yaml}");
        assert!(yaml.contains("kind: VirtualMachine"), "{yaml}");
    }
}
