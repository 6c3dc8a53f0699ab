//! Changing a guest so it boots on KVM: [`linux`] (small fixers, each with a plan and a
//! record) and [`windows`] (drivers, services and the first-boot script through the hives).
//! The options say what may be done; the guest's [`OsType`] picks the fixer.
//!
//! Every fix returns the [`Change`]s it makes — file, action, old line, new line. With
//! `dry_run` nothing is written and the list is the plan. Fixes only ever run on our own
//! converted outputs (or on a throw-away overlay for a dry run), never on a source.

pub mod linux;
pub mod windows;

use std::str::FromStr;

use serde::Serialize;

pub use crate::guest::inspect::OsType;
pub use crate::guest::{Action, Change};
pub use linux::configure::{
    GuestConfiguration, HostEntry, Hostname, NetworkFiles, NetworkdFile, Services, User, Users,
};
pub use linux::fix_linux;

use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::guest::Guest;
use crate::guest::inspect::Inspection;
use crate::libvirt::{DiskBus, NicModel};

/// How `/etc/fstab` (and crypttab, resume) device names are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FstabMode {
    /// Every kernel device name (`/dev/sda1`, `/dev/xvdb`, …) becomes `UUID=` (or `PARTUUID=`).
    #[default]
    StabilizeAll,
    /// Only device paths are touched: each is renamed to what virtio shows (`/dev/vda1`).
    BypathOnly,
    /// Leave the files alone.
    Noop,
}

impl FromStr for FstabMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<FstabMode> {
        match s {
            "stabilize-all" => Ok(FstabMode::StabilizeAll),
            "bypath-only" => Ok(FstabMode::BypathOnly),
            "noop" => Ok(FstabMode::Noop),
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("fstab_mode must be stabilize-all, bypath-only or noop, not {s:?}"),
            )),
        }
    }
}

/// How an initramfs that lacks the virtio drivers gets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitramfsMethod {
    /// initramfs-tools images (Debian, Ubuntu) get the drivers and a new module index
    /// appended as one more cpio archive, seconds instead of a rebuild of over a minute under
    /// TCG; the tool's configuration names them for later rebuilds. Other images, and any
    /// image we cannot read, are rebuilt by the guest's tool.
    #[default]
    Auto,
    /// Always rebuild with the guest's own tool (`update-initramfs`, `dracut`, `mkinitcpio`).
    Rebuild,
}

/// What the fixers may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixOptions {
    /// Plan only.
    pub dry_run: bool,
    /// Keep `FILE.hyper2kvm.bak` copies of edited files.
    pub backup: bool,
    /// fstab/crypttab/resume rewriting.
    pub fstab_mode: FstabMode,
    /// Fix the boot loader configuration.
    pub update_grub: bool,
    /// Give initramfs images that lack virtio drivers those drivers.
    pub regen_initramfs: bool,
    /// How they get them.
    pub initramfs: InitramfsMethod,
    /// Disable VMware Tools, Hyper-V daemons and VirtualBox additions.
    pub remove_vmware_tools: bool,
    /// The manifest's `configuration` section (users, services, hostname, network files).
    pub configuration: GuestConfiguration,
    /// The virtio-win drivers for Windows guests: the ISO or a tree (else `VIRTIO_WIN`, else
    /// `/usr/share/virtio-win/virtio-win.iso`, else `/usr/share/virtio-win`).
    pub virtio_win: Option<std::path::PathBuf>,
    /// Convert a Windows guest that has no virtio drivers available with SATA disks and an
    /// e1000 NIC instead of refusing it.
    pub allow_no_virtio: bool,
    /// After the fixes, discard the blocks the guest's file systems do not use (`fstrim` in the
    /// appliance), so they become holes in the output instead of copies of deleted data.
    pub trim: bool,
}

impl Default for FixOptions {
    fn default() -> Self {
        FixOptions {
            dry_run: false,
            backup: false,
            fstab_mode: FstabMode::StabilizeAll,
            update_grub: true,
            regen_initramfs: true,
            initramfs: InitramfsMethod::Auto,
            remove_vmware_tools: true,
            configuration: GuestConfiguration::default(),
            virtio_win: None,
            allow_no_virtio: false,
            trim: true,
        }
    }
}

/// What [`apply`] did to a guest.
#[derive(Debug, Default)]
pub struct Fixed {
    /// Every change, in order.
    pub changes: Vec<Change>,
    /// What did not stop the fixes but is worth knowing.
    pub warnings: Vec<String>,
    /// For a Windows guest: the disk bus and NIC model it now has drivers for.
    pub devices: Option<(DiskBus, NicModel)>,
}

/// Fixes the guest for KVM with its OS's fixer: Linux by [`linux`], Windows by [`windows`]
/// (with the drivers for `disk_bus`), any other system is converted as it is, with a warning.
/// With `opts.dry_run` a Linux guest's changes are planned, not made. `scratch` is a host
/// directory for files read out of the guest (the output directory).
pub fn apply(
    g: &Guest,
    insp: &Inspection,
    opts: &FixOptions,
    scratch: &Path,
    disk_bus: DiskBus,
) -> Result<Fixed> {
    match &insp.os_type {
        OsType::Linux => {
            Ok(Fixed { changes: fix_linux(g, insp, opts, scratch)?, ..Fixed::default() })
        }
        OsType::Windows if insp.windows.is_some() => {
            if opts.dry_run {
                let w = "fixes are off: the Windows guest was not given virtio drivers and may \
                         not boot from a virtio disk";
                return Ok(Fixed { warnings: vec![w.into()], ..Fixed::default() });
            }
            let src = windows::fix::driver_source(opts, scratch)?;
            let wopts = windows::WindowsFixOptions::from_fix(opts, src.as_ref(), disk_bus);
            let done = windows::fix_windows(g, insp, &wopts)?;
            Ok(Fixed {
                changes: done.changes,
                warnings: done.warnings,
                devices: Some((done.disk_bus, done.nic_model)),
            })
        }
        other => {
            let w = format!("{other} guests are converted without fixes for now");
            Ok(Fixed { warnings: vec![w], ..Fixed::default() })
        }
    }
}

/// What the fixes would do to the guest, changing nothing: a Linux guest's planned changes,
/// and notes (for Windows, the drivers it would get, or why it would be refused).
pub fn plan(
    g: &Guest,
    insp: &Inspection,
    opts: &FixOptions,
    scratch: &Path,
) -> Result<(Vec<Change>, Vec<String>)> {
    match &insp.os_type {
        OsType::Linux => {
            let plan = FixOptions { dry_run: true, ..opts.clone() };
            Ok((fix_linux(g, insp, &plan, scratch)?, Vec::new()))
        }
        _ if insp.windows.is_some() => {
            let src = windows::fix::driver_source(opts, scratch)?;
            let wopts =
                windows::WindowsFixOptions::from_fix(opts, src.as_ref(), DiskBus::default());
            Ok((Vec::new(), windows::fix::plan_windows(insp, &wopts)?))
        }
        _ => Ok((Vec::new(), Vec::new())),
    }
}
