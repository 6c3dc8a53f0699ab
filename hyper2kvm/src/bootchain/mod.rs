//! The boot-chain verifier: will this Linux guest boot on the target? Answered from the files
//! the firmware, GRUB, the kernel, the initramfs and the guest's network stack will really
//! read — not from what the fixers meant to write.
//!
//! [`verify`] runs after the fixers on the converted disks (a failure fails the conversion,
//! before anything is renamed into place), and read-only on a source for `inspect` and every
//! dry run (the "will it boot after conversion" verdict). The checks, in boot order:
//! - `loader`: UEFI guests have `\EFI\BOOT\BOOTX64.EFI` (a new NVRAM store has no boot entries);
//! - `bootloader`: the GRUB configuration that will be read (the ESP's stub followed through
//!   `configfile`, `/boot/grub/grub.cfg`, `/boot/grub2/grub.cfg`, BLS entries with `grubenv`'s
//!   `kernelopts`) and its default entry (`set default`, `saved_entry`);
//! - `kernel`, `initramfs`: that entry's files exist, are not empty, on the partition GRUB
//!   searches;
//! - `root`, `resume`, `rd.lvm.lv`, `rd.luks.uuid`: the command line names devices the
//!   converted disks have, by a stable name or the name the target bus gives them;
//! - `drivers`: the initramfs holds the target bus's drivers (or the kernel has them built in),
//!   and for an LVM root device mapper and `lvm`;
//! - `fstab`, `crypttab`: every entry needed at boot resolves;
//! - `network`: every configuration names an interface that will exist, and none is pinned to a
//!   MAC the target will not have; on the converted guest, the guest's own `ifup --no-act` and
//!   `netplan generate` accept it ([`tools`]).

pub mod devices;
pub mod grub;
pub mod network;
pub mod tools;

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::guest::Guest;
use crate::guest::initramfs;
use crate::guest::inspect::{Inspection, built_in};
use devices::Devices;
use network::{TargetNics, Wanted};

/// What the guest will run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The bus's name, for messages (`virtio-blk`).
    pub bus: &'static str,
    /// The kernel's disk name prefix on that bus (`vd`, `sd`).
    pub disk_prefix: &'static str,
    /// The modules the initramfs needs to find the root disk on that bus.
    pub drivers: Vec<&'static str>,
    /// The MACs of the target's NICs, lower case.
    pub macs: Vec<String>,
}

impl Target {
    /// virtio-blk disks (`/dev/vdX`) and NICs with `macs`.
    pub fn virtio_blk(macs: Vec<String>) -> Target {
        Target {
            bus: "virtio-blk",
            disk_prefix: "vd",
            drivers: vec!["virtio_blk", "virtio_pci"],
            macs,
        }
    }

    /// virtio-scsi disks (`/dev/sdX`).
    pub fn virtio_scsi(macs: Vec<String>) -> Target {
        Target {
            bus: "virtio-scsi",
            disk_prefix: "sd",
            drivers: vec!["virtio_scsi", "virtio_pci", "sd_mod"],
            macs,
        }
    }

    /// SATA disks on AHCI (`/dev/sdX`).
    pub fn sata(macs: Vec<String>) -> Target {
        Target { bus: "SATA", disk_prefix: "sd", drivers: vec!["ahci", "sd_mod"], macs }
    }
}

/// One check of the boot chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `loader`, `bootloader`, `kernel`, `initramfs`, `root`, `resume`, `drivers`, `fstab`,
    /// `crypttab`, `network`.
    pub check: &'static str,
    /// Passed.
    pub ok: bool,
    /// What was found, or why it fails.
    pub detail: String,
}

/// The answer to "will it boot?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Every check passed.
    pub will_boot: bool,
    /// The first failure's detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Every check, in boot order.
    pub checks: Vec<Check>,
}

impl Verdict {
    fn from_checks(checks: Vec<Check>) -> Verdict {
        let reason = checks.iter().find(|c| !c.ok).map(|c| c.detail.clone());
        Verdict { will_boot: reason.is_none(), reason, checks }
    }

    /// "yes" or "no, because …", as `inspect` and dry runs print it.
    pub fn line(&self) -> String {
        match &self.reason {
            None => "yes".into(),
            Some(r) => {
                let n = self.checks.iter().filter(|c| !c.ok).count();
                if n > 1 {
                    format!("no, because {r} (and {} more)", n - 1)
                } else {
                    format!("no, because {r}")
                }
            }
        }
    }

    /// The error that fails a conversion whose result would not boot: the work failed (exit
    /// 1, not retried by the daemon), every failed check named.
    pub fn into_error(self) -> Error {
        let all: Vec<String> =
            self.checks.iter().filter(|c| !c.ok).map(|c| c.detail.clone()).collect();
        Error::new(
            ErrorKind::GuestInspection,
            format!("the converted guest would not boot: {}", all.join("; ")),
        )
    }
}

struct Run<'a> {
    g: &'a Guest,
    insp: &'a Inspection,
    target: &'a Target,
    devs: Devices,
    checks: Vec<Check>,
    /// The default entry's kernel command line.
    cmdline: String,
}

impl Run<'_> {
    fn pass(&mut self, check: &'static str, detail: String) {
        self.checks.push(Check { check, ok: true, detail });
    }
    fn fail(&mut self, check: &'static str, detail: String) {
        self.checks.push(Check { check, ok: false, detail });
    }

    /// The guest path of `path` on the file system with UUID/label, or on the root/boot one.
    /// On btrfs, GRUB's paths start at the top-level subvolume (`/@/boot/vmlinuz`), so a
    /// mounted subvolume's name is taken off the front.
    fn guest_path(&self, uuid: Option<&str>, label: Option<&str>, path: &str) -> Option<String> {
        let on = |dev: &str| {
            let mut best: Option<(usize, String)> = None;
            for (mp, d) in &self.insp.mountpoints {
                if !self.devs.same(d, dev) {
                    continue;
                }
                let sub = btrfs_subvolume(d).unwrap_or("");
                let inside = if sub.is_empty() {
                    Some(path)
                } else {
                    path.strip_prefix('/')
                        .and_then(|p| p.strip_prefix(sub))
                        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                };
                let Some(inside) = inside else { continue };
                if best.as_ref().is_none_or(|(n, _)| sub.len() > *n) {
                    let joined = if mp == "/" {
                        inside.to_string()
                    } else {
                        format!("{}{inside}", mp.trim_end_matches('/'))
                    };
                    best = Some((sub.len(), joined));
                }
            }
            best.map(|(_, p)| p)
        };
        let dev = match (uuid, label) {
            (Some(u), _) => self.devs.resolve(&format!("UUID={u}")).ok(),
            (None, Some(l)) => self.devs.resolve(&format!("LABEL={l}")).ok(),
            _ => None,
        };
        if let Some(d) = dev {
            return on(&d);
        }
        // No search: GRUB's root is the partition it was installed from; try the root file
        // system, then a separate /boot.
        if self.g.is_file(path) {
            return Some(path.to_string());
        }
        self.insp.mountpoints.contains_key("/boot").then(|| format!("/boot{path}"))
    }
}

/// The device and subvolume of libguestfs's `btrfsvol:/dev/sda2/@` (`/dev/mapper/NAME` devices
/// have one more component).
fn btrfs_parts(d: &str) -> Option<(&str, &str)> {
    let rest = d.strip_prefix("btrfsvol:")?;
    let n = if rest.starts_with("/dev/mapper/") { 3 } else { 2 };
    let cut = rest.match_indices('/').nth(n).map(|(i, _)| i)?;
    Some((&rest[..cut], &rest[cut + 1..]))
}

/// The subvolume a `btrfsvol:` mount names.
fn btrfs_subvolume(d: &str) -> Option<&str> {
    btrfs_parts(d).map(|(_, s)| s.trim_matches('/')).filter(|s| !s.is_empty())
}

impl Devices {
    /// An appliance device name in a comparable form: `btrfsvol:/dev/sda2/@` is `/dev/sda2`,
    /// and a logical volume's `/dev/mapper/VG-LV` is `/dev/VG/LV`.
    /// libguestfs names a btrfs volume by the device the kernel registered it from, which has
    /// been seen to be a name the appliance does not list (`btrfsvol:/dev/sdb1/@` for a file
    /// system on `/dev/sda1`): such a name is the one btrfs device there is, when there is one.
    fn canonical<'a>(&'a self, d: &'a str) -> &'a str {
        let d = match btrfs_parts(d) {
            Some((dev, _)) if !self.devs.iter().any(|b| b.dev == dev) => {
                let mut btrfs = self.devs.iter().filter(|b| b.fstype.as_deref() == Some("btrfs"));
                match (btrfs.next(), btrfs.next()) {
                    (Some(only), None) => only.dev.as_str(),
                    _ => dev,
                }
            }
            Some((dev, _)) => dev,
            None => d,
        };
        match d.strip_prefix("/dev/mapper/") {
            Some(name) => self.mapper.iter().find(|(m, _)| m == name).map_or(d, |(_, lv)| lv),
            None => d,
        }
    }

    /// True when the appliance names `a` and `b` are the same device.
    fn same(&self, a: &str, b: &str) -> bool {
        a == b || self.canonical(a) == self.canonical(b)
    }
}

/// Verifies a Linux guest's boot chain for `target`. The guest's file systems must be mounted
/// as inspection left them. `scratch` is a host directory for reading the initramfs.
pub fn verify(g: &Guest, insp: &Inspection, target: &Target, scratch: &Path) -> Result<Verdict> {
    if insp.os_type != crate::guest::inspect::OsType::Linux {
        return Ok(Verdict::from_checks(Vec::new()));
    }
    let mut devs = Devices::read(g, target.disk_prefix, target.bus);
    let crypttab = g.read_text("/etc/crypttab")?.unwrap_or_default();
    devs.crypt_names = table(&crypttab).map(|f| f[0].to_string()).collect();
    let mut r = Run { g, insp, target, devs, checks: Vec::new(), cmdline: String::new() };
    if insp.firmware == "uefi" {
        uefi_loader(&mut r);
    }
    if let Some((entry, cfg)) = boot_entry(&mut r)? {
        r.cmdline = entry.args.clone();
        entry_checks(&mut r, &entry, &cfg, scratch)?;
    }
    tables(&mut r, &crypttab)?;
    network(&mut r)?;
    Ok(Verdict::from_checks(r.checks))
}

/// Non-comment lines of a table file, split into fields.
fn table(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() >= 2)
}

/// Where the guest mounts its EFI system partition (`/boot/efi`, `/efi`, or `/boot` as
/// systemd-boot installs have it).
pub fn esp_mount(insp: &Inspection) -> Option<&'static str> {
    ["/boot/efi", "/efi", "/boot"].into_iter().find(|m| insp.mountpoints.contains_key(*m))
}

/// The ESP's `\EFI\BOOT\BOOTX64.EFI` (FAT: any case), when it is there.
pub fn fallback_loader(g: &Guest, esp: &str) -> Option<String> {
    let p = g.handle().case_sensitive_path(&format!("{esp}/EFI/BOOT/BOOTX64.EFI")).ok()?;
    g.is_file(&p).then_some(p)
}

fn uefi_loader(r: &mut Run<'_>) {
    let Some(esp) = esp_mount(r.insp) else {
        r.fail(
            "loader",
            "UEFI guest, but no EFI system partition is mounted (/boot/efi, /efi)".into(),
        );
        return;
    };
    match fallback_loader(r.g, esp) {
        Some(p) => r.pass("loader", format!("{p} is the loader the firmware boots")),
        None => r.fail(
            "loader",
            format!("the EFI system partition ({esp}) has no \\EFI\\BOOT\\BOOTX64.EFI, the only loader the firmware finds with a new NVRAM store"),
        ),
    }
}

/// Finds the configuration GRUB will read and its default entry.
fn boot_entry(r: &mut Run<'_>) -> Result<Option<(grub::Entry, String)>> {
    let mut candidates: Vec<String> = Vec::new();
    if r.insp.firmware == "uefi"
        && let Some(esp) = esp_mount(r.insp)
    {
        let mut found = r.g.glob(&format!("{esp}/EFI/*/grub.cfg"));
        found.sort_by_key(|p| !p.to_ascii_uppercase().contains("/EFI/BOOT/"));
        candidates.extend(found);
    }
    candidates.extend(["/boot/grub/grub.cfg".to_string(), "/boot/grub2/grub.cfg".to_string()]);
    let Some(mut cfg_path) = candidates.into_iter().find(|p| r.g.is_file(p)) else {
        let what = if r.g.is_file("/boot/grub/menu.lst") || r.g.is_file("/boot/grub/grub.conf") {
            "GRUB legacy (menu.lst) is not verified by hyper2kvm"
        } else {
            "no GRUB configuration found (/boot/grub/grub.cfg, /boot/grub2/grub.cfg, the ESP's grub.cfg)"
        };
        r.fail("bootloader", what.into());
        return Ok(None);
    };
    let env_path =
        ["/boot/grub2/grubenv", "/boot/grub/grubenv"].into_iter().find(|p| r.g.is_file(p));
    let env = match env_path {
        Some(p) => grub::parse_env(&r.g.read_text(p)?.unwrap_or_default()),
        None => Vec::new(),
    };
    let mut cfg = grub::parse(&r.g.read_text(&cfg_path)?.unwrap_or_default(), &env);
    let mut hops = 0;
    while cfg.items.is_empty() && !cfg.blscfg && hops < 3 {
        let Some(next) = cfg.configfile.clone() else { break };
        let Some(p) = r.guest_path(cfg.configfile_uuid.as_deref(), None, &next) else {
            r.fail(
                "bootloader",
                format!("{cfg_path} hands over to {next}, which is not on the converted disks"),
            );
            return Ok(None);
        };
        if !r.g.is_file(&p) {
            r.fail(
                "bootloader",
                format!("{cfg_path} hands over to {next} ({p} in the guest), which does not exist"),
            );
            return Ok(None);
        }
        cfg_path = p;
        cfg = grub::parse(&r.g.read_text(&cfg_path)?.unwrap_or_default(), &env);
        hops += 1;
    }
    let saved = env.iter().rev().find(|(k, _)| k == "saved_entry").map(|(_, v)| v.clone());
    let default = match cfg.default.as_deref() {
        Some("") => saved.clone(),
        Some(d) => Some(d.to_string()),
        None => saved.clone(),
    };
    if cfg.blscfg {
        let mut entries: Vec<grub::Entry> = Vec::new();
        for f in r.g.glob("/boot/loader/entries/*.conf") {
            let id = f.rsplit('/').next().unwrap_or(&f).trim_end_matches(".conf").to_string();
            entries.push(grub::parse_bls(&id, &r.g.read_text(&f)?.unwrap_or_default(), &env));
        }
        grub::sort_bls(&mut entries);
        cfg.items.splice(0..0, entries.into_iter().map(grub::Item::Entry));
    }
    match grub::default_entry(&cfg.items, default.as_deref()) {
        Some((e, how)) => {
            r.pass("bootloader", format!("{cfg_path}: {how} is {:?}", e.title));
            Ok(Some((e.clone(), cfg_path)))
        }
        None => {
            r.fail("bootloader", format!("{cfg_path} has no menu entry to boot"));
            Ok(None)
        }
    }
}

/// The kernel, initramfs, command line and drivers of the default entry.
fn entry_checks(r: &mut Run<'_>, e: &grub::Entry, cfg: &str, scratch: &Path) -> Result<()> {
    let at =
        |r: &Run<'_>, p: &str| r.guest_path(e.root_uuid.as_deref(), e.root_label.as_deref(), p);
    let nonempty =
        |r: &Run<'_>, p: &str| r.g.is_file(p) && r.g.handle().filesize(p).unwrap_or(0) > 0;
    let title = &e.title;
    let mut version = None;
    match e.linux.as_deref() {
        None => r.fail("kernel", format!("default entry {title:?} in {cfg} has no linux line")),
        Some(k) => match at(r, k).filter(|p| nonempty(r, p)) {
            Some(p) => {
                version = p.rsplit('/').next().and_then(|f| f.strip_prefix("vmlinuz-").or_else(|| f.strip_prefix("vmlinux-"))).map(str::to_string);
                r.pass("kernel", p.to_string());
            }
            None => r.fail("kernel", format!("default entry {title:?} in {cfg} boots kernel {k}, which is missing or empty on the partition GRUB reads")),
        },
    }
    let mut image = None;
    match e.initrd.last() {
        None => r.pass("initramfs", format!("default entry {title:?} loads no initramfs")),
        Some(i) => match at(r, i).filter(|p| nonempty(r, p)) {
            Some(p) => {
                r.pass("initramfs", p.clone());
                image = Some(p);
            }
            None => r.fail("initramfs", format!("default entry {title:?} in {cfg} loads initramfs {i}, which is missing or empty on the partition GRUB reads")),
        },
    }
    // The command line.
    let args = &e.args;
    let root_fs = &r.insp.root_device;
    match grub::arg(args, "root") {
        None => r.fail("root", format!("default entry {title:?} in {cfg} has no root= on its kernel command line")),
        Some(root) => match r.devs.resolve(root) {
            Ok(dev) if r.devs.same(&dev, root_fs) => r.pass("root", format!("root={root} is the root file system ({dev} here)")),
            Ok(dev) => r.fail("root", format!("default entry {title:?} in {cfg} boots with root={root}, which is {dev}, not the root file system ({root_fs})")),
            Err(why) => r.fail("root", format!("default entry {title:?} in {cfg} boots with root={root}: {why}")),
        },
    }
    root_subvolume(r, args, title, cfg);
    if let Some(resume) = grub::arg(args, "resume").filter(|v| !v.is_empty() && *v != "none") {
        match r.devs.resolve(resume) {
            Ok(dev) => r.pass("resume", format!("resume={resume} is {dev}")),
            Err(why) => r.fail(
                "resume",
                format!("default entry {title:?} in {cfg} resumes from resume={resume}: {why}"),
            ),
        }
    }
    for lv in args.split_whitespace().filter_map(|w| w.strip_prefix("rd.lvm.lv=")) {
        match r.devs.resolve(&format!("/dev/{lv}")) {
            Ok(_) => r.pass("root", format!("rd.lvm.lv={lv} exists")),
            Err(why) => r.fail(
                "root",
                format!("default entry {title:?} in {cfg} activates rd.lvm.lv={lv}: {why}"),
            ),
        }
    }
    for u in args.split_whitespace().filter_map(|w| w.strip_prefix("rd.luks.uuid=")) {
        let u = u.strip_prefix("luks-").unwrap_or(u);
        let found = r.devs.devs.iter().any(|d| {
            d.fstype.as_deref() == Some("crypto_LUKS")
                && d.uuid.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(u))
        });
        if found {
            r.pass("root", format!("rd.luks.uuid={u} is a LUKS volume"));
        } else {
            r.fail("root", format!("default entry {title:?} in {cfg} unlocks rd.luks.uuid={u}, which no LUKS volume on the converted disks has"));
        }
    }
    drivers(r, version.as_deref(), image.as_deref(), scratch)
}

/// A root on a btrfs subvolume: `rootflags=subvol=` names it, or it is the default subvolume
/// (what the kernel mounts without one).
fn root_subvolume(r: &mut Run<'_>, args: &str, title: &str, cfg: &str) {
    let Some(sub) = btrfs_subvolume(&r.insp.root_device) else { return };
    let flags = grub::arg(args, "rootflags").unwrap_or("");
    match flags.split(',').find_map(|f| f.strip_prefix("subvol=")) {
        Some(given) if given.trim_matches('/') == sub => {
            r.pass("root", format!("rootflags=subvol={given} is the root subvolume"));
        }
        Some(given) => r.fail(
            "root",
            format!("default entry {title:?} in {cfg} boots with rootflags=subvol={given}, but the root file system is subvolume {sub}"),
        ),
        None => {
            let h = r.g.handle();
            let default = h.btrfs_subvolume_get_default("/").ok();
            let path = h.btrfs_subvolume_list("/").ok().and_then(|l| {
                l.into_iter()
                    .find(|v| Some(v.btrfssubvolume_id as i64) == default)
                    .map(|v| v.btrfssubvolume_path)
            });
            if path.as_deref().map(|p| p.trim_matches('/')) == Some(sub) {
                r.pass("root", format!("the root subvolume {sub} is the default subvolume"));
            } else {
                r.fail("root", format!("default entry {title:?} in {cfg} has no rootflags=subvol={sub}: the kernel would mount the default subvolume, not the root ({sub})"));
            }
        }
    }
}

/// The target bus's drivers (and the root's storage stack) in the initramfs or built in.
fn drivers(
    r: &mut Run<'_>,
    version: Option<&str>,
    image: Option<&str>,
    scratch: &Path,
) -> Result<()> {
    let Some(version) = version else { return Ok(()) };
    let builtin =
        r.g.read_text(&format!("/lib/modules/{version}/modules.builtin"))?.unwrap_or_default();
    let config = r.g.read_text(&format!("/boot/config-{version}"))?.unwrap_or_default();
    let is_builtin = |m: &str| built_in(&builtin, &config, m);
    let names = match image {
        Some(p) => match r.g.read_large(p, scratch).and_then(|d| initramfs::list(&d)) {
            Ok(n) => Some(n),
            Err(e) => {
                r.fail("drivers", format!("{p} cannot be read: {}", e.message()));
                return Ok(());
            }
        },
        None => None,
    };
    let mut needed: Vec<&str> = r.target.drivers.clone();
    let lvm_root = r.devs.mapper.iter().any(|(_, lv)| r.devs.same(lv, &r.insp.root_device));
    if lvm_root {
        needed.push("dm_mod");
    }
    let have =
        |m: &str| is_builtin(m) || names.as_ref().is_some_and(|n| initramfs::has_module(n, m));
    let missing: Vec<&str> = needed.iter().copied().filter(|m| !have(m)).collect();
    let src = image.unwrap_or("(no initramfs)");
    if missing.is_empty() {
        r.pass("drivers", format!("{src} and kernel {version} have {}", needed.join(", ")));
    } else {
        r.fail("drivers", format!("{src} lacks {} and kernel {version} does not have them built in: the root disk cannot be found on {}", missing.join(", "), r.target.bus));
    }
    if lvm_root && let Some(n) = &names {
        if n.iter().any(|f| f.ends_with("sbin/lvm")) {
            r.pass("drivers", format!("{src} has lvm for the LVM root"));
        } else {
            r.fail(
                "drivers",
                format!("{src} has no lvm program: the LVM root cannot be activated"),
            );
        }
    }
    Ok(())
}

/// `/etc/fstab` and `/etc/crypttab` entries needed at boot.
fn tables(r: &mut Run<'_>, crypttab: &str) -> Result<()> {
    let fstab = r.g.read_text("/etc/fstab")?.unwrap_or_default();
    let (mut n, mut failed) = (0, false);
    for f in table(&fstab) {
        let (spec, mp) = (f[0], f[1]);
        let fstype = f.get(2).copied().unwrap_or("");
        let opts = f.get(3).copied().unwrap_or("");
        let optional = opts.split(',').any(|o| o == "noauto" || o == "nofail" || o == "bind");
        let device_like =
            spec.starts_with("/dev/") || spec.contains('=') && !spec.starts_with("//");
        if optional
            || !device_like
            || ["nfs", "nfs4", "cifs", "tmpfs", "proc", "sysfs"].contains(&fstype)
        {
            continue;
        }
        n += 1;
        if let Err(why) = r.devs.resolve(spec) {
            r.fail("fstab", format!("/etc/fstab mounts {mp} from {spec}: {why}"));
            failed = true;
        }
    }
    if !failed {
        r.pass(
            "fstab",
            format!(
                "/etc/fstab: {n} entr{} needed at boot, all found",
                if n == 1 { "y" } else { "ies" }
            ),
        );
    }
    for f in table(crypttab) {
        let opts = f.get(3).copied().unwrap_or("");
        if opts.split(',').any(|o| o == "noauto" || o == "nofail") {
            continue;
        }
        match r.devs.resolve(f[1]) {
            Ok(d) => r.pass("crypttab", format!("/etc/crypttab opens {} from {d}", f[0])),
            Err(why) => {
                r.fail("crypttab", format!("/etc/crypttab opens {} from {}: {why}", f[0], f[1]))
            }
        }
    }
    Ok(())
}

/// ifupdown's configuration files: `/etc/network/interfaces` and `interfaces.d/*`.
pub fn ifupdown_files(g: &Guest) -> Vec<String> {
    let mut files = vec!["/etc/network/interfaces".to_string()];
    files.extend(g.glob("/etc/network/interfaces.d/*"));
    files
}

/// Reads every network configuration of the guest.
pub fn network_configs(g: &Guest) -> Result<(Vec<Wanted>, Vec<String>)> {
    let mut wanted = Vec::new();
    let mut errors = Vec::new();
    for p in ifupdown_files(g) {
        if let Some(t) = g.read_text(&p)? {
            wanted.extend(network::ifupdown(&p, &t));
        }
    }
    for p in g.glob("/etc/netplan/*.yaml").into_iter().chain(g.glob("/etc/netplan/*.yml")) {
        match network::netplan(&p, &g.read_text(&p)?.unwrap_or_default()) {
            Ok(w) => wanted.extend(w),
            Err(e) => errors.push(e),
        }
    }
    for p in g.glob("/etc/NetworkManager/system-connections/*") {
        if let Some(w) = network::keyfile(&p, &g.read_text(&p)?.unwrap_or_default()) {
            wanted.push(w);
        }
    }
    for p in g
        .glob("/etc/sysconfig/network-scripts/ifcfg-*")
        .into_iter()
        .chain(g.glob("/etc/sysconfig/network/ifcfg-*"))
    {
        if p.ends_with("ifcfg-lo") {
            continue;
        }
        if let Some(w) = network::ifcfg(&p, &g.read_text(&p)?.unwrap_or_default()) {
            wanted.push(w);
        }
    }
    for p in g.glob("/etc/systemd/network/*.network") {
        if let Some(w) = network::networkd(&p, &g.read_text(&p)?.unwrap_or_default()) {
            wanted.push(w);
        }
    }
    Ok((wanted, errors))
}

/// The MACs the guest's own configuration names, in the order found (what the domain gives
/// its NICs when the source says nothing about them).
pub fn guest_macs(g: &Guest) -> Result<Vec<String>> {
    let (wanted, _) = network_configs(g)?;
    let mut macs: Vec<String> = Vec::new();
    let mut add = |m: String| {
        if !macs.contains(&m) {
            macs.push(m);
        }
    };
    for w in wanted {
        if let Some(m) = w.mac {
            add(m);
        }
    }
    // ifupdown `hwaddress` and udev persistent-net rules name the NIC's MAC too.
    let mut files = ifupdown_files(g);
    files.push("/etc/udev/rules.d/70-persistent-net.rules".into());
    for p in files {
        for l in g.read_text(&p)?.unwrap_or_default().lines() {
            for w in l.split(|c: char| c.is_whitespace() || c == '"' || c == ',') {
                if let Some(m) = crate::io::parse_mac(w, &[':']) {
                    add(m);
                }
            }
        }
    }
    Ok(macs)
}

/// The MACs the target's NICs will have: the source's, or when it names none the guest's own
/// (the domain's NICs then get those; read before the fixers remove MAC pinning).
pub fn target_macs(g: &Guest, source: &[String]) -> Result<Vec<String>> {
    if source.is_empty() { guest_macs(g) } else { Ok(source.to_vec()) }
}

fn network(r: &mut Run<'_>) -> Result<()> {
    let (wanted, errors) = network_configs(r.g)?;
    for e in errors {
        r.fail("network", e);
    }
    let mut renames = Vec::new();
    for p in r.g.glob("/etc/systemd/network/*.link") {
        if let Some(l) = network::link(&r.g.read_text(&p)?.unwrap_or_default()) {
            renames.push(l);
        }
    }
    for (ok, detail) in tools::run(r.g) {
        if ok { r.pass("network", detail) } else { r.fail("network", detail) }
    }
    let eth_names = grub::arg(&r.cmdline, "net.ifnames") == Some("0");
    let nics = TargetNics { macs: r.target.macs.clone(), eth_names, renames };
    for w in &wanted {
        match nics.check(w) {
            Ok(d) => r.pass("network", d),
            Err(d) => r.fail("network", d),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btrfs_mounts_split_into_device_and_subvolume() {
        assert_eq!(btrfs_parts("btrfsvol:/dev/sda2/@"), Some(("/dev/sda2", "@")));
        assert_eq!(btrfs_parts("btrfsvol:/dev/sda2/@/var/lib"), Some(("/dev/sda2", "@/var/lib")));
        assert_eq!(
            btrfs_parts("btrfsvol:/dev/mapper/vg0-root/root"),
            Some(("/dev/mapper/vg0-root", "root"))
        );
        assert_eq!(btrfs_parts("/dev/sda2"), None);
        assert_eq!(btrfs_subvolume("btrfsvol:/dev/sda2/@"), Some("@"));
        assert_eq!(btrfs_subvolume("btrfsvol:/dev/sda2/"), None);
    }

    #[test]
    fn logical_volumes_compare_by_their_mapper_names() {
        let devs = Devices {
            mapper: vec![("vg0-root".into(), "/dev/vg0/root".into())],
            ..Devices::default()
        };
        assert!(devs.same("/dev/mapper/vg0-root", "/dev/vg0/root"));
        let one = |dev: &str, fstype: &str| devices::BlockDev {
            dev: dev.into(),
            fstype: Some(fstype.into()),
            ..devices::BlockDev::default()
        };
        let btrfs = Devices {
            devs: vec![one("/dev/sda", ""), one("/dev/sda1", "btrfs"), one("/dev/sda2", "swap")],
            ..Devices::default()
        };
        assert!(btrfs.same("btrfsvol:/dev/sdb1/@", "/dev/sda1"), "a name the appliance lacks");
        assert!(btrfs.same("btrfsvol:/dev/sda1/@", "/dev/sda1"));
        assert!(!btrfs.same("btrfsvol:/dev/sda1/@", "/dev/sda2"));
        assert!(devs.same("btrfsvol:/dev/sda1/@", "/dev/sda1"));
        assert!(!devs.same("/dev/sda1", "/dev/sda2"));
    }
}
