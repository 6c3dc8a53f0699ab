//! What is installed on the guest: operating system, boot chain, kernels and whether they can
//! boot from virtio, storage stack, network configuration style, hypervisor tools.
//!
//! We find a Linux guest's root and mount points ourselves ([`linux_root`]); libguestfs's
//! general `inspect_os` finds the others (Windows, several roots, md RAID, LUKS), or every
//! guest when [`Inspector::Libguestfs`] is chosen. Everything that decides what the fixers do
//! (kernels, initramfs contents, boot loader, network files) is read by our own code.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::linux_root::{self, Found};
use super::{Accel, Guest, Inspector, gerr, initramfs};
use crate::error::{Error, ErrorKind, Result};

/// ESP partition type GUID (UEFI 2.x, 5.3.3).
const GPT_ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/// BIOS boot partition type GUID (GRUB's core.img on GPT).
const GPT_BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";
/// The virtio drivers a guest needs to boot and reach the network on KVM.
pub const VIRTIO_MODULES: [&str; 4] = ["virtio_blk", "virtio_scsi", "virtio_net", "virtio_pci"];

/// One installed kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kernel {
    /// `uname -r` of the kernel.
    pub version: String,
    /// Its image in /boot.
    pub vmlinuz: Option<String>,
    /// Its initramfs in /boot.
    pub initramfs: Option<String>,
    /// virtio_blk is available (built in, or as a module under /lib/modules).
    pub virtio_capable: bool,
    /// virtio_blk is built into the kernel itself.
    pub virtio_builtin: bool,
    /// Whether the initramfs holds virtio_blk (None: no initramfs or unreadable).
    pub initramfs_has_virtio_blk: Option<bool>,
}

impl Kernel {
    /// True when this kernel boots from a virtio-blk root as the initramfs stands.
    pub fn boots_on_virtio(&self) -> bool {
        self.virtio_builtin || self.initramfs_has_virtio_blk == Some(true)
    }
}

/// The kind of operating system, which decides how it is fixed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OsType {
    /// Linux: fixed by [`crate::fix::linux`].
    Linux,
    /// Windows: fixed by [`crate::fix::windows`].
    Windows,
    /// Another system libguestfs names (`freebsd`, `hurd`, …), converted without fixes.
    Other(String),
}

impl OsType {
    /// From libguestfs's name for it (`unknown` when inspection could not tell).
    pub fn from_name(name: &str) -> OsType {
        match name {
            "linux" => OsType::Linux,
            "windows" => OsType::Windows,
            "" => OsType::Other("unknown".into()),
            other => OsType::Other(other.to_string()),
        }
    }

    /// Its name: `linux`, `windows`, or libguestfs's.
    pub fn as_str(&self) -> &str {
        match self {
            OsType::Linux => "linux",
            OsType::Windows => "windows",
            OsType::Other(name) => name,
        }
    }
}

impl std::fmt::Display for OsType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for OsType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Everything inspection found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inspection {
    /// How the appliance ran.
    pub accel: Accel,
    /// `linux`, `windows`, …
    pub os_type: OsType,
    /// `debian`, `rhel`, `ubuntu`, …
    pub distro: String,
    /// `12.0`.
    pub version: String,
    /// Product name.
    pub product_name: String,
    /// `x86_64`, …
    pub arch: String,
    /// The guest's host name.
    pub hostname: String,
    /// `deb`, `rpm`, …
    pub package_format: String,
    /// Appliance device of the root filesystem.
    pub root_device: String,
    /// Mount points and the appliance devices mounted there.
    pub mountpoints: BTreeMap<String, String>,
    /// `grub2`, `grub-legacy`, `systemd-boot` or `unknown`.
    pub bootloader: String,
    /// The GRUB configuration file.
    pub grub_config: Option<String>,
    /// `bios` or `uefi`, from the partition table.
    pub firmware: String,
    /// `msdos`, `gpt` or unknown.
    pub partition_table: String,
    /// `lvm`, `luks`, `mdraid` when in use.
    pub storage: Vec<String>,
    /// Installed kernels, newest last.
    pub kernels: Vec<Kernel>,
    /// Network configuration styles present.
    pub network: Vec<String>,
    /// Hypervisor tools installed.
    pub hypervisor_tools: Vec<String>,
    /// `enforcing`, `permissive`, `disabled`, when SELinux is configured.
    pub selinux: Option<String>,
    /// Windows facts (absent for other systems).
    pub windows: Option<super::windows::WindowsInfo>,
}

/// Inspects the guest and mounts its filesystems (read-only unless the disks are writable).
/// `Ok(None)` means the disks hold no operating system (a data disk, a blank disk).
pub fn inspect(g: &Guest, scratch: &Path) -> Result<Option<Inspection>> {
    let h = g.handle();
    let Some(found) = find_os(g)? else { return Ok(None) };
    let mut order: Vec<(&String, &String)> = found.mountpoints.iter().collect();
    order.sort_by_key(|(mp, _)| mp.len());
    for (mp, dev) in order {
        let r = if g.writable() { h.mount(dev, mp) } else { h.mount_ro(dev, mp) };
        if let Err(e) = r {
            tracing::warn!("cannot mount {dev} on {mp}: {}", gerr("mount", e).message());
        }
    }
    let packages = if found.by_libguestfs {
        let apps = h.inspect_list_applications2(&found.root).unwrap_or_default();
        apps.into_iter().map(|a| a.app2_name).collect()
    } else {
        own_packages(g, &found, scratch)
    };
    if g.inspector() == Inspector::Compare && found.os_type == "linux" {
        let ours = hypervisor_tools(g, &own_packages(g, &found, scratch));
        let theirs = hypervisor_tools(g, &packages);
        if ours != theirs {
            return Err(Error::new(
                ErrorKind::Internal,
                format!(
                    "inspection: hypervisor tools differ: ours {ours:?}, libguestfs {theirs:?}"
                ),
            ));
        }
    }
    let (partition_table, firmware) = firmware(g);
    let (major, minor) = found.version;
    let mut insp = Inspection {
        accel: g.accel(),
        os_type: OsType::from_name(&found.os_type),
        distro: found.distro.clone(),
        version: format!("{major}.{minor}"),
        product_name: found.product_name.clone(),
        arch: found.arch.clone(),
        hostname: found.hostname.clone(),
        package_format: found.package_format.clone(),
        root_device: found.root.clone(),
        mountpoints: found.mountpoints.clone(),
        bootloader: "unknown".into(),
        grub_config: None,
        firmware,
        partition_table,
        storage: storage(g),
        kernels: Vec::new(),
        network: network_styles(g),
        hypervisor_tools: hypervisor_tools(g, &packages),
        selinux: None,
        windows: None,
    };
    let root = found.root.clone();
    for (path, kind) in [
        ("/boot/grub/grub.cfg", "grub2"),
        ("/boot/grub2/grub.cfg", "grub2"),
        ("/boot/efi/EFI/debian/grub.cfg", "grub2"),
        ("/boot/grub/menu.lst", "grub-legacy"),
        ("/boot/grub/grub.conf", "grub-legacy"),
        ("/boot/loader/loader.conf", "systemd-boot"),
        ("/boot/efi/loader/loader.conf", "systemd-boot"),
    ] {
        if g.is_file(path) {
            insp.bootloader = kind.into();
            if kind != "systemd-boot" {
                insp.grub_config = Some(path.into());
            }
            break;
        }
    }
    tracing::info!("found {} {} {}", insp.os_type, insp.distro, insp.version);
    if insp.os_type == OsType::Windows {
        insp.windows = super::windows::inspect_windows(g, &root);
    }
    if insp.os_type == OsType::Linux {
        insp.kernels = kernels(g, scratch)?;
        tracing::info!("read {} kernel(s) and their initramfs", insp.kernels.len());
        insp.selinux = g.read_text("/etc/selinux/config")?.and_then(|t| {
            t.lines().find_map(|l| l.trim().strip_prefix("SELINUX=").map(|v| v.trim().to_string()))
        });
    }
    Ok(Some(insp))
}

fn firmware(g: &Guest) -> (String, String) {
    let h = g.handle();
    let table = h.part_get_parttype("/dev/sda").unwrap_or_else(|_| "unknown".into());
    if table != "gpt" {
        return (table, "bios".into());
    }
    let parts = h.part_list("/dev/sda").unwrap_or_default();
    let types: Vec<String> = parts
        .iter()
        .filter_map(|p| h.part_get_gpt_type("/dev/sda", p.part_num).ok())
        .map(|t| t.to_uppercase())
        .collect();
    let uefi = types.iter().any(|t| t == GPT_ESP) && !types.iter().any(|t| t == GPT_BIOS_BOOT);
    (table, if uefi { "uefi" } else { "bios" }.into())
}

fn storage(g: &Guest) -> Vec<String> {
    let devices = g.block_devices();
    let mut out = Vec::new();
    let mut add = |used: bool, name: &str| {
        if used {
            out.push(name.to_string());
        }
    };
    add(devices.iter().any(|d| d.fs_type == "LVM2_member"), "lvm");
    add(devices.iter().any(|d| d.fs_type == "crypto_LUKS"), "luks");
    add(devices.iter().any(|d| d.fs_type == "linux_raid_member"), "mdraid");
    out
}

fn network_styles(g: &Guest) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |cond: bool, name: &str| {
        if cond {
            out.push(name.to_string());
        }
    };
    add(g.is_file("/etc/network/interfaces"), "ifupdown");
    add(!g.glob("/etc/netplan/*.yaml").is_empty(), "netplan");
    add(!g.glob("/etc/NetworkManager/system-connections/*").is_empty(), "NetworkManager");
    add(!g.glob("/etc/sysconfig/network-scripts/ifcfg-*").is_empty(), "ifcfg");
    add(!g.glob("/etc/systemd/network/*.network").is_empty(), "systemd-networkd");
    add(!g.glob("/etc/sysconfig/network/ifcfg-*").is_empty(), "wicked");
    out
}

/// The operating system, found by us or by libguestfs as [`Inspector`] says.
fn find_os(g: &Guest) -> Result<Option<Found>> {
    let inspector = g.inspector();
    let ours = match inspector {
        Inspector::Libguestfs => Err("libguestfs's inspection was asked for".to_string()),
        _ => linux_root::find(g),
    };
    match (&ours, inspector) {
        (Ok(found), Inspector::Own | Inspector::Auto) => {
            tracing::debug!("own inspection: root {}", found.root);
            return Ok(Some(found.clone()));
        }
        (Err(why), _) => tracing::info!("using libguestfs's OS inspection: {why}"),
        _ => {}
    }
    let theirs = by_libguestfs(g)?;
    if let (Inspector::Compare, Ok(ours)) = (inspector, &ours) {
        let same = theirs.as_ref().is_some_and(|t| comparable(t) == comparable(ours));
        if !same {
            return Err(Error::new(
                ErrorKind::Internal,
                format!("inspection: ours found {ours:?}, libguestfs found {theirs:?}"),
            ));
        }
    }
    Ok(theirs)
}

/// What [`Inspector::Compare`] compares: everything but who found it, with btrfs subvolumes
/// named without their device (libguestfs names a single-disk guest's btrfs volume by the
/// appliance's second disk, `btrfsvol:/dev/sdb1/@`, where blkid and we say `/dev/sda1`).
fn comparable(f: &Found) -> Found {
    let strip = |m: &String| match m.strip_prefix("btrfsvol:/dev/") {
        Some(rest) => {
            // The device is `/dev/sdXN` (or `/dev/VG/LV`); the subvolume path follows it.
            let parts: Vec<&str> = rest.split('/').collect();
            let skip = if super::is_controller_name(&format!("/dev/{}", parts[0])) { 1 } else { 2 };
            format!("btrfsvol:{}", parts.get(skip..).unwrap_or_default().join("/"))
        }
        None => m.clone(),
    };
    Found {
        root: strip(&f.root),
        mountpoints: f.mountpoints.iter().map(|(k, v)| (k.clone(), strip(v))).collect(),
        by_libguestfs: false,
        ..f.clone()
    }
}

/// libguestfs's `inspect_os`: the first root it finds.
fn by_libguestfs(g: &Guest) -> Result<Option<Found>> {
    let h = g.handle();
    let roots = h.inspect_os().map_err(|e| gerr("OS inspection", e))?;
    let Some(root) = roots.first().cloned() else { return Ok(None) };
    let get =
        |r: std::result::Result<String, guestfs::Error>| r.unwrap_or_else(|_| "unknown".into());
    let mountpoints: BTreeMap<String, String> = h
        .inspect_get_mountpoints(&root)
        .map_err(|e| gerr("mount points", e))?
        .into_iter()
        .collect();
    let major = h.inspect_get_major_version(&root).unwrap_or(0);
    let minor = h.inspect_get_minor_version(&root).unwrap_or(0);
    Ok(Some(Found {
        os_type: get(h.inspect_get_type(&root)),
        distro: get(h.inspect_get_distro(&root)),
        version: (major, minor),
        product_name: get(h.inspect_get_product_name(&root)),
        arch: get(h.inspect_get_arch(&root)),
        hostname: get(h.inspect_get_hostname(&root)),
        package_format: get(h.inspect_get_package_format(&root)),
        root,
        mountpoints,
        by_libguestfs: true,
    }))
}

/// Installed packages as our own inspection reads them: dpkg's status file; for other
/// package managers, the hypervisor tools' own programs stand in for their packages.
fn own_packages(g: &Guest, found: &Found, scratch: &Path) -> Vec<String> {
    if found.package_format == "deb" {
        return match g.read_large("/var/lib/dpkg/status", scratch) {
            Ok(status) => linux_root::dpkg_installed(&String::from_utf8_lossy(&status)),
            Err(e) => {
                tracing::warn!("{}", e.message());
                Vec::new()
            }
        };
    }
    [
        ("/usr/bin/vmtoolsd", "open-vm-tools"),
        ("/usr/sbin/hv_kvp_daemon", "hyperv-daemons"),
        ("/usr/sbin/hypervkvpd", "hyperv-daemons"),
        ("/usr/sbin/VBoxService", "virtualbox-guest-additions"),
    ]
    .into_iter()
    .filter(|(file, _)| g.is_file(file))
    .map(|(_, package)| package.to_string())
    .collect()
}

/// The other hypervisors' tools among the installed packages, and those installed without a
/// package.
fn hypervisor_tools(g: &Guest, packages: &[String]) -> Vec<String> {
    let mut out: Vec<String> = packages
        .iter()
        .filter(|n| {
            n.starts_with("open-vm-tools")
                || n.starts_with("vmware-tools")
                || n.starts_with("hyperv-daemons")
                || n.starts_with("hyperv-tools")
                || n.starts_with("virtualbox-guest")
                || n.starts_with("VBoxGuestAdditions")
        })
        .cloned()
        .collect();
    if g.exists("/etc/vmware-tools/locations")
        && !out.iter().any(|n| n.contains("vm-tools") || n.contains("vmware"))
    {
        out.push("vmware-tools (tarball install)".into());
    }
    if g.exists("/opt/VBoxGuestAdditions") || !g.glob("/opt/VBoxGuestAdditions-*").is_empty() {
        out.push("virtualbox-guest-additions (installer)".into());
    }
    out.sort();
    out.dedup();
    out
}

fn kernels(g: &Guest, scratch: &Path) -> Result<Vec<Kernel>> {
    let mut versions: Vec<String> = g
        .glob("/lib/modules/*")
        .iter()
        .filter_map(|p| p.trim_end_matches('/').rsplit('/').next().map(str::to_string))
        .collect();
    versions.sort_by_key(|v| version_key(v));
    let mut out = Vec::new();
    for v in versions {
        let vmlinuz = [format!("/boot/vmlinuz-{v}"), format!("/boot/vmlinux-{v}")]
            .into_iter()
            .find(|p| g.is_file(p));
        let initramfs = [
            format!("/boot/initrd.img-{v}"),
            format!("/boot/initramfs-{v}.img"),
            format!("/boot/initrd-{v}"),
        ]
        .into_iter()
        .find(|p| g.is_file(p));
        let builtin_list =
            g.read_text(&format!("/lib/modules/{v}/modules.builtin"))?.unwrap_or_default();
        let config = g.read_text(&format!("/boot/config-{v}"))?.unwrap_or_default();
        let virtio_builtin = built_in(&builtin_list, &config, "virtio_blk");
        let module =
            !g.glob(&format!("/lib/modules/{v}/kernel/drivers/block/virtio_blk.ko*")).is_empty();
        let initramfs_has_virtio_blk = match &initramfs {
            Some(path) => initramfs_modules(g, path, scratch)
                .map(|names| initramfs::has_module(&names, "virtio_blk")),
            None => None,
        };
        out.push(Kernel {
            version: v,
            vmlinuz,
            initramfs,
            virtio_capable: virtio_builtin || module,
            virtio_builtin,
            initramfs_has_virtio_blk,
        });
    }
    Ok(out)
}

/// True when the kernel has `module` built in: listed in its `modules.builtin` (`-` and `_`
/// alike), or `CONFIG_<MODULE>=y` in its config (which names the virtio drivers so; for
/// others `modules.builtin` decides).
pub(crate) fn built_in(modules_builtin: &str, config: &str, module: &str) -> bool {
    let alt = module.replace('_', "-");
    let (ko, alt_ko) = (format!("{module}.ko"), format!("{alt}.ko"));
    let option = format!("CONFIG_{}=y", module.to_ascii_uppercase());
    modules_builtin.lines().any(|l| {
        let f = l.rsplit('/').next().unwrap_or(l);
        f == ko || f == alt_ko
    }) || config.lines().any(|l| l.trim() == option)
}

/// Lists the initramfs (read through `scratch`: it may be larger than libguestfs's message
/// limit) with our own parser.
fn initramfs_modules(g: &Guest, path: &str, scratch: &Path) -> Option<Vec<String>> {
    let listed = g.read_large(path, scratch).and_then(|data| initramfs::list(&data));
    match listed {
        Ok(names) => Some(names),
        Err(e) => {
            tracing::warn!("{path}: {}", e.message());
            None
        }
    }
}

/// Orders kernel versions numerically (6.1.0-10 after 6.1.0-9).
fn version_key(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_sort_numerically() {
        let mut v = vec!["6.1.0-10-amd64", "6.1.0-9-amd64", "5.10.0-28-amd64"];
        v.sort_by_key(|x| version_key(x));
        assert_eq!(v, vec!["5.10.0-28-amd64", "6.1.0-9-amd64", "6.1.0-10-amd64"]);
    }
}
