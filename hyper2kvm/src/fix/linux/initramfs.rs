//! The initramfs: rebuilt with the virtio drivers by the guest's own tool (`update-initramfs`,
//! `dracut`, `mkinitcpio`) — and left alone when inspection read the current image and found
//! the drivers already there (virt-v2v always rebuilds; we do not pay for it when we need not).
//! Debian-style (initramfs-tools) images get the drivers appended instead of a full rebuild
//! ([`inject`](super::inject)) unless [`InitramfsMethod::Rebuild`] is asked for. After either,
//! the new image is read again to prove the driver is in.

use std::path::Path;

use super::inject::inject;
use super::{Fixer, InitramfsMethod};
use crate::error::{Error, ErrorKind, Result};
use crate::guest::initramfs::{has_module, list};
use crate::guest::inspect::{Kernel, VIRTIO_MODULES};

const FIXER: &str = "initramfs";

/// The modules the rebuilt image must hold.
fn wanted(f: &Fixer<'_>) -> Vec<&'static str> {
    let mut m: Vec<&'static str> = VIRTIO_MODULES.to_vec();
    if f.insp.storage.iter().any(|s| s == "lvm" || s == "luks") {
        m.push("dm_mod");
    }
    m
}

/// Names the drivers in `/etc/initramfs-tools/modules`, so every later build has them.
pub(crate) fn ensure_tool_config(f: &mut Fixer<'_>, modules: &[&str]) -> Result<()> {
    let path = "/etc/initramfs-tools/modules";
    let old = f.g.read_text(path)?.unwrap_or_default();
    let missing: Vec<&str> =
        modules.iter().copied().filter(|m| !old.lines().any(|l| l.trim() == *m)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut new = old.clone();
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str("# added by hyper2kvm for KVM (virtio)\n");
    for m in missing {
        new.push_str(m);
        new.push('\n');
    }
    f.create(FIXER, path, &new)
}

fn rebuild(f: &mut Fixer<'_>, k: &Kernel, image: &str, modules: &[&str]) -> Result<bool> {
    let g = f.g;
    if g.is_file("/usr/sbin/update-initramfs") {
        ensure_tool_config(f, modules)?;
        f.run(FIXER, &["update-initramfs", "-u", "-k", &k.version])?;
    } else if g.is_file("/usr/bin/dracut") || g.is_file("/usr/sbin/dracut") {
        let conf = format!(
            "# added by hyper2kvm for KVM (virtio)\nadd_drivers+=\" {} \"\n",
            modules.join(" ")
        );
        f.create(FIXER, "/etc/dracut.conf.d/50-hyper2kvm-virtio.conf", &conf)?;
        f.run(FIXER, &["dracut", "-f", image, &k.version])?;
    } else if g.is_file("/usr/bin/mkinitcpio") {
        let conf = format!("MODULES+=({})\n", modules.join(" "));
        f.create(FIXER, "/etc/mkinitcpio.conf.d/50-hyper2kvm-virtio.conf", &conf)?;
        f.run(FIXER, &["mkinitcpio", "-k", &k.version, "-g", image])?;
    } else {
        f.skip(FIXER, image, "no update-initramfs, dracut or mkinitcpio in the guest");
        return Ok(false);
    }
    Ok(true)
}

/// Checks the new image with our own reader.
fn verify(f: &Fixer<'_>, image: &str, scratch: &Path) -> Result<()> {
    let names = list(&f.g.read_large(image, scratch)?)?;
    if !has_module(&names, "virtio_blk") {
        return Err(Error::new(
            ErrorKind::GuestInspection,
            format!("{image} still lacks virtio_blk after the rebuild"),
        ));
    }
    Ok(())
}

/// Rebuilds what needs it.
pub(crate) fn fix(f: &mut Fixer<'_>, scratch: &Path) -> Result<()> {
    let modules = wanted(f);
    let kernels = f.insp.kernels.clone();
    for k in &kernels {
        let Some(image) = &k.initramfs else {
            if !k.virtio_builtin {
                f.skip(FIXER, &k.version, "no initramfs for this kernel");
            }
            continue;
        };
        if k.boots_on_virtio() {
            let why = if k.virtio_builtin {
                "virtio_blk is built into the kernel"
            } else {
                "the initramfs already holds virtio_blk"
            };
            f.skip(FIXER, image, why);
            continue;
        }
        if !k.virtio_capable {
            f.skip(FIXER, image, "this kernel has no virtio_blk module");
            continue;
        }
        let injected =
            f.opts.initramfs == InitramfsMethod::Auto && inject(f, k, image, &modules, scratch)?;
        if (injected || rebuild(f, k, image, &modules)?) && !f.opts.dry_run {
            verify(f, image, scratch)?;
        }
    }
    Ok(())
}
