//! VMware's `.vmx` configuration file: `key = "value"` lines describing a VM's hardware.
//!
//! We read what a KVM guest needs — name, memory, vCPUs and cores per socket, firmware and
//! secure boot, guest OS, BIOS UUID, NICs with their MACs and networks, and the hard disks on
//! SCSI, SATA, NVMe and IDE controllers (CD-ROMs and absent devices ignored) — into the same
//! [`OvfDescriptor`] an OVF gives, so a VMX is accepted wherever an OVF is.
//!
//! Disk order (the boot order on KVM): `bios.hddOrder` first when set, then by controller kind
//! (SCSI, SATA, NVMe, IDE — VMware's own default search order), controller number and unit.

use std::collections::BTreeMap;
use std::path::Path;

use super::ovf::{OvfDescriptor, OvfDisk, OvfFile, OvfNic};
use crate::error::{Error, Result};

/// Largest VMX we read; real ones are a few KiB.
pub const MAX_VMX_BYTES: u64 = 1 << 20;

/// Parses `key = "value"` lines (keys are case-insensitive in VMware; we lower-case them).
fn entries(origin: &Path, text: &str) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(Error::invalid(
                origin,
                format!("line {}: not of the form key = \"value\": {line:?}", n + 1),
            ));
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value)
            .replace("|22", "\"")
            .replace("|7C", "|");
        map.insert(key.trim().to_ascii_lowercase(), value);
    }
    Ok(map)
}

/// Checks and normalises a MAC address to lower case `xx:xx:xx:xx:xx:xx`.
pub fn normalize_mac(origin: &Path, what: &str, mac: &str) -> Result<String> {
    crate::io::parse_mac(mac, &[':', '-'])
        .ok_or_else(|| Error::invalid(origin, format!("{what}: {mac:?} is not a MAC address")))
}

/// `56 4d 12 34 ... -ab cd ...` (VMware's uuid.bios) → `564d1234-...` (RFC 4122 text).
fn vmware_uuid(v: &str) -> Option<String> {
    let hex: String = v.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if hex.len() != 32 {
        return None;
    }
    let h = hex.to_ascii_lowercase();
    Some(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

/// VMware's generation ID, two signed 64-bit decimals (`vm.genid`, `vm.genidX`), in the
/// `<genid>` form that makes the guest read the same 128 bits it read on VMware. QEMU stores
/// the GUID's first three fields little-endian, so they are written here byte-swapped
/// (the low word's 32-, 16- and 16-bit fields reversed, the high word's bytes reversed), as
/// virt-v2v also does (its docs/vm-generation-id-across-hypervisors.txt).
fn vmware_genid(lo: &str, hi: &str) -> Option<String> {
    let lo = lo.trim().parse::<i64>().ok()? as u64;
    let hi = hi.trim().parse::<i64>().ok()? as u64;
    let l = format!("{lo:016x}");
    let h: String = hi.to_le_bytes().iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("{}-{}-{}-{}-{}", &l[8..16], &l[4..8], &l[0..4], &h[0..4], &h[4..16]))
}

fn truthy(v: Option<&String>) -> bool {
    v.is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Controller kinds in VMware's default boot search order.
const BUSES: [&str; 4] = ["scsi", "sata", "nvme", "ide"];

/// A disk slot key such as `scsi0:1` split into (kind rank, controller, unit).
fn slot(key: &str) -> Option<(usize, u32, u32)> {
    let (ctrl, unit) = key.split_once(':')?;
    let rank = BUSES.iter().position(|b| ctrl.starts_with(b))?;
    let num = ctrl[BUSES[rank].len()..].parse().ok()?;
    Some((rank, num, unit.parse().ok()?))
}

/// Parses a VMX file's text.
pub fn parse(origin: &Path, text: &str) -> Result<OvfDescriptor> {
    let e = entries(origin, text)?;
    let get = |k: &str| e.get(k);
    let name = get("displayname").cloned().unwrap_or_else(|| {
        origin.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    });
    let num = |k: &str| -> Result<Option<u64>> {
        match get(k) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| Error::invalid(origin, format!("{k} = {v:?} is not a number"))),
        }
    };

    // Disks: every `<bus><n>:<unit>.fileName` whose device is present and a hard disk.
    let mut slots: Vec<(String, (usize, u32, u32))> = e
        .keys()
        .filter_map(|k| k.strip_suffix(".filename"))
        .filter_map(|s| slot(s).map(|pos| (s.to_string(), pos)))
        .filter(|(s, _)| {
            let present =
                get(&format!("{s}.present")).is_none_or(|v| v.eq_ignore_ascii_case("true"));
            let dev = get(&format!("{s}.devicetype")).map(|d| d.to_ascii_lowercase());
            let is_cd = dev.as_deref().is_some_and(|d| d.contains("cdrom") || d.contains("atapi"));
            let file = get(&format!("{s}.filename")).map(|f| f.to_ascii_lowercase());
            present && !is_cd && file.is_some_and(|f| f.ends_with(".vmdk"))
        })
        .collect();
    let hdd_order: Vec<String> = get("bios.hddorder")
        .map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()).collect())
        .unwrap_or_default();
    slots.sort_by_key(|(s, pos)| {
        (hdd_order.iter().position(|h| h == s).unwrap_or(usize::MAX), *pos)
    });
    let mut files = Vec::new();
    let mut disks = Vec::new();
    for (i, (s, (rank, ctrl, unit))) in slots.iter().enumerate() {
        let href = get(&format!("{s}.filename")).cloned().unwrap_or_default();
        let id = format!("file{i}");
        files.push(OvfFile { id: id.clone(), href, size: None, compression: None });
        let bus = BUSES[*rank];
        disks.push(OvfDisk {
            disk_id: s.clone(),
            file_ref: Some(id),
            capacity: 0,
            populated_size: None,
            format: None,
            controller: Some(bus.to_string()),
            controller_model: get(&format!("{bus}{ctrl}.virtualdev")).cloned(),
            unit: Some(*unit),
        });
    }

    // NICs: ethernetN with present = TRUE, in N order.
    let mut nic_ids: Vec<u32> = e
        .keys()
        .filter_map(|k| k.strip_prefix("ethernet")?.strip_suffix(".present")?.parse().ok())
        .collect();
    nic_ids.sort_unstable();
    let mut nics = Vec::new();
    for n in nic_ids {
        let k = |f: &str| format!("ethernet{n}.{f}");
        if !truthy(get(&k("present"))) {
            continue;
        }
        let static_mac = get(&k("addresstype")).is_some_and(|t| t.eq_ignore_ascii_case("static"));
        let raw = if static_mac {
            get(&k("address")).or(get(&k("generatedaddress")))
        } else {
            get(&k("generatedaddress")).or(get(&k("address")))
        };
        let mac = raw.map(|m| normalize_mac(origin, &k("address"), m)).transpose()?;
        nics.push(OvfNic {
            name: format!("ethernet{n}"),
            mac,
            network: get(&k("networkname")).or(get(&k("vnet"))).cloned(),
            model: get(&k("virtualdev")).cloned(),
        });
    }

    Ok(OvfDescriptor {
        name,
        uuid: get("uuid.bios").and_then(|u| vmware_uuid(u)),
        genid: get("vm.genid").zip(get("vm.genidx")).and_then(|(lo, hi)| vmware_genid(lo, hi)),
        os_id: None,
        os_type: get("guestos").cloned(),
        os_description: None,
        cpus: num("numvcpus")?.map(|n| n as u32).or(Some(1)),
        cores_per_socket: num("cpuid.corespersocket")?.map(|n| n as u32),
        memory_mib: num("memsize")?,
        firmware: if get("firmware").is_some_and(|f| f.eq_ignore_ascii_case("efi")) {
            "efi".into()
        } else {
            "bios".into()
        },
        secure_boot: truthy(get("uefi.secureboot.enabled")),
        hardware_family: get("virtualhw.version").map(|v| format!("vmx-{v}")),
        files,
        disks,
        nics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genid_reads_back_as_vmware_wrote_it() {
        // The values from a VMware guest whose VMGENID.EXE printed
        // 8987940a09512cc5:e81510634ff550b9 (qemu-devel, 2021-09-29).
        assert_eq!(
            vmware_genid("-8536691797830587195", "-1723453263670062919").as_deref(),
            Some("09512cc5-940a-8987-b950-f54f631015e8")
        );
        assert_eq!(vmware_genid("12", "x"), None);
    }

    const VMX: &str = r#".encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
displayName = "app01"
guestOS = "rhel9-64"
firmware = "efi"
uefi.secureBoot.enabled = "TRUE"
memsize = "4096"
numvcpus = "4"
cpuid.coresPerSocket = "2"
uuid.bios = "56 4d 12 34 56 78 9a bc-de f0 12 34 56 78 9a bc"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "app01.vmdk"
sata0.present = "TRUE"
sata0:0.present = "TRUE"
sata0:0.fileName = "app01_1.vmdk"
sata0:1.present = "TRUE"
sata0:1.deviceType = "cdrom-image"
sata0:1.fileName = "/vmfs/volumes/iso/rhel.iso"
nvme0.present = "TRUE"
nvme0:0.present = "TRUE"
nvme0:0.fileName = "app01_2.vmdk"
ide0:0.present = "FALSE"
ide0:0.fileName = "old.vmdk"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "generated"
ethernet0.generatedAddress = "00:50:56:AB:00:01"
ethernet1.present = "TRUE"
ethernet1.virtualDev = "e1000e"
ethernet1.networkName = "Backup"
ethernet1.addressType = "static"
ethernet1.address = "00:50:56:00:00:02"
ethernet2.present = "FALSE"
"#;

    #[test]
    fn reads_hardware_disks_and_nics() {
        let d = parse(Path::new("app01.vmx"), VMX).unwrap();
        assert_eq!(d.name, "app01");
        assert_eq!(d.memory_mib, Some(4096));
        assert_eq!((d.cpus, d.cores_per_socket), (Some(4), Some(2)));
        assert_eq!((d.firmware.as_str(), d.secure_boot), ("efi", true));
        assert_eq!(d.os_type.as_deref(), Some("rhel9-64"));
        assert_eq!(d.uuid.as_deref(), Some("564d1234-5678-9abc-def0-123456789abc"));
        let disks: Vec<(&str, &str, Option<u32>)> = d
            .disks
            .iter()
            .map(|x| (x.disk_id.as_str(), x.controller.as_deref().unwrap(), x.unit))
            .collect();
        assert_eq!(
            disks,
            vec![
                ("scsi0:0", "scsi", Some(0)),
                ("sata0:0", "sata", Some(0)),
                ("nvme0:0", "nvme", Some(0))
            ]
        );
        assert_eq!(d.file_of(&d.disks[2]).unwrap().href, "app01_2.vmdk");
        assert_eq!(d.disks[0].controller_model.as_deref(), Some("pvscsi"));
        let macs: Vec<_> = d.nics.iter().map(|n| n.mac.clone().unwrap()).collect();
        assert_eq!(macs, vec!["00:50:56:ab:00:01", "00:50:56:00:00:02"]);
        assert_eq!(d.nics[1].network.as_deref(), Some("Backup"));
    }

    #[test]
    fn hdd_order_wins() {
        let text = format!("{VMX}bios.hddOrder = \"nvme0:0\"\n");
        let d = parse(Path::new("app01.vmx"), &text).unwrap();
        assert_eq!(d.disks[0].disk_id, "nvme0:0");
    }

    #[test]
    fn bad_values_are_named() {
        let bad_mac = VMX.replace("00:50:56:AB:00:01", "00:50:56:AB:00");
        let e = parse(Path::new("x.vmx"), &bad_mac).unwrap_err();
        assert!(e.to_string().contains("is not a MAC address"), "{e}");
        assert!(e.to_string().contains("x.vmx"), "{e}");
        let e = parse(Path::new("x.vmx"), "memsize = \"lots\"\n").unwrap_err();
        assert!(e.to_string().contains("memsize"), "{e}");
        let e = parse(Path::new("x.vmx"), "garbage line\n").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        assert!(crate::formats::container::looks_like_vmx(VMX.as_bytes()));
    }
}
