//! Offline access to a guest's disks through libguestfs, and what we learn and change there.
//!
//! [`Guest::open`] starts the libguestfs appliance on one or more disks — read-only for
//! inspection, read-write only on our own converted outputs — choosing KVM or TCG with
//! [`accel`]. [`inspect`] reads the operating system (a Windows guest from its hives through
//! [`registry`] and [`windows`]); [`fix`](crate::fix) changes it and records each [`Change`].

pub mod accel;
mod change;
pub mod devices;
pub mod initramfs;
pub mod inspect;
mod linux_root;
pub mod registry;
pub mod windows;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, ErrorKind, Result};
use crate::image::ImageFormat;
pub use accel::{Accel, AccelChoice};
pub use change::{Action, Change};
pub use devices::BlockDevice;

/// One disk handed to the appliance.
#[derive(Debug, Clone)]
pub struct GuestDisk {
    /// The image file.
    pub path: PathBuf,
    /// Its format (never probed by libguestfs).
    pub format: ImageFormat,
}

/// Options for [`Guest::open`].
#[derive(Debug, Clone, Default)]
pub struct GuestOptions {
    /// Open the disks writable (only ever our own outputs).
    pub writable: bool,
    /// KVM or TCG.
    pub accel: AccelChoice,
    /// libguestfs debug output on stderr.
    pub verbose: bool,
    /// Who finds the operating system.
    pub inspector: Inspector,
}

/// Who finds the guest's operating system, its root and its mount points
/// ([`inspect::inspect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Inspector {
    /// `HYPER2KVM_INSPECTOR=own|libguestfs|compare` when set, else [`Inspector::Own`].
    #[default]
    Auto,
    /// Our own reading of the file systems, `/etc/fstab` and os-release, with libguestfs's
    /// general `inspect_os` only when ours cannot decide (no Linux root, or several).
    Own,
    /// libguestfs's `inspect_os` always (slower; for comparison and benchmarks).
    Libguestfs,
    /// Both, in the same session; any difference is an error (for tests).
    Compare,
}

impl Inspector {
    /// The choice with `Auto` resolved from the environment.
    pub fn resolve(self) -> Inspector {
        match self {
            Inspector::Auto => match std::env::var("HYPER2KVM_INSPECTOR").ok().as_deref() {
                Some("libguestfs") => Inspector::Libguestfs,
                Some("compare") => Inspector::Compare,
                _ => Inspector::Own,
            },
            other => other,
        }
    }
}

/// A running libguestfs appliance with the guest's disks attached.
pub struct Guest {
    handle: guestfs::Handle,
    accel: Accel,
    disks: Vec<GuestDisk>,
    writable: bool,
    inspector: Inspector,
    devices: std::sync::OnceLock<Vec<BlockDevice>>,
}

impl std::fmt::Debug for Guest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guest").field("accel", &self.accel).field("disks", &self.disks).finish()
    }
}

/// Turns a libguestfs error into ours.
pub(crate) fn gerr(what: &str, e: guestfs::Error) -> Error {
    let cause = GuestfsError::from(&e);
    Error::new(ErrorKind::GuestInspection, format!("{what}: {}", cause.message)).with_source(cause)
}

/// The message libguestfs gave.
pub(crate) fn message(e: &guestfs::Error) -> String {
    GuestfsError::from(e).message
}

/// A libguestfs call that failed, kept as the source of the engine's
/// [`ErrorKind::GuestInspection`] errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("libguestfs: {message}")]
pub struct GuestfsError {
    /// What libguestfs said (`guestfs_last_error`).
    pub message: String,
}

impl From<&guestfs::Error> for GuestfsError {
    /// The `guestfs` crate's error implements neither `Display` nor `std::error::Error` and
    /// keeps its fields private; its `Debug` form is the only way to its message, read here
    /// once for every caller.
    fn from(e: &guestfs::Error) -> GuestfsError {
        let text = format!("{e:?}");
        let message = text
            .split("message: \"")
            .nth(1)
            .and_then(|m| m.split("\", errno").next())
            .map(|m| m.replace("\\\"", "\"").replace("\\n", " "))
            .unwrap_or(text);
        GuestfsError { message }
    }
}

impl Guest {
    /// Starts the appliance with `disks` attached in order (`/dev/sda`, `/dev/sdb`, …).
    pub fn open(disks: &[GuestDisk], opts: &GuestOptions) -> Result<Guest> {
        if disks.is_empty() {
            return Err(Error::new(ErrorKind::InvalidInput, "no disks to open"));
        }
        let handle =
            guestfs::Handle::create().map_err(|e| gerr("cannot create a libguestfs handle", e))?;
        let accel = accel::choose(opts.accel);
        if accel == Accel::Tcg {
            handle.set_backend_settings(&["force_tcg"]).map_err(|e| gerr("backend settings", e))?;
        }
        if opts.verbose {
            let _ = handle.set_verbose(true);
        }
        // Two vCPUs: the guest's own tools (update-initramfs, dracut) run many processes, and
        // under TCG each vCPU is a host thread.
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4) as i32;
        let _ = handle.set_smp(cpus);
        for d in disks {
            let path =
                d.path.to_str().ok_or_else(|| Error::invalid(&d.path, "path is not UTF-8"))?;
            let args = guestfs::AddDriveOptArgs {
                readonly: Some(!opts.writable),
                format: Some(d.format.qemu_driver()),
                // Only our own outputs are writable: a discard there (fstrim) frees the
                // block in the output file.
                discard: opts.writable.then_some("besteffort"),
                ..Default::default()
            };
            handle
                .add_drive(path, args)
                .map_err(|e| gerr("cannot attach disk", e).with_path(&d.path))?;
        }
        tracing::info!("starting the libguestfs appliance ({accel:?})");
        handle.launch().map_err(|e| gerr("cannot start the libguestfs appliance", e))?;
        tracing::info!("appliance running");
        Ok(Guest {
            handle,
            accel,
            disks: disks.to_vec(),
            writable: opts.writable,
            inspector: opts.inspector.resolve(),
            devices: std::sync::OnceLock::new(),
        })
    }

    /// The libguestfs handle, for modules that call it directly.
    pub(crate) fn handle(&self) -> &guestfs::Handle {
        &self.handle
    }

    /// Which acceleration the appliance runs with.
    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// The attached disks.
    pub fn disks(&self) -> &[GuestDisk] {
        &self.disks
    }

    /// Who finds the operating system in this session.
    pub fn inspector(&self) -> Inspector {
        self.inspector
    }

    /// Every disk, partition and logical volume with its blkid tags (read on first use).
    pub fn block_devices(&self) -> &[BlockDevice] {
        self.devices.get_or_init(|| devices::scan(self))
    }

    /// True when the disks are writable.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Reads a file of the mounted guest; `None` when it does not exist.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        if !self.is_file(path) {
            return Ok(None);
        }
        self.handle.read_file(path).map(Some).map_err(|e| gerr(&format!("reading {path}"), e))
    }

    /// Reads a file of any size (past libguestfs's message limit) through a temporary file in
    /// the host directory `scratch`.
    pub fn read_large(&self, path: &str, scratch: &Path) -> Result<Vec<u8>> {
        let local = scratch_file(scratch, "get");
        let got = self
            .handle
            .download(path, &local.to_string_lossy())
            .map_err(|e| gerr(&format!("reading {path}"), e))
            .and_then(|_| std::fs::read(&local).map_err(|e| Error::io(&local, "reading", e)));
        let _ = std::fs::remove_file(&local);
        got
    }

    /// Writes a file of any size through a temporary file in the host directory `scratch`.
    pub fn write_large(&self, path: &str, content: &[u8], scratch: &Path) -> Result<()> {
        let local = scratch_file(scratch, "put");
        let put = std::fs::write(&local, content)
            .map_err(|e| Error::io(&local, "writing", e))
            .and_then(|_| {
                self.handle
                    .upload(&local.to_string_lossy(), path)
                    .map_err(|e| gerr(&format!("writing {path}"), e))
            });
        let _ = std::fs::remove_file(&local);
        put
    }

    /// Reads a text file of the mounted guest; `None` when it does not exist.
    pub fn read_text(&self, path: &str) -> Result<Option<String>> {
        Ok(self.read(path)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// True when `path` is a regular file (following symbolic links).
    pub fn is_file(&self, path: &str) -> bool {
        self.handle
            .is_file(path, guestfs::IsFileOptArgs { followsymlinks: Some(true) })
            .unwrap_or(false)
    }

    /// True when `path` exists.
    pub fn exists(&self, path: &str) -> bool {
        self.handle.exists(path).unwrap_or(false)
    }

    /// Paths matching a glob in the guest.
    pub fn glob(&self, pattern: &str) -> Vec<String> {
        self.handle.glob_expand(pattern, Default::default()).unwrap_or_default()
    }

    /// Writes a file in the guest (the disks must be writable).
    pub fn write(&self, path: &str, content: &[u8]) -> Result<()> {
        self.handle.write(path, content).map_err(|e| gerr(&format!("writing {path}"), e))
    }

    /// Discards the free blocks of every mounted file system (`fstrim`); returns the mount
    /// points trimmed. A file system that cannot be trimmed is skipped with a warning.
    pub fn trim(&self) -> Vec<String> {
        let mut done = Vec::new();
        let mounts = self.handle.mountpoints().unwrap_or_default();
        let mut points: Vec<String> = mounts.into_values().collect();
        points.sort();
        for mp in points {
            match self.handle.fstrim(&mp, Default::default()) {
                Ok(()) => done.push(mp),
                Err(e) => tracing::warn!("cannot trim {mp}: {}", gerr("fstrim", e).message()),
            }
        }
        done
    }

    /// Runs a program of the guest in a chroot of its root.
    pub fn command(&self, argv: &[&str]) -> Result<String> {
        tracing::info!("running in the guest: {}", argv.join(" "));
        self.handle
            .command(argv)
            .map_err(|e| gerr(&format!("running {} in the guest", argv.join(" ")), e))
    }

    /// Unmounts, flushes and stops the appliance; errors here mean changes may be lost.
    pub fn close(self) -> Result<()> {
        let _ = self.handle.umount_all();
        if self.writable {
            self.handle.sync().map_err(|e| gerr("flushing the guest's disks", e))?;
        }
        self.handle.shutdown().map_err(|e| gerr("stopping the appliance", e))
    }
}

/// A host file name in `scratch` for a transfer, unique within this process.
fn scratch_file(scratch: &Path, what: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    scratch.join(format!(".hyper2kvm-{what}-{}-{n}", std::process::id()))
}

/// True for a kernel device name that depends on the disk controller (`/dev/sda1`,
/// `/dev/hdb`, `/dev/xvda2`, `/dev/vda1`, `/dev/nvme0n1p1`).
pub fn is_controller_name(dev: &str) -> bool {
    ["/dev/sd", "/dev/hd", "/dev/xvd", "/dev/vd", "/dev/nvme"].iter().any(|p| dev.starts_with(p))
}

/// The appliance's device name for a guest device name: `sda1`, `hdb2`, `xvda1`, `vda1` and
/// `nvme0n1p1` name disks by their order, and the appliance sees disk N as `/dev/sdX`.
pub fn appliance_device(guest_dev: &str) -> Option<String> {
    let name = guest_dev.strip_prefix("/dev/")?;
    let (index, part) = if let Some(rest) = name.strip_prefix("nvme") {
        let (ctrl, rest) = rest.split_once('n')?;
        let (_ns, part) = match rest.split_once('p') {
            Some((ns, p)) => (ns, p),
            None => (rest, ""),
        };
        (ctrl.parse::<u32>().ok()?, part.to_string())
    } else {
        let rest = ["sd", "hd", "xvd", "vd"].iter().find_map(|p| name.strip_prefix(p))?;
        let letters: String = rest.chars().take_while(|c| c.is_ascii_lowercase()).collect();
        let part = rest[letters.len()..].to_string();
        if letters.is_empty() || !part.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let index = letters.bytes().fold(0u32, |acc, b| acc * 26 + u32::from(b - b'a' + 1)) - 1;
        (index, part)
    };
    if index >= 26 {
        return None;
    }
    Some(format!("/dev/sd{}{}", (b'a' + index as u8) as char, part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_map_by_disk_order() {
        assert_eq!(appliance_device("/dev/sda1").as_deref(), Some("/dev/sda1"));
        assert_eq!(appliance_device("/dev/hdb2").as_deref(), Some("/dev/sdb2"));
        assert_eq!(appliance_device("/dev/xvda").as_deref(), Some("/dev/sda"));
        assert_eq!(appliance_device("/dev/vdc3").as_deref(), Some("/dev/sdc3"));
        assert_eq!(appliance_device("/dev/nvme0n1p2").as_deref(), Some("/dev/sda2"));
        assert_eq!(appliance_device("/dev/nvme1n1").as_deref(), Some("/dev/sdb"));
        assert_eq!(appliance_device("/dev/mapper/vg-root"), None);
        assert_eq!(appliance_device("UUID=x"), None);
    }
}
