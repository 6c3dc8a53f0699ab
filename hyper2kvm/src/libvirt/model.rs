//! The typed libvirt domain we generate: only what a converted guest needs, every field a
//! value our code chose, serialized by [`to_xml`](super::xml::to_xml).

use std::path::PathBuf;

use serde::Serialize;

/// libvirt's `<domain type>`: the hypervisor driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainType {
    /// Hardware virtualization (production).
    Kvm,
    /// QEMU's TCG emulator (hosts without working KVM).
    Qemu,
    /// libvirt's `test:///` driver.
    Test,
}

impl DomainType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            DomainType::Kvm => "kvm",
            DomainType::Qemu => "qemu",
            DomainType::Test => "test",
        }
    }
}

/// The machine type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Machine {
    /// PCIe, the default.
    Q35,
    /// The older PCI machine, for guests too old for q35.
    I440fx,
}

impl Machine {
    /// libvirt's machine name.
    pub fn as_str(self) -> &'static str {
        match self {
            Machine::Q35 => "q35",
            Machine::I440fx => "pc",
        }
    }
}

/// UEFI firmware files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Uefi {
    /// The read-only firmware code (`OVMF_CODE*.fd`).
    pub loader: PathBuf,
    /// This domain's own variable store (a copy of the template).
    pub nvram: PathBuf,
    /// The template the store was copied from.
    pub template: Option<PathBuf>,
    /// Secure boot (the loader must be a secure-boot build; needs SMM).
    pub secure_boot: bool,
}

/// Firmware.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    /// SeaBIOS.
    Bios,
    /// OVMF.
    Uefi(Uefi),
}

/// The bus a disk is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskBus {
    /// virtio-blk (`vdX`), the default.
    #[default]
    VirtioBlk,
    /// virtio-scsi (`sdX` on a virtio-scsi controller).
    VirtioScsi,
    /// SATA/AHCI (`sdX`), for guests without virtio drivers.
    Sata,
}

impl std::str::FromStr for DiskBus {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<DiskBus> {
        match s {
            "virtio" | "virtio-blk" => Ok(DiskBus::VirtioBlk),
            "virtio-scsi" | "scsi" => Ok(DiskBus::VirtioScsi),
            "sata" => Ok(DiskBus::Sata),
            _ => Err(crate::Error::new(
                crate::ErrorKind::InvalidInput,
                format!("disk bus must be virtio-blk, virtio-scsi or sata, not {s:?}"),
            )),
        }
    }
}

/// One disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    /// The image file.
    pub path: PathBuf,
    /// `qcow2` or `raw`.
    pub format: String,
    /// Its bus.
    pub bus: DiskBus,
    /// Guest device name (`vda`, `sdb`).
    pub target: String,
    /// Boot order (1 = first).
    pub boot_order: u32,
}

/// Where a NIC is plugged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetSource {
    /// A libvirt network.
    Network(String),
    /// A host bridge.
    Bridge(String),
}

/// A NIC's emulated model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NicModel {
    /// virtio-net, the default (Windows needs NetKVM).
    #[default]
    Virtio,
    /// Intel e1000, which every Windows has a driver for.
    E1000,
}

impl NicModel {
    /// libvirt's model name.
    pub fn as_str(self) -> &'static str {
        match self {
            NicModel::Virtio => "virtio",
            NicModel::E1000 => "e1000",
        }
    }
}

/// One NIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    /// The source MAC, kept so the guest's configuration and DHCP reservations still apply.
    pub mac: Option<String>,
    /// Where it is plugged.
    pub source: NetSource,
    /// Its model.
    pub model: NicModel,
}

/// Remote display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Graphics {
    /// VNC on 127.0.0.1.
    #[default]
    Vnc,
    /// SPICE on 127.0.0.1.
    Spice,
    /// No display (serial console only).
    None,
}

/// The guest's clock base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Clock {
    /// RTC in UTC (Linux; Windows with `RealTimeIsUniversal`).
    Utc,
    /// RTC in local time (Windows by default).
    Localtime,
}

/// A complete domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Domain {
    /// Driver type.
    pub domain_type: DomainType,
    /// Name.
    pub name: String,
    /// UUID (the source's when it had one).
    pub uuid: String,
    /// VM generation ID (`<genid>`), when the source had one.
    pub genid: Option<String>,
    /// Free text: where it came from.
    pub description: String,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// Cores per socket (sockets = vcpus / cores), when the source set it.
    pub cores_per_socket: Option<u32>,
    /// Machine type.
    pub machine: Machine,
    /// Firmware.
    pub firmware: Firmware,
    /// Windows: Hyper-V enlightenments and a VGA display.
    pub windows: bool,
    /// Clock base.
    pub clock: Clock,
    /// Disks in boot order.
    pub disks: Vec<Disk>,
    /// NICs in source order.
    pub interfaces: Vec<Interface>,
    /// Display.
    pub graphics: Graphics,
}
