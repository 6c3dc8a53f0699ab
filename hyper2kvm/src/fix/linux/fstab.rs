//! `/etc/fstab`, `/etc/crypttab` and the resume device: kernel device names of the old
//! controller (`/dev/sda1`, `/dev/hdb`, `/dev/xvda2`, `/dev/nvme0n1p1`) do not survive the move
//! to virtio (`/dev/vda1`), so they are made stable (`UUID=`) or renamed.

use super::{FixOptions, Fixer, FstabMode, LineEdit};
use crate::error::Result;
use crate::guest::{Guest, appliance_device, is_controller_name};

const FIXER: &str = "fstab";

/// `UUID=…` (or `PARTUUID=…`) for a guest device name.
pub(crate) fn stable_name(g: &Guest, dev: &str) -> Option<String> {
    let appliance = appliance_device(dev)?;
    if let Ok(uuid) = g.handle().vfs_uuid(&appliance)
        && !uuid.is_empty()
    {
        return Some(format!("UUID={uuid}"));
    }
    let blkid = g.handle().blkid(&appliance).ok()?;
    blkid.get("PARTUUID").map(|p| format!("PARTUUID={p}"))
}

/// What virtio calls the same disk: `/dev/sdb2` → `/dev/vdb2`, `/dev/nvme0n1p1` → `/dev/vda1`.
pub(crate) fn virtio_name(dev: &str) -> Option<String> {
    appliance_device(dev).map(|a| a.replacen("/dev/sd", "/dev/vd", 1))
}

/// The replacement for a device field, per the mode.
pub(crate) fn rewrite(g: &Guest, opts: &FixOptions, dev: &str) -> Option<String> {
    if !is_controller_name(dev) {
        return None;
    }
    let new = match opts.fstab_mode {
        FstabMode::StabilizeAll => stable_name(g, dev).or_else(|| virtio_name(dev)),
        FstabMode::BypathOnly => virtio_name(dev),
        FstabMode::Noop => None,
    }?;
    (new != dev).then_some(new)
}

/// Replaces field `index` (whitespace-separated) of a table line, keeping comments.
fn edit_field(g: &Guest, opts: &FixOptions, line: &str, index: usize) -> LineEdit {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return LineEdit::Keep;
    }
    let fields: Vec<&str> = trimmed.split_whitespace().collect();
    let Some(dev) = fields.get(index) else { return LineEdit::Keep };
    match rewrite(g, opts, dev) {
        Some(new) => {
            let mut out: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
            out[index] = new;
            LineEdit::Replace(out.join(" "))
        }
        None => LineEdit::Keep,
    }
}

/// Rewrites fstab, crypttab and the initramfs-tools resume setting.
pub(crate) fn fix(f: &mut Fixer<'_>) -> Result<()> {
    if f.opts.fstab_mode == FstabMode::Noop {
        f.skip(FIXER, "/etc/fstab", "fstab_mode is noop");
        return Ok(());
    }
    let (g, opts) = (f.g, f.opts);
    f.edit_lines(FIXER, "/etc/fstab", |l| edit_field(g, opts, l, 0))?;
    f.edit_lines(FIXER, "/etc/crypttab", |l| edit_field(g, opts, l, 1))?;
    f.edit_lines(FIXER, "/etc/initramfs-tools/conf.d/resume", |l| {
        match l.trim().strip_prefix("RESUME=") {
            Some(dev) => rewrite(g, opts, dev)
                .map_or(LineEdit::Keep, |n| LineEdit::Replace(format!("RESUME={n}"))),
            None => LineEdit::Keep,
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtio_names() {
        assert_eq!(virtio_name("/dev/sda1").as_deref(), Some("/dev/vda1"));
        assert_eq!(virtio_name("/dev/hdb").as_deref(), Some("/dev/vdb"));
        assert_eq!(virtio_name("/dev/nvme0n1p3").as_deref(), Some("/dev/vda3"));
        assert!(is_controller_name("/dev/xvda1"));
        assert!(!is_controller_name("UUID=abc"));
        assert!(!is_controller_name("/dev/mapper/vg-root"));
    }
}
