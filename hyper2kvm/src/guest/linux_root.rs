//! Finding a Linux guest ourselves: the root among the file systems, its mount points from its
//! own `/etc/fstab`, and what os-release and a few files say — in a few seconds, where
//! libguestfs's general `inspect_os` (which looks for every kind of system on every file
//! system) takes about 10 s under TCG.
//!
//! Ours decides only when exactly one file system (or btrfs subvolume) holds a Linux root —
//! `/etc/fstab` and an os-release file. Anything else (no Linux root: Windows, a data disk;
//! several roots: snapshots, multi-boot; md RAID or LUKS members) is left to `inspect_os`.

use std::collections::BTreeMap;

use super::{BlockDevice, Guest, appliance_device};

/// File systems a Linux root lives on.
const LINUX_FS: [&str; 8] = ["ext2", "ext3", "ext4", "xfs", "btrfs", "jfs", "reiserfs", "f2fs"];
/// btrfs subvolumes we try before calling the layout undecidable (snapshot trees have many).
const MAX_SUBVOLUMES: usize = 16;

/// What finding the operating system gave, by us or by libguestfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// The root as libguestfs names mountables (`/dev/sda1`, `/dev/vg0/root`,
    /// `btrfsvol:/dev/sda1/@`).
    pub root: String,
    /// Mount point → mountable.
    pub mountpoints: BTreeMap<String, String>,
    /// `linux`, `windows`, …
    pub os_type: String,
    /// libguestfs's distribution name (`debian`, `rhel`, `opensuse`, …).
    pub distro: String,
    /// Major and minor version.
    pub version: (i32, i32),
    /// Product name.
    pub product_name: String,
    /// `x86_64`, `i386`, `aarch64`, …
    pub arch: String,
    /// The guest's host name.
    pub hostname: String,
    /// `deb`, `rpm`, `pacman`, `apk`, or `unknown`.
    pub package_format: String,
    /// Found by libguestfs's `inspect_os` (its application list can then be asked for).
    pub by_libguestfs: bool,
}

/// Why ours did not decide.
pub(crate) type Undecided = String;

/// Finds the Linux root; leaves everything mounted nowhere.
pub(crate) fn find(g: &Guest) -> Result<Found, Undecided> {
    let devices = g.block_devices();
    if let Some(d) =
        devices.iter().find(|d| d.fs_type == "linux_raid_member" || d.fs_type == "crypto_LUKS")
    {
        return Err(format!("{} is {} (left to libguestfs)", d.name, d.fs_type));
    }
    let h = g.handle();
    let mut roots = Vec::new();
    for d in devices.iter().filter(|d| LINUX_FS.contains(&d.fs_type.as_str())) {
        // The file system itself, then (btrfs, listed while it is mounted) its subvolumes.
        let mut mountables = vec![d.name.clone()];
        let mut next = 0;
        while let Some(m) = mountables.get(next).cloned() {
            next += 1;
            if h.mount_ro(&m, "/").is_err() {
                continue;
            }
            roots.extend(looks_like_root(g).then(|| read_facts(g, &m, devices)));
            let subvolumes = match (next, d.fs_type.as_str()) {
                (1, "btrfs") => h.btrfs_subvolume_list("/").unwrap_or_default(),
                _ => Vec::new(),
            };
            let _ = h.umount_all();
            if subvolumes.len() > MAX_SUBVOLUMES {
                return Err(format!("{} has {} btrfs subvolumes", d.name, subvolumes.len()));
            }
            mountables.extend(
                subvolumes.iter().map(|s| format!("btrfsvol:{}/{}", d.name, s.btrfssubvolume_path)),
            );
        }
    }
    match roots.len() {
        1 => Ok(roots.remove(0)),
        0 => Err("no file system holds a Linux root".into()),
        n => Err(format!(
            "{n} file systems hold a Linux root ({})",
            roots.iter().map(|f| f.root.as_str()).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn looks_like_root(g: &Guest) -> bool {
    g.is_file("/etc/fstab") && (g.is_file("/etc/os-release") || g.is_file("/usr/lib/os-release"))
}

/// Reads the facts of the root mounted at `/`.
fn read_facts(g: &Guest, root: &str, devices: &[BlockDevice]) -> Found {
    let text = |p: &str| g.read_text(p).ok().flatten().unwrap_or_default();
    let os_release = {
        let t = text("/etc/os-release");
        if t.is_empty() { text("/usr/lib/os-release") } else { t }
    };
    let release = parse_os_release(&os_release);
    let get = |k: &str| release.get(k).cloned().unwrap_or_default();
    let id = get("ID");
    let distro = distro_name(&id);
    let mut version = parse_version(&get("VERSION_ID"));
    let mut product_name = get("PRETTY_NAME");
    if distro == "debian" {
        // os-release says "12"; /etc/debian_version says the point release ("12.7").
        let dv = text("/etc/debian_version").trim().to_string();
        if dv.starts_with(|c: char| c.is_ascii_digit()) {
            version = parse_version(&dv);
            product_name = dv;
        }
    }
    let mut mountpoints = fstab_mountpoints(&text("/etc/fstab"), devices);
    mountpoints.insert("/".into(), root.to_string());
    Found {
        root: root.to_string(),
        mountpoints,
        os_type: "linux".into(),
        distro,
        version,
        product_name,
        arch: arch(g),
        hostname: hostname(&text),
        package_format: package_format(g),
        by_libguestfs: false,
    }
}

/// `KEY=value` lines, with the value's quotes removed.
fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

/// libguestfs's name for an os-release `ID`.
fn distro_name(id: &str) -> String {
    match id {
        "alpine" => "alpinelinux",
        "arch" => "archlinux",
        "kali" => "kalilinux",
        "sled" | "sles" => "sles",
        "void" => "voidlinux",
        id if id.starts_with("opensuse") => "opensuse",
        "" => "unknown",
        other => other,
    }
    .to_string()
}

/// `12.7` → (12, 7); `13` → (13, 0); anything else → (0, 0).
fn parse_version(v: &str) -> (i32, i32) {
    let mut parts = v.trim().split('.').map(|p| p.parse::<i32>());
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor),
        (Some(Ok(major)), None) => (major, 0),
        _ => (0, 0),
    }
}

/// Mount points of `/etc/fstab` whose device we can name in the appliance (others, such as
/// network file systems or devices that are not on these disks, are left out, as libguestfs
/// leaves them out).
fn fstab_mountpoints(fstab: &str, devices: &[BlockDevice]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in fstab.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [spec, mp, fstype, rest @ ..] = fields.as_slice() else { continue };
        let opts = rest.first().copied().unwrap_or("defaults");
        let mp = unescape(mp);
        // Any file system on these disks (network and pseudo file systems name no device of
        // ours, so they do not resolve below); swap is not mounted.
        if !mp.starts_with('/') || mp == "/" || *fstype == "swap" {
            continue;
        }
        if opts.split(',').any(|o| o == "bind") {
            continue;
        }
        let Some(dev) = resolve(spec, devices) else { continue };
        let subvol = opts.split(',').find_map(|o| o.strip_prefix("subvol="));
        let mountable = match subvol {
            Some(sv) if *fstype == "btrfs" => {
                format!("btrfsvol:{}/{}", dev.name, sv.trim_start_matches('/'))
            }
            _ => dev.name.clone(),
        };
        out.insert(mp, mountable);
    }
    out
}

/// fstab's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if digits.len() == 3
                && let Ok(n) = u8::from_str_radix(&digits, 8)
            {
                out.push(char::from(n));
                chars.nth(2);
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// The appliance device an fstab device names.
fn resolve<'a>(spec: &str, devices: &'a [BlockDevice]) -> Option<&'a BlockDevice> {
    let by = |f: fn(&BlockDevice) -> &str, v: &str| {
        devices.iter().find(|d| !f(d).is_empty() && f(d).eq_ignore_ascii_case(v))
    };
    let tagged = |tag: &str, dir: &str| {
        spec.strip_prefix(tag).or_else(|| spec.strip_prefix(dir)).map(|v| v.trim_matches('"'))
    };
    if let Some(v) = tagged("UUID=", "/dev/disk/by-uuid/") {
        return by(|d| &d.uuid, v);
    }
    if let Some(v) = tagged("LABEL=", "/dev/disk/by-label/") {
        return by(|d| &d.label, &unescape(v));
    }
    if let Some(v) = tagged("PARTUUID=", "/dev/disk/by-partuuid/") {
        return by(|d| &d.partuuid, v);
    }
    if let Some(v) = tagged("PARTLABEL=", "/dev/disk/by-partlabel/") {
        return by(|d| &d.partlabel, &unescape(v));
    }
    let name = if let Some(mapped) = spec.strip_prefix("/dev/mapper/") {
        // vg-lv, with a dash inside either name doubled.
        let marker = mapped.replace("--", "\u{0}");
        let (vg, lv) = marker.split_once('-')?;
        format!("/dev/{}/{}", vg.replace('\u{0}', "-"), lv.replace('\u{0}', "-"))
    } else if let Some(dev) = appliance_device(spec) {
        dev
    } else {
        spec.to_string()
    };
    devices.iter().find(|d| d.name == name)
}

/// The architecture of the guest's own binaries, from an ELF header.
fn arch(g: &Guest) -> String {
    let h = g.handle();
    for p in ["/bin/sh", "/bin/bash", "/bin/ls", "/usr/bin/ls"] {
        let Ok(real) = h.realpath(p) else { continue };
        let Ok(head) = h.pread(&real, 20, 0) else { continue };
        if head.len() == 20 && head.starts_with(b"\x7fELF") {
            let machine = if head[5] == 2 {
                u16::from_be_bytes([head[18], head[19]])
            } else {
                u16::from_le_bytes([head[18], head[19]])
            };
            let name = match (machine, head[4]) {
                (0x3e, _) => "x86_64",
                (0x03, _) => "i386",
                (0xb7, _) => "aarch64",
                (0x28, _) => "arm",
                (0xf3, 2) => "riscv64",
                (0x15, 2) => "ppc64",
                (0x16, 2) => "s390x",
                _ => continue,
            };
            return if name == "ppc64" && head[5] == 1 { "ppc64le".into() } else { name.into() };
        }
    }
    "unknown".into()
}

fn hostname(text: &dyn Fn(&str) -> String) -> String {
    let first = |t: String| t.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string);
    first(text("/etc/hostname"))
        .or_else(|| first(text("/etc/HOSTNAME")))
        .or_else(|| {
            text("/etc/sysconfig/network").lines().find_map(|l| {
                l.trim().strip_prefix("HOSTNAME=").map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into())
}

fn package_format(g: &Guest) -> String {
    let h = g.handle();
    let is_dir = |p: &str| h.is_dir(p, Default::default()).unwrap_or(false);
    if g.is_file("/var/lib/dpkg/status") {
        "deb"
    } else if is_dir("/var/lib/rpm") || is_dir("/usr/lib/sysimage/rpm") {
        "rpm"
    } else if is_dir("/var/lib/pacman") {
        "pacman"
    } else if g.is_file("/lib/apk/db/installed") {
        "apk"
    } else {
        "unknown"
    }
    .into()
}

/// Installed package names from dpkg's status file (the others' databases are not read
/// here: hypervisor tools are then found by their files).
pub(crate) fn dpkg_installed(status: &str) -> Vec<String> {
    let mut out = Vec::new();
    for stanza in status.split("\n\n") {
        let field =
            |k: &str| stanza.lines().find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()));
        if let (Some(name), Some(state)) = (field("Package:"), field("Status:"))
            && state.ends_with(" installed")
        {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(name: &str, fs: &str, uuid: &str, label: &str) -> BlockDevice {
        BlockDevice {
            name: name.into(),
            fs_type: fs.into(),
            uuid: uuid.into(),
            label: label.into(),
            ..BlockDevice::default()
        }
    }

    #[test]
    fn fstab_devices_resolve_by_every_name_real_installers_write() {
        let devices = [
            dev("/dev/sda1", "vfat", "ABCD-1234", "EFI"),
            dev("/dev/sda2", "ext4", "1111-aaaa", "boot"),
            dev("/dev/sda3", "LVM2_member", "pv", ""),
            dev("/dev/my-vg/root", "xfs", "2222", ""),
            dev("/dev/my-vg/home", "xfs", "3333", "my home"),
            dev("/dev/sdb1", "btrfs", "4444", "data"),
        ];
        let fstab = "\
# /etc/fstab: static file system information.
/dev/mapper/my--vg-root /            xfs   defaults        0 1
UUID=1111-AAAA          /boot        ext4  defaults        0 2
/dev/disk/by-uuid/ABCD-1234 /boot/efi vfat umask=0077      0 1
LABEL=my\\040home       /home        xfs   defaults        0 2
/dev/sdb1               /srv/data    btrfs defaults,subvol=@data 0 0
/dev/sdc1               /mnt/gone    ext4  nofail          0 0
/dev/sdb1               /media/any   auto  noauto          0 0
server:/export          /mnt/nfs     nfs   defaults        0 0
/srv/data               /var/data    none  bind            0 0
/swapfile               none         swap  sw              0 0
tmpfs                   /tmp         tmpfs defaults        0 0
";
        let m = fstab_mountpoints(fstab, &devices);
        let want: BTreeMap<String, String> = [
            ("/boot", "/dev/sda2"),
            ("/boot/efi", "/dev/sda1"),
            ("/home", "/dev/my-vg/home"),
            ("/srv/data", "btrfsvol:/dev/sdb1/@data"),
            ("/media/any", "/dev/sdb1"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(m, want);
        assert_eq!(resolve("/dev/mapper/my--vg-root", &devices).unwrap().name, "/dev/my-vg/root");
        assert_eq!(resolve("/dev/hda2", &devices).unwrap().name, "/dev/sda2");
        assert!(resolve("UUID=9999", &devices).is_none());
    }

    #[test]
    fn os_release_and_versions() {
        let r = parse_os_release(
            "PRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"\nID='rocky'\nVERSION_ID=9.4\n# c\n",
        );
        assert_eq!(r["ID"], "rocky");
        assert_eq!(r["PRETTY_NAME"], "Rocky Linux 9.4 (Blue Onyx)");
        assert_eq!(parse_version(&r["VERSION_ID"]), (9, 4));
        assert_eq!(parse_version("13"), (13, 0));
        assert_eq!(parse_version("trixie/sid"), (0, 0));
        assert_eq!(distro_name("opensuse-leap"), "opensuse");
        assert_eq!(distro_name("debian"), "debian");
    }

    #[test]
    fn dpkg_status_lists_only_installed_packages() {
        let status = "Package: open-vm-tools\nStatus: install ok installed\nVersion: 2\n\n\
                      Package: gone\nStatus: deinstall ok config-files\n\n\
                      Package: bash\nStatus: install ok installed\n";
        assert_eq!(dpkg_installed(status), ["open-vm-tools", "bash"]);
    }
}
