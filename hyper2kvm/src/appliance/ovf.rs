//! The OVF descriptor (DMTF DSP0243 1.x/2.x, as VMware, VirtualBox and others write it): the
//! files, disks, virtual hardware (CPU, memory, NICs with MACs, controllers), firmware and OS.

use std::path::Path;

use serde::Serialize;

use super::xml::{self, Element};
use crate::error::{Error, Result};

/// CIM resource types used in `rasd:ResourceType` (DSP1041 / CIM_ResourceAllocationSettingData).
mod resource_type {
    pub const PROCESSOR: &str = "3";
    pub const MEMORY: &str = "4";
    pub const IDE_CONTROLLER: &str = "5";
    pub const SCSI_CONTROLLER: &str = "6";
    pub const ETHERNET: &str = "10";
    pub const CDROM: &str = "15";
    pub const DISK: &str = "17";
    pub const SATA_CONTROLLER: &str = "20";
}

/// A file listed in `References`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OvfFile {
    /// `ovf:id`.
    pub id: String,
    /// `ovf:href`, relative to the descriptor.
    pub href: String,
    /// `ovf:size` when given.
    pub size: Option<u64>,
    /// `ovf:compression` (`gzip`) when the file itself is compressed.
    pub compression: Option<String>,
}

/// A virtual disk from `DiskSection`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OvfDisk {
    /// `ovf:diskId`.
    pub disk_id: String,
    /// `ovf:fileRef` (absent for a blank disk).
    pub file_ref: Option<String>,
    /// Capacity in bytes.
    pub capacity: u64,
    /// `ovf:populatedSize` in bytes.
    pub populated_size: Option<u64>,
    /// `ovf:format` URI.
    pub format: Option<String>,
    /// Controller kind from the hardware section (`scsi`, `ide`, `sata`, `nvme`).
    pub controller: Option<String>,
    /// Controller sub-type (`lsilogic`, `VirtualSCSI`, `vmware.sata.ahci`, …).
    pub controller_model: Option<String>,
    /// `rasd:AddressOnParent`, the unit on the controller.
    pub unit: Option<u32>,
}

/// A network adapter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OvfNic {
    /// `rasd:ElementName`.
    pub name: String,
    /// MAC address (`rasd:Address`), lower-case, when present.
    pub mac: Option<String>,
    /// The network it connects to (`rasd:Connection`).
    pub network: Option<String>,
    /// Adapter model (`E1000`, `VmxNet3`, …).
    pub model: Option<String>,
}

/// Everything we use from an OVF descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OvfDescriptor {
    /// VM name (`VirtualSystem/Name`, else `ovf:id`).
    pub name: String,
    /// The VM's UUID when the source records one (VMX `uuid.bios`, libvirt `<uuid>`).
    pub uuid: Option<String>,
    /// The VM generation ID in libvirt's `<genid>` form (VMX `vm.genid` and `vm.genidX`,
    /// libvirt `<genid>`).
    pub genid: Option<String>,
    /// CIM OS id (`OperatingSystemSection/@ovf:id`).
    pub os_id: Option<u32>,
    /// VMware guest id (`vmw:osType`, e.g. `debian11_64Guest`).
    pub os_type: Option<String>,
    /// OS description text.
    pub os_description: Option<String>,
    /// Virtual CPUs.
    pub cpus: Option<u32>,
    /// Cores per socket, when the source sets a topology.
    pub cores_per_socket: Option<u32>,
    /// Memory in MiB.
    pub memory_mib: Option<u64>,
    /// `bios` or `efi`.
    pub firmware: String,
    /// Secure boot requested.
    pub secure_boot: bool,
    /// Virtual hardware family (`vmx-13`, `virtualbox-2.2`).
    pub hardware_family: Option<String>,
    /// Files in `References`.
    pub files: Vec<OvfFile>,
    /// Disks, in `DiskSection` order.
    pub disks: Vec<OvfDisk>,
    /// NICs, in hardware order.
    pub nics: Vec<OvfNic>,
}

/// Converts a value with `ovf:capacityAllocationUnits`-style units to bytes: `byte * 2^30`,
/// `byte*1024`, `MegaBytes`, or nothing (bytes).
pub fn scale_units(value: u64, units: Option<&str>) -> Option<u64> {
    let Some(u) = units.map(|u| u.replace(' ', "")) else { return Some(value) };
    let factor: u64 = match u.as_str() {
        "" | "byte" | "bytes" => 1,
        "KB" | "KiloBytes" => 1 << 10,
        "MB" | "MegaBytes" => 1 << 20,
        "GB" | "GigaBytes" => 1 << 30,
        other => {
            let rest = other.strip_prefix("byte*")?;
            if let Some(exp) = rest.strip_prefix("2^") {
                1u64.checked_shl(exp.parse().ok()?)?
            } else {
                rest.parse().ok()?
            }
        }
    };
    value.checked_mul(factor)
}

impl OvfDescriptor {
    /// Parses an OVF document. `origin` names the file for errors.
    pub fn parse(origin: &Path, text: &str) -> Result<OvfDescriptor> {
        let root = xml::parse(origin, text)?;
        if root.name != "Envelope" {
            return Err(Error::invalid(
                origin,
                format!(
                    "XML root is <{}>, neither an OVF <Envelope> nor a libvirt <domain>",
                    root.name
                ),
            ));
        }
        let vs = root
            .child("VirtualSystem")
            .or_else(|| {
                root.child("VirtualSystemCollection").and_then(|c| c.child("VirtualSystem"))
            })
            .ok_or_else(|| Error::invalid(origin, "OVF has no VirtualSystem"))?;
        let name = vs.child_text("Name").or_else(|| vs.attr("id")).unwrap_or("vm").to_string();
        let files = root
            .child("References")
            .map(|r| {
                r.children_named("File")
                    .map(|f| OvfFile {
                        id: f.attr("id").unwrap_or_default().to_string(),
                        href: f.attr("href").unwrap_or_default().to_string(),
                        size: f.attr("size").and_then(|s| s.parse().ok()),
                        compression: f
                            .attr("compression")
                            .filter(|c| !c.is_empty() && *c != "identity")
                            .map(str::to_string),
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for f in &files {
            if f.id.is_empty() || f.href.is_empty() {
                return Err(Error::invalid(
                    origin,
                    "OVF References/File without ovf:id or ovf:href",
                ));
            }
        }
        let mut disks = Vec::new();
        for d in root.children_named("DiskSection").flat_map(|s| s.children_named("Disk")) {
            let id = d
                .attr("diskId")
                .ok_or_else(|| Error::invalid(origin, "OVF Disk without ovf:diskId"))?;
            let raw: u64 =
                d.attr("capacity").and_then(|c| c.trim().parse().ok()).ok_or_else(|| {
                    Error::invalid(origin, format!("OVF disk {id:?} has no numeric ovf:capacity"))
                })?;
            let capacity =
                scale_units(raw, d.attr("capacityAllocationUnits")).ok_or_else(|| {
                    Error::invalid(
                        origin,
                        format!(
                            "OVF disk {id:?}: unknown capacity units {:?}",
                            d.attr("capacityAllocationUnits")
                        ),
                    )
                })?;
            disks.push(OvfDisk {
                disk_id: id.to_string(),
                file_ref: d.attr("fileRef").map(str::to_string),
                capacity,
                populated_size: d.attr("populatedSize").and_then(|s| s.parse().ok()),
                format: d.attr("format").map(str::to_string),
                controller: None,
                controller_model: None,
                unit: None,
            });
        }
        let mut desc = OvfDescriptor {
            name,
            uuid: None,
            genid: None,
            os_id: None,
            os_type: None,
            os_description: None,
            cpus: None,
            cores_per_socket: None,
            memory_mib: None,
            firmware: "bios".into(),
            secure_boot: false,
            hardware_family: None,
            files,
            disks,
            nics: Vec::new(),
        };
        if let Some(os) = vs.child("OperatingSystemSection") {
            desc.os_id = os.attr("id").and_then(|v| v.parse().ok());
            desc.os_type = os.attr("osType").map(str::to_string);
            desc.os_description = os.child_text("Description").map(str::to_string);
        }
        if let Some(hw) = vs.child("VirtualHardwareSection") {
            desc.read_hardware(hw);
        }
        for (i, nic) in desc.nics.iter_mut().enumerate() {
            if let Some(mac) = &nic.mac {
                let what = format!("network adapter {} ({:?})", i + 1, nic.name);
                nic.mac = Some(super::vmx::normalize_mac(origin, &what, mac)?);
            }
        }
        Ok(desc)
    }

    fn read_hardware(&mut self, hw: &Element) {
        self.hardware_family =
            hw.child("System").and_then(|s| s.child_text("VirtualSystemType")).map(str::to_string);
        // Items are `Item` in OVF 1.x and `Item`/`StorageItem`/`EthernetPortItem` in 2.x.
        let items: Vec<&Element> =
            hw.children.iter().filter(|c| c.name.ends_with("Item")).collect();
        let text = |i: &Element, n: &str| i.child_text(n).map(str::to_string);
        let mut controllers = Vec::new();
        for item in &items {
            let rt = item.child_text("ResourceType").unwrap_or("");
            let kind = match rt {
                resource_type::IDE_CONTROLLER => Some("ide"),
                resource_type::SCSI_CONTROLLER => Some("scsi"),
                resource_type::SATA_CONTROLLER => Some("sata"),
                // VMware writes NVMe as an "other" device with this sub-type.
                _ if item.child_text("ResourceSubType") == Some("vmware.nvme.controller") => {
                    Some("nvme")
                }
                _ => None,
            };
            if let (Some(kind), Some(id)) = (kind, item.child_text("InstanceID")) {
                controllers.push((id.to_string(), kind, text(item, "ResourceSubType")));
            }
        }
        for item in &items {
            match item.child_text("ResourceType").unwrap_or("") {
                resource_type::PROCESSOR => {
                    self.cpus = item.child_text("VirtualQuantity").and_then(|v| v.parse().ok());
                    self.cores_per_socket =
                        item.child_text("CoresPerSocket").and_then(|v| v.parse().ok());
                }
                resource_type::MEMORY => {
                    let q = item.child_text("VirtualQuantity").and_then(|v| v.parse().ok());
                    let units = item.child_text("AllocationUnits").or(Some("byte * 2^20"));
                    self.memory_mib = q.and_then(|q| scale_units(q, units)).map(|b| b >> 20);
                }
                resource_type::ETHERNET => self.nics.push(OvfNic {
                    name: text(item, "ElementName").unwrap_or_default(),
                    mac: item.child_text("Address").map(str::to_ascii_lowercase),
                    network: text(item, "Connection"),
                    model: text(item, "ResourceSubType"),
                }),
                resource_type::DISK => {
                    let Some(host) = item.child_text("HostResource") else { continue };
                    // `ovf:/disk/vmdisk1` (or the older `/disk/vmdisk1`).
                    let id = host.rsplit('/').next().unwrap_or(host);
                    let parent = item.child_text("Parent");
                    let unit = item.child_text("AddressOnParent").and_then(|v| v.parse().ok());
                    let ctrl = controllers.iter().find(|(cid, _, _)| Some(cid.as_str()) == parent);
                    if let Some(d) = self.disks.iter_mut().find(|d| d.disk_id == id) {
                        d.controller = ctrl.map(|c| c.1.to_string());
                        d.controller_model = ctrl.and_then(|c| c.2.clone());
                        d.unit = unit;
                    }
                }
                resource_type::CDROM => {}
                _ => {}
            }
        }
        for cfg in hw.children_named("Config") {
            match (cfg.attr("key"), cfg.attr("value")) {
                (Some("firmware"), Some(v)) => {
                    self.firmware = if v == "efi" { "efi".into() } else { "bios".into() }
                }
                (Some("uefi.secureBoot.enabled"), Some(v)) => self.secure_boot = v == "true",
                _ => {}
            }
        }
    }

    /// The file a disk refers to.
    pub fn file_of(&self, disk: &OvfDisk) -> Option<&OvfFile> {
        let r = disk.file_ref.as_deref()?;
        self.files.iter().find(|f| f.id == r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(scale_units(16, Some("byte * 2^30")), Some(16 << 30));
        assert_eq!(scale_units(5, None), Some(5));
        assert_eq!(scale_units(3, Some("byte * 1024")), Some(3072));
        assert_eq!(scale_units(1, Some("MegaBytes")), Some(1 << 20));
        assert_eq!(scale_units(1, Some("furlongs")), None);
    }

    #[test]
    fn non_ovf_root_is_named() {
        let err =
            OvfDescriptor::parse(Path::new("d.xml"), "<domain type='kvm'></domain>").unwrap_err();
        assert!(err.to_string().contains("<domain>"), "{err}");
    }
}
