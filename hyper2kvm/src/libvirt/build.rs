//! Choosing the domain's devices from everything known about the VM: its description (OVF,
//! VMX, libvirt XML, or the Artifact Manifest's `vm` and `nics`), the inspection of its guest,
//! and the converted disks.
//!
//! Precedence: the description's firmware wins over what inspection saw on the disk (the
//! source hypervisor knew how it booted the VM); memory and vCPUs come from the description
//! (2 GiB and 2 vCPUs when nothing says); Windows guests (by inspection or description) get
//! Hyper-V enlightenments, a local-time clock (UTC when the guest sets `RealTimeIsUniversal`)
//! and a VGA display; guests too old for PCIe get the i440fx machine. The disk bus and NIC
//! model come from the options, which the conversion narrows to what the guest has drivers
//! for (SATA and e1000 for a Windows without virtio drivers).

use std::path::PathBuf;

use serde::Serialize;

use super::firmware::{self, Ovmf};
use super::model::{
    Clock, Disk, DiskBus, Domain, DomainType, Firmware, Graphics, Interface, Machine, NetSource,
    NicModel, Uefi,
};
use crate::appliance::ovf::OvfDescriptor;
use crate::error::{Error, ErrorKind, Result};
use crate::guest::inspect::{Inspection, OsType};

/// Memory when the source does not say (MiB).
pub const DEFAULT_MEMORY_MIB: u64 = 2048;
/// vCPUs when the source does not say.
pub const DEFAULT_VCPUS: u32 = 2;

/// One NIC of the source VM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceNic {
    /// Its MAC address (normalised).
    pub mac: Option<String>,
    /// The source network's name (informational).
    pub network: Option<String>,
}

/// What the source hypervisor said about the VM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VmDescription {
    /// VM name.
    pub name: String,
    /// UUID, when the source had one.
    pub uuid: Option<String>,
    /// Memory (MiB).
    pub memory_mib: Option<u64>,
    /// vCPUs.
    pub vcpus: Option<u32>,
    /// Cores per socket.
    pub cores_per_socket: Option<u32>,
    /// `Some(true)` for UEFI, `Some(false)` for BIOS, `None` when unknown.
    pub uefi: Option<bool>,
    /// Secure boot.
    pub secure_boot: bool,
    /// The source's guest OS identifier (`debian11_64Guest`, `windows9-64`, `rhel5`, …).
    pub os_id: Option<String>,
    /// NICs in order.
    pub nics: Vec<SourceNic>,
    /// True when the source lists its NICs (OVF, VMX, libvirt XML), so that an empty list
    /// means the VM has none; false for a bare disk or a manifest without `nics`, where the
    /// guest's own network configuration decides.
    pub nics_declared: bool,
    /// The VM generation ID (`<genid>`) the source recorded (VMware `vm.genid`/`vm.genidX`),
    /// which Windows Active Directory uses to notice rollbacks.
    pub genid: Option<String>,
    /// Where the description came from (for the domain's `<description>`).
    pub origin: String,
}

impl VmDescription {
    /// From an OVF, VMX or libvirt XML (all read into an [`OvfDescriptor`]).
    pub fn from_descriptor(d: &OvfDescriptor, origin: &str) -> VmDescription {
        VmDescription {
            name: d.name.clone(),
            uuid: d.uuid.clone(),
            memory_mib: d.memory_mib,
            vcpus: d.cpus,
            cores_per_socket: d.cores_per_socket,
            uefi: Some(d.firmware == "efi"),
            secure_boot: d.secure_boot,
            os_id: d.os_type.clone().or_else(|| d.os_description.clone()),
            nics: d
                .nics
                .iter()
                .map(|n| SourceNic { mac: n.mac.clone(), network: n.network.clone() })
                .collect(),
            nics_declared: true,
            genid: d.genid.clone(),
            origin: origin.to_string(),
        }
    }
}

/// Choices for the generated domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainOptions {
    /// Driver type (`kvm` on real hosts).
    pub domain_type: DomainType,
    /// Where NICs are plugged (`LIBVIRT_BRIDGE` gives a bridge), unless `network_map` says.
    pub network: NetSource,
    /// The user chose `network` (`--network`, `--bridge`): a source that declares no NICs
    /// still gets one there. Otherwise such a source gets none.
    pub network_chosen: bool,
    /// Source network name → where its NICs are plugged (`--network-map SRC=DST`). A NIC on
    /// a network not listed goes to `network` (with a warning, [`unmapped_networks`]).
    pub network_map: Vec<(String, NetSource)>,
    /// Disk bus.
    pub disk_bus: DiskBus,
    /// NIC model.
    pub nic_model: NicModel,
    /// Display.
    pub graphics: Graphics,
    /// A fixed UUID instead of the source's or a random one.
    pub uuid: Option<String>,
    /// Firmware files instead of searching the host (tests, unusual hosts).
    pub ovmf: Option<Ovmf>,
}

impl Default for DomainOptions {
    fn default() -> Self {
        DomainOptions {
            domain_type: DomainType::Kvm,
            network: NetSource::Network("default".into()),
            network_chosen: false,
            network_map: Vec::new(),
            disk_bus: DiskBus::VirtioBlk,
            nic_model: NicModel::Virtio,
            graphics: Graphics::Vnc,
            uuid: None,
            ovmf: None,
        }
    }
}

impl DomainOptions {
    /// Where a NIC on the source network `name` is plugged.
    pub fn network_for(&self, name: Option<&str>) -> NetSource {
        name.and_then(|n| self.network_map.iter().find(|(src, _)| src == n))
            .map_or_else(|| self.network.clone(), |(_, dst)| dst.clone())
    }
}

/// One warning per source network that `network_map` (when one is given) does not list.
pub fn unmapped_networks(desc: &VmDescription, opts: &DomainOptions) -> Vec<String> {
    if opts.network_map.is_empty() {
        return Vec::new();
    }
    let mut names: Vec<&str> = desc.nics.iter().filter_map(|n| n.network.as_deref()).collect();
    names.dedup();
    names
        .into_iter()
        .filter(|n| !opts.network_map.iter().any(|(src, _)| src == n))
        .map(|n| {
            let to = match &opts.network {
                NetSource::Network(x) => format!("network {x:?}"),
                NetSource::Bridge(b) => format!("bridge {b:?}"),
            };
            format!("source network {n:?} is not in the network map; its NICs join {to}")
        })
        .collect()
}

/// One converted disk, in boot order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDisk {
    /// The output image.
    pub path: PathBuf,
    /// `qcow2` or `raw`.
    pub format: String,
}

/// A fresh random (version 4) UUID.
pub fn random_uuid() -> String {
    let mut b = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
    if read.is_err() {
        // No /dev/urandom: time and process id are unique enough for a domain name's UUID.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b.copy_from_slice(&(t ^ (u128::from(std::process::id()) << 64)).to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_windows(desc: &VmDescription, insp: Option<&Inspection>) -> bool {
    match insp {
        Some(i) if i.os_type != OsType::Other("unknown".into()) => i.os_type == OsType::Windows,
        _ => desc.os_id.as_deref().is_some_and(|o| o.to_ascii_lowercase().starts_with("win")),
    }
}

/// Guests whose kernels or OS predate q35/PCIe support: Linux 2.x kernels, and by the
/// source's OS id Windows XP/2003/2000 and RHEL/CentOS/SLES of that age.
fn too_old_for_q35(desc: &VmDescription, insp: Option<&Inspection>) -> bool {
    if let Some(i) = insp
        && !i.kernels.is_empty()
    {
        return i.kernels.iter().all(|k| k.version.starts_with("2."));
    }
    let os = desc.os_id.as_deref().unwrap_or("").to_ascii_lowercase();
    const OLD: [&str; 10] = [
        "winxp", "winnet", "win2000", "winnt", "win98", "rhel4", "rhel5", "centos5", "sles10",
        "sles9",
    ];
    OLD.iter().any(|o| os.starts_with(o))
}

/// The guest device names: `vda`, `vdb`, … `vdz`, `vdaa`.
fn target_name(prefix: &str, index: usize) -> String {
    let mut n = index;
    let mut letters = Vec::new();
    loop {
        letters.push(b'a' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    letters.reverse();
    format!("{prefix}{}", String::from_utf8_lossy(&letters))
}

/// Builds the domain. `nvram` is where this domain's UEFI variable store will be written.
pub fn build_domain(
    desc: &VmDescription,
    insp: Option<&Inspection>,
    disks: &[DomainDisk],
    nvram: PathBuf,
    opts: &DomainOptions,
) -> Result<Domain> {
    if disks.is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, "a domain needs at least one disk"));
    }
    let uuid = match opts.uuid.clone().or_else(|| desc.uuid.clone()) {
        Some(u) if is_uuid(&u) => u.to_ascii_lowercase(),
        Some(u) => {
            return Err(Error::new(ErrorKind::InvalidInput, format!("{u:?} is not a UUID")));
        }
        None => random_uuid(),
    };
    let uefi = desc.uefi.unwrap_or_else(|| insp.is_some_and(|i| i.firmware == "uefi"));
    let firmware = if uefi {
        let ovmf = match &opts.ovmf {
            Some(o) => o.clone(),
            None => firmware::find(desc.secure_boot).ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "the guest boots with UEFI{} but no OVMF firmware was found (install \
                         Debian's ovmf or Fedora's edk2-ovmf)",
                        if desc.secure_boot { " and secure boot" } else { "" }
                    ),
                )
            })?,
        };
        Firmware::Uefi(Uefi {
            loader: ovmf.code,
            nvram,
            template: Some(ovmf.vars),
            secure_boot: desc.secure_boot,
        })
    } else {
        Firmware::Bios
    };
    let windows = is_windows(desc, insp);
    // Windows keeps the RTC in local time unless told otherwise.
    let rtc_is_utc =
        insp.and_then(|i| i.windows.as_ref()).is_some_and(|w| w.real_time_is_universal);
    let prefix = if opts.disk_bus == DiskBus::VirtioBlk { "vd" } else { "sd" };
    let machine = if too_old_for_q35(desc, insp) && !desc.secure_boot {
        Machine::I440fx
    } else {
        Machine::Q35
    };
    let interfaces = if desc.nics.is_empty() {
        if desc.nics_declared && !opts.network_chosen {
            // The source VM has no network adapter: neither does the domain.
            Vec::new()
        } else {
            vec![Interface { mac: None, source: opts.network.clone(), model: opts.nic_model }]
        }
    } else {
        desc.nics
            .iter()
            .map(|n| Interface {
                mac: n.mac.clone(),
                source: opts.network_for(n.network.as_deref()),
                model: opts.nic_model,
            })
            .collect()
    };
    Ok(Domain {
        domain_type: opts.domain_type,
        name: desc.name.clone(),
        uuid,
        genid: desc.genid.clone().filter(|g| is_uuid(g)).map(|g| g.to_ascii_lowercase()),
        description: format!("Converted by hyper2kvm {} from {}", crate::VERSION, desc.origin),
        memory_mib: desc.memory_mib.filter(|&m| m > 0).unwrap_or(DEFAULT_MEMORY_MIB),
        vcpus: desc.vcpus.filter(|&c| c > 0).unwrap_or(DEFAULT_VCPUS),
        cores_per_socket: desc.cores_per_socket,
        machine,
        firmware,
        windows,
        clock: if windows && !rtc_is_utc { Clock::Localtime } else { Clock::Utc },
        disks: disks
            .iter()
            .enumerate()
            .map(|(i, d)| Disk {
                path: d.path.clone(),
                format: d.format.clone(),
                bus: opts.disk_bus,
                target: target_name(prefix, i),
                boot_order: i as u32 + 1,
            })
            .collect(),
        interfaces,
        graphics: opts.graphics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_uuids_and_age() {
        assert_eq!(target_name("vd", 0), "vda");
        assert_eq!(target_name("vd", 25), "vdz");
        assert_eq!(target_name("sd", 26), "sdaa");
        let u = random_uuid();
        assert!(is_uuid(&u), "{u}");
        assert_eq!(&u[14..15], "4");
        assert_ne!(random_uuid(), u);
        assert!(!is_uuid("not-a-uuid"));
        let old = VmDescription { os_id: Some("winNetEnterprise".into()), ..Default::default() };
        assert!(too_old_for_q35(&old, None));
        let new = VmDescription { os_id: Some("debian11_64Guest".into()), ..Default::default() };
        assert!(!too_old_for_q35(&new, None));
        assert!(is_windows(
            &VmDescription { os_id: Some("windows9-64".into()), ..Default::default() },
            None
        ));
    }
}
