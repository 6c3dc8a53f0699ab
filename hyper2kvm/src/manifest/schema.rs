//! The Artifact Manifest v1.0 as typed values (contract section 1). Every field is optional
//! here except where the contract requires it; [`check`](super::check) has already proved the
//! document well-formed before these are filled.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::fix::GuestConfiguration;
use crate::libvirt::{SourceNic, VmDescription};

/// A whole manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Manifest {
    /// Always `"1.0"`.
    pub manifest_version: String,
    /// Where the VM came from.
    pub source: Source,
    /// Its hardware.
    pub vm: Vm,
    /// Its disks (at least one).
    pub disks: Vec<ManifestDisk>,
    /// Its NICs.
    pub nics: Vec<ManifestNic>,
    /// Free-text notes.
    pub notes: Vec<String>,
    /// Warnings from the exporter.
    pub warnings: Vec<ExportWarning>,
    /// HyperSDK's metadata.
    pub metadata: Metadata,
    /// Which stages run.
    pub pipeline: Pipeline,
    /// Changes to make in the guest.
    pub configuration: GuestConfiguration,
    /// Where and how outputs are written.
    pub output: Output,
    /// Run options.
    pub options: Options,
}

/// `source`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Source {
    /// vsphere, aws, azure, hyperv, gcp, oci, …
    pub provider: Option<String>,
    /// The VM's id at the provider.
    pub vm_id: Option<String>,
    /// The VM's name at the provider.
    pub vm_name: Option<String>,
    /// Datacenter.
    pub datacenter: Option<String>,
    /// RFC 3339.
    pub export_timestamp: Option<String>,
    /// How it was exported.
    pub export_method: Option<String>,
}

/// `vm`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Vm {
    /// vCPUs (≥ 1).
    pub cpu: Option<u32>,
    /// Memory in GiB (≥ 1).
    pub mem_gb: Option<u64>,
    /// `bios` (default), `uefi` or `unknown`.
    pub firmware: Option<String>,
    /// Secure boot.
    pub secureboot: bool,
    /// `linux`, `windows`, `unknown`.
    pub os_hint: Option<String>,
    /// Free text, e.g. "Ubuntu 22.04 LTS".
    pub os_version: Option<String>,
}

/// `disks[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ManifestDisk {
    /// `^[A-Za-z0-9_-]+$`, unique.
    pub id: String,
    /// `vmdk`, `qcow2`, `raw`, `vhd`, `vhdx`, `vdi`.
    pub source_format: String,
    /// Virtual size in bytes.
    pub bytes: u64,
    /// The disk file (relative paths are from the manifest's directory).
    pub local_path: PathBuf,
    /// `sha256:<64 lowercase hex>`.
    pub checksum: Option<String>,
    /// Lowest is the boot disk; a missing hint counts as the disk's position (0 for the first),
    /// see [`crate::pipeline::boot_order`].
    pub boot_order_hint: Option<i64>,
    /// Label (default: the id).
    pub label: Option<String>,
    /// `boot`, `data`, `unknown`.
    pub disk_type: Option<String>,
}

/// The VM's name from `output.filename` and `source.vm_name`: the first that is given and not
/// empty, else `vm` (contract section 3). Also for documents that failed the checks, whose
/// `.error` must still carry the name HyperSDK waits for.
pub fn vm_name(filename: Option<&str>, source_vm_name: Option<&str>) -> String {
    [filename, source_vm_name]
        .into_iter()
        .flatten()
        .find(|n| !n.is_empty())
        .unwrap_or("vm")
        .to_string()
}

impl Manifest {
    /// The VM's name: `output.filename`, else `source.vm_name`, else `vm` (contract section 3:
    /// the name HyperSDK waits for).
    pub fn vm_name(&self) -> String {
        vm_name(self.output.filename.as_deref(), self.source.vm_name.as_deref())
    }

    /// What the manifest says about the VM, for its libvirt domain.
    pub fn vm_description(&self, origin: &str) -> VmDescription {
        VmDescription {
            name: self.vm_name(),
            uuid: None,
            memory_mib: self.vm.mem_gb.map(|g| g * 1024),
            vcpus: self.vm.cpu,
            cores_per_socket: None,
            uefi: match self.vm.firmware.as_deref() {
                Some("uefi" | "efi") => Some(true),
                Some("bios") => Some(false),
                _ => None,
            },
            secure_boot: self.vm.secureboot,
            os_id: match (self.vm.os_hint.as_deref(), &self.vm.os_version) {
                (Some("windows"), v) => Some(format!("windows {}", v.clone().unwrap_or_default())),
                (_, Some(v)) => Some(v.clone()),
                (Some(h @ "linux"), None) => Some(h.to_string()),
                _ => None,
            },
            nics: self
                .nics
                .iter()
                .map(|n| SourceNic {
                    mac: n.mac.as_ref().map(|m| {
                        crate::io::parse_mac(m, &[':', '-'])
                            .unwrap_or_else(|| m.to_ascii_lowercase())
                    }),
                    network: n.network.clone(),
                })
                .collect(),
            nics_declared: false,
            genid: None,
            origin: origin.to_string(),
        }
    }
}

/// `nics[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ManifestNic {
    /// NIC id.
    pub id: Option<String>,
    /// `xx:xx:xx:xx:xx:xx`.
    pub mac: Option<String>,
    /// Source network name.
    pub network: Option<String>,
}

/// `warnings[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportWarning {
    /// Exporter stage.
    pub stage: Option<String>,
    /// Text.
    pub message: Option<String>,
    /// When.
    pub timestamp: Option<String>,
}

/// `metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Metadata {
    /// HyperSDK's version.
    pub hypersdk_version: Option<String>,
    /// HyperSDK's job id (the VM's managed-object id for vSphere).
    pub job_id: Option<String>,
    /// When the manifest was made.
    pub created_at: Option<String>,
    /// Free tags.
    pub tags: BTreeMap<String, String>,
}

/// `pipeline` (a missing section or stage runs; `enabled: false` skips).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pipeline {
    /// `pipeline.inspect`.
    pub inspect: InspectStage,
    /// `pipeline.fix`.
    pub fix: FixStage,
    /// `pipeline.convert`.
    pub convert: ConvertStage,
    /// `pipeline.validate`.
    pub validate: ValidateStage,
}

fn yes() -> bool {
    true
}

/// `pipeline.inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InspectStage {
    /// Runs unless false.
    pub enabled: bool,
    /// Put the guest's details in the report.
    pub collect_guest_info: bool,
}

impl Default for InspectStage {
    fn default() -> Self {
        InspectStage { enabled: yes(), collect_guest_info: yes() }
    }
}

/// `pipeline.fix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FixStage {
    /// Runs unless false.
    pub enabled: bool,
    /// Keep `*.hyper2kvm.bak` copies.
    pub backup: bool,
    /// Print the fstab before and after.
    pub print_fstab: bool,
    /// Fix the boot loader.
    pub update_grub: bool,
    /// Give the initramfs the virtio drivers.
    pub regen_initramfs: bool,
    /// `stabilize-all`, `bypath-only`, `noop`.
    pub fstab_mode: String,
    /// Disable VMware Tools and friends.
    pub remove_vmware_tools: bool,
}

impl Default for FixStage {
    fn default() -> Self {
        FixStage {
            enabled: true,
            backup: false,
            print_fstab: false,
            update_grub: true,
            regen_initramfs: true,
            fstab_mode: "stabilize-all".into(),
            remove_vmware_tools: true,
        }
    }
}

/// `pipeline.convert`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConvertStage {
    /// Runs unless false.
    pub enabled: bool,
    /// Compress qcow2 clusters (absent: the runner's default; off in direct mode).
    pub compress: Option<bool>,
    /// 1–9.
    pub compress_level: Option<u8>,
}

impl Default for ConvertStage {
    fn default() -> Self {
        ConvertStage { enabled: true, compress: None, compress_level: None }
    }
}

/// `pipeline.validate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ValidateStage {
    /// Runs unless false.
    pub enabled: bool,
    /// `qemu-img check` the outputs.
    pub check_image_integrity: bool,
}

impl Default for ValidateStage {
    fn default() -> Self {
        ValidateStage { enabled: true, check_image_integrity: true }
    }
}

/// `output`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Output {
    /// Where outputs go (default `<manifest dir>/output`).
    pub directory: Option<PathBuf>,
    /// `qcow2` (default) or `raw`.
    pub format: Option<String>,
    /// Base name of the outputs (default: the VM name).
    pub filename: Option<String>,
    /// `libvirt` (the domain XML only) or `kubevirt` (also `{vm_name}.kubevirt.yaml`);
    /// default: the runner's (`OUTPUT_TARGET`).
    pub target: Option<String>,
    /// The Kubernetes namespace of the KubeVirt objects (default: none written).
    pub namespace: Option<String>,
    /// Where the KubeVirt DataVolumes get their data: `upload` (default) or `pvc:NAMESPACE`.
    pub datavolume_source: Option<String>,
}

/// `options`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// Plan only.
    pub dry_run: bool,
    /// 0–3.
    pub verbose: u8,
    /// The report.
    pub report: ReportOptions,
}

/// `options.report`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportOptions {
    /// Write it (default true).
    pub enabled: bool,
    /// Where (default `report.json`, relative to the output directory).
    pub path: PathBuf,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions { enabled: true, path: "report.json".into() }
    }
}
