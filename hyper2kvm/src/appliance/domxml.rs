//! A libvirt domain XML as an input: a VM already described for libvirt (from another host, or
//! exported with `virsh dumpxml`), read into the same [`OvfDescriptor`] an OVF gives.
//!
//! We take the name, UUID, memory, vCPUs and topology, firmware (`<os firmware='efi'>` or a
//! pflash `<loader>`) and secure boot, the file-backed hard disks in boot order (`<boot
//! order>` first, then document order; CD-ROMs, floppies and network disks ignored) and the
//! interfaces with their MACs and networks or bridges.

use std::path::Path;

use super::ovf::{OvfDescriptor, OvfDisk, OvfFile, OvfNic};
use super::vmx::normalize_mac;
use super::xml::{self, Element};
use crate::error::{Error, Result};

/// `<memory unit=...>` to MiB (libvirt's default unit is KiB).
fn memory_mib(origin: &Path, e: &Element) -> Result<u64> {
    let v: u64 =
        e.text.trim().parse().map_err(|_| {
            Error::invalid(origin, format!("<memory> {:?} is not a number", e.text))
        })?;
    let shift = match e.attr("unit").unwrap_or("KiB") {
        "b" | "bytes" => 0,
        "k" | "KiB" => 10,
        "KB" => return Ok(v.saturating_mul(1000) >> 20),
        "M" | "MiB" => 20,
        "MB" => return Ok(v.saturating_mul(1_000_000) >> 20),
        "G" | "GiB" => 30,
        "GB" => return Ok(v.saturating_mul(1_000_000_000) >> 20),
        "T" | "TiB" => 40,
        u => return Err(Error::invalid(origin, format!("<memory unit={u:?}> is not a unit"))),
    };
    Ok(v.checked_shl(shift).filter(|x| x >> shift == v).unwrap_or(u64::MAX) >> 20)
}

/// True when `root` is a libvirt `<domain>`.
pub fn is_domain(root: &Element) -> bool {
    root.name == "domain"
}

/// Parses a libvirt domain XML document.
pub fn parse(origin: &Path, text: &str) -> Result<OvfDescriptor> {
    let root = xml::parse(origin, text)?;
    if !is_domain(&root) {
        return Err(Error::invalid(
            origin,
            format!(
                "XML root is <{}>, neither an OVF <Envelope> nor a libvirt <domain>",
                root.name
            ),
        ));
    }
    let name = root
        .child_text("name")
        .map(str::to_string)
        .ok_or_else(|| Error::invalid(origin, "libvirt domain without a <name>"))?;
    let memory = root.child("memory").map(|m| memory_mib(origin, m)).transpose()?;
    let cpus = root.child_text("vcpu").and_then(|v| v.trim().parse().ok());
    let cores = root
        .child("cpu")
        .and_then(|c| c.child("topology"))
        .and_then(|t| t.attr("cores"))
        .and_then(|v| v.parse().ok());
    let os = root.child("os");
    let loader = os.and_then(|o| o.child("loader"));
    let efi = os.and_then(|o| o.attr("firmware")) == Some("efi")
        || loader.and_then(|l| l.attr("type")) == Some("pflash")
        || loader.is_some_and(|l| l.text.to_ascii_lowercase().contains("ovmf"));
    let secure = loader.and_then(|l| l.attr("secure")) == Some("yes")
        || os.and_then(|o| o.child("firmware")).is_some_and(|f| {
            f.children_named("feature")
                .any(|x| x.attr("name") == Some("secure-boot") && x.attr("enabled") == Some("yes"))
        });

    let devices = root.child("devices");
    let mut disks: Vec<(u32, usize, OvfDisk, OvfFile)> = Vec::new();
    for (i, d) in devices.into_iter().flat_map(|x| x.children_named("disk")).enumerate() {
        if d.attr("device").unwrap_or("disk") != "disk" {
            continue;
        }
        let Some(src) = d.child("source").and_then(|s| s.attr("file").or(s.attr("dev"))) else {
            continue;
        };
        let target = d.child("target");
        let dev = target.and_then(|t| t.attr("dev")).unwrap_or("").to_string();
        let order = d.child("boot").and_then(|b| b.attr("order")).and_then(|o| o.parse().ok());
        let id = format!("file{i}");
        disks.push((
            order.unwrap_or(u32::MAX),
            i,
            OvfDisk {
                disk_id: if dev.is_empty() { format!("disk{i}") } else { dev },
                file_ref: Some(id.clone()),
                capacity: 0,
                populated_size: None,
                format: d.child("driver").and_then(|x| x.attr("type")).map(str::to_string),
                controller: target.and_then(|t| t.attr("bus")).map(str::to_string),
                controller_model: None,
                unit: None,
            },
            OvfFile { id, href: src.to_string(), size: None, compression: None },
        ));
    }
    disks.sort_by_key(|(order, i, _, _)| (*order, *i));
    let mut nics = Vec::new();
    for (i, n) in devices.into_iter().flat_map(|x| x.children_named("interface")).enumerate() {
        let mac = n
            .child("mac")
            .and_then(|m| m.attr("address"))
            .map(|m| normalize_mac(origin, &format!("interface {}", i + 1), m))
            .transpose()?;
        let source = n.child("source");
        nics.push(OvfNic {
            name: format!("interface{i}"),
            mac,
            network: source
                .and_then(|s| s.attr("network").or(s.attr("bridge")))
                .map(str::to_string),
            model: n.child("model").and_then(|m| m.attr("type")).map(str::to_string),
        });
    }
    Ok(OvfDescriptor {
        name,
        uuid: root.child_text("uuid").map(|u| u.trim().to_ascii_lowercase()),
        genid: root.child_text("genid").map(|u| u.trim().to_ascii_lowercase()),
        os_id: None,
        os_type: None,
        os_description: root.child_text("description").map(str::to_string),
        cpus,
        cores_per_socket: cores,
        memory_mib: memory,
        firmware: if efi { "efi".into() } else { "bios".into() },
        secure_boot: secure,
        hardware_family: os
            .and_then(|o| o.child("type"))
            .and_then(|t| t.attr("machine"))
            .map(str::to_string),
        files: disks.iter().map(|d| d.3.clone()).collect(),
        disks: disks.into_iter().map(|d| d.2).collect(),
        nics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = r#"<domain type='kvm'>
  <name>web</name>
  <uuid>0F0E0D0C-0B0A-0908-0706-050403020100</uuid>
  <memory unit='GiB'>2</memory>
  <vcpu placement='static'>4</vcpu>
  <cpu mode='host-passthrough'><topology sockets='1' dies='1' cores='2' threads='2'/></cpu>
  <os firmware='efi'>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <firmware><feature enabled='yes' name='secure-boot'/></firmware>
  </os>
  <devices>
    <disk type='file' device='cdrom'><source file='/isos/x.iso'/><target dev='sda' bus='sata'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='data.qcow2'/><target dev='vdb' bus='virtio'/><boot order='2'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/var/lib/libvirt/images/web.img'/><target dev='vda' bus='virtio'/><boot order='1'/></disk>
    <interface type='network'><mac address='52:54:00:AA:BB:CC'/><source network='default'/><model type='virtio'/></interface>
    <interface type='bridge'><source bridge='br0'/></interface>
  </devices>
</domain>"#;

    #[test]
    fn reads_a_domain() {
        let d = parse(Path::new("web.xml"), DOMAIN).unwrap();
        assert_eq!(d.name, "web");
        assert_eq!(d.uuid.as_deref(), Some("0f0e0d0c-0b0a-0908-0706-050403020100"));
        assert_eq!((d.memory_mib, d.cpus, d.cores_per_socket), (Some(2048), Some(4), Some(2)));
        assert_eq!((d.firmware.as_str(), d.secure_boot), ("efi", true));
        let hrefs: Vec<&str> = d.files.iter().map(|f| f.href.as_str()).collect();
        assert_eq!(hrefs, vec!["/var/lib/libvirt/images/web.img", "data.qcow2"], "boot order");
        assert_eq!(d.disks[0].disk_id, "vda");
        assert_eq!(d.nics[0].mac.as_deref(), Some("52:54:00:aa:bb:cc"));
        assert_eq!(d.nics[1].network.as_deref(), Some("br0"));
        assert_eq!(d.nics[1].mac, None);
    }

    #[test]
    fn other_documents_and_bad_values_are_refused() {
        let e = parse(Path::new("net.xml"), "<network><name>default</name></network>").unwrap_err();
        assert!(e.to_string().contains("net.xml") && e.to_string().contains("<network>"), "{e}");
        let bad = DOMAIN.replace("52:54:00:AA:BB:CC", "52:54:00:AA:BB:ZZ");
        let e = parse(Path::new("web.xml"), &bad).unwrap_err();
        assert!(e.to_string().contains("is not a MAC address"), "{e}");
        let e = parse(Path::new("web.xml"), "<domain><memory>2</memory></domain>").unwrap_err();
        assert!(e.to_string().contains("<name>"), "{e}");
    }
}
