//! The boot loader: `root=` on the kernel command line made stable, the stale `device.map`
//! removed, and the configuration regenerated with the guest's own tool when it has one
//! (`update-grub`, `grub2-mkconfig`, `grub-mkconfig`); otherwise the generated configuration
//! is edited in place. When the kernel GRUB boots by default (the newest) cannot boot on
//! virtio but another can, that one becomes the default (`GRUB_DEFAULT` by its menu-entry id on
//! Debian-style systems, `grubby --set-default` where grubby manages the entries).

use super::fstab::rewrite;
use super::{Fixer, LineEdit};
use crate::error::Result;
use crate::guest::inspect::Kernel;

const FIXER: &str = "bootloader";

/// Rewrites every `root=DEV` (and `resume=DEV`) word of a line.
fn edit_cmdline(line: &str, mut map: impl FnMut(&str) -> Option<String>) -> LineEdit {
    let mut changed = false;
    let words: Vec<String> = line
        .split(' ')
        .map(|w| {
            for key in ["root=", "resume="] {
                let (lead, rest) = match w.find(key) {
                    Some(i) if i == 0 || w[..i].ends_with('"') || w[..i].ends_with('\'') => {
                        (&w[..i + key.len()], &w[i + key.len()..])
                    }
                    _ => continue,
                };
                let dev_end = rest.find(['"', '\'']).unwrap_or(rest.len());
                if let Some(new) = map(&rest[..dev_end]) {
                    changed = true;
                    return format!("{lead}{new}{}", &rest[dev_end..]);
                }
            }
            w.to_string()
        })
        .collect();
    if changed { LineEdit::Replace(words.join(" ")) } else { LineEdit::Keep }
}

/// The kernel to make the default: `None` when GRUB's own choice (the newest) can boot on
/// virtio once fixed; otherwise the newest kernel that can.
fn virtio_default(kernels: &[Kernel]) -> Option<&Kernel> {
    let newest = kernels.last()?;
    if newest.virtio_capable {
        return None;
    }
    kernels.iter().rev().find(|k| k.virtio_capable)
}

/// `GRUB_DEFAULT` naming a kernel by the ids Debian's `10_linux` gives its entries.
fn grub_default(version: &str, root_uuid: &str) -> String {
    format!("\"gnulinux-advanced-{root_uuid}>gnulinux-{version}-advanced-{root_uuid}\"")
}

/// Sets `GRUB_DEFAULT=` in /etc/default/grub (appending it when absent).
fn set_grub_default(f: &mut Fixer<'_>, value: &str) -> Result<()> {
    let line = format!("GRUB_DEFAULT={value}");
    let mut found = false;
    f.edit_lines(FIXER, "/etc/default/grub", |l| {
        if l.trim_start().starts_with("GRUB_DEFAULT=") {
            found = true;
            if l.trim() == line { LineEdit::Keep } else { LineEdit::Replace(line.clone()) }
        } else {
            LineEdit::Keep
        }
    })?;
    if !found {
        let old = f.g.read_text("/etc/default/grub")?.unwrap_or_default();
        let mut new = old.clone();
        if !new.is_empty() && !new.ends_with('\n') {
            new.push('\n');
        }
        new.push_str(&line);
        new.push('\n');
        f.create(FIXER, "/etc/default/grub", &new)?;
    }
    Ok(())
}

/// Rewrites `root=`/`resume=` on the kernel lines of a generated GRUB configuration.
fn edit_generated(
    f: &mut Fixer<'_>,
    cfg: &str,
    map: impl Fn(&str) -> Option<String>,
) -> Result<bool> {
    f.edit_lines(FIXER, cfg, |l| {
        let t = l.trim_start();
        if t.starts_with("linux") || t.starts_with("kernel") || t.starts_with("append") {
            edit_cmdline(l, &map)
        } else {
            LineEdit::Keep
        }
    })
}

/// A UEFI guest boots on a new NVRAM store, which has no boot entries: the firmware only
/// finds `\EFI\BOOT\BOOTX64.EFI`. Distributions install their loader elsewhere
/// (`\EFI\debian\shimx64.efi`, `grubx64.efi`); copy it to the fallback path with what it
/// loads beside it, as virt-v2v does.
fn efi_fallback(f: &mut Fixer<'_>) -> Result<()> {
    let g = f.g;
    let Some(esp) = crate::bootchain::esp_mount(f.insp) else { return Ok(()) };
    if crate::bootchain::fallback_loader(g, esp).is_some() {
        return Ok(());
    }
    let loaders: Vec<String> = ["shimx64.efi", "grubx64.efi"]
        .iter()
        .flat_map(|l| g.glob(&format!("{esp}/EFI/*/{l}")))
        .filter(|p| !p.to_ascii_uppercase().contains("/EFI/BOOT/"))
        .collect();
    let Some(loader) = loaders.first().cloned() else {
        f.skip(
            FIXER,
            &format!("{esp}/EFI/BOOT/BOOTX64.EFI"),
            "no shimx64.efi or grubx64.efi on the ESP to copy",
        );
        return Ok(());
    };
    let dir = loader.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
    let boot = match g.handle().case_sensitive_path(&format!("{esp}/EFI/BOOT")) {
        Ok(p) if g.handle().is_dir(&p, Default::default()).unwrap_or(false) => p,
        _ => format!("{esp}/EFI/BOOT"),
    };
    f.changes.push(
        super::Change::new(FIXER, super::Action::Create, format!("{boot}/BOOTX64.EFI"))
            .lines(None, Some(format!("copy of {loader}"))),
    );
    let mut copies = vec![(loader.clone(), format!("{boot}/BOOTX64.EFI"))];
    for extra in ["grubx64.efi", "mmx64.efi", "grub.cfg"] {
        let src = format!("{dir}/{extra}");
        if g.is_file(&src) && src != loader {
            copies.push((src, format!("{boot}/{extra}")));
        }
    }
    if f.opts.dry_run {
        return Ok(());
    }
    let h = g.handle();
    let _ = h.mkdir_p(&boot);
    for (src, dst) in copies {
        h.cp(&src, &dst).map_err(|e| crate::guest::gerr(&format!("copying {src} to {dst}"), e))?;
    }
    Ok(())
}

/// Fixes the boot loader.
pub(crate) fn fix(f: &mut Fixer<'_>) -> Result<()> {
    if f.insp.firmware == "uefi" {
        efi_fallback(f)?;
    }
    let (g, opts) = (f.g, f.opts);
    // What follows changes what grub-mkconfig reads; the EFI fallback copies above do not.
    let first_input_change = f.changes.len();
    for map in ["/boot/grub/device.map", "/boot/grub2/device.map"] {
        if g.is_file(map) {
            f.delete(FIXER, map)?;
        }
    }
    let map = |dev: &str| rewrite(g, opts, dev);
    f.edit_lines(FIXER, "/etc/default/grub", |l| {
        let t = l.trim_start();
        if t.starts_with("GRUB_CMDLINE_LINUX") {
            edit_cmdline(l, map)
        } else if let Some(dev) = t.strip_prefix("GRUB_DEVICE=") {
            // A root device forced for grub-mkconfig.
            let bare = dev.trim().trim_matches(['"', '\'']);
            match map(bare) {
                Some(new) => LineEdit::Replace(format!("GRUB_DEVICE=\"{new}\"")),
                None => LineEdit::Keep,
            }
        } else {
            LineEdit::Keep
        }
    })?;
    if let Some(k) = virtio_default(&f.insp.kernels) {
        let newest = f.insp.kernels.last().map(|k| k.version.clone()).unwrap_or_default();
        if g.is_file("/usr/sbin/update-grub") && g.is_file("/etc/default/grub") {
            let uuid = g.handle().vfs_uuid(&f.insp.root_device).unwrap_or_default();
            if uuid.is_empty() {
                f.skip(FIXER, "default kernel", "the root filesystem has no UUID to name it by");
            } else {
                let value = grub_default(&k.version, &uuid);
                set_grub_default(f, &value)?;
            }
        } else if !g.is_file("/usr/sbin/grubby") {
            f.skip(
                FIXER,
                "default kernel",
                &format!(
                    "kernel {newest} has no virtio_blk and no tool here to choose {}",
                    k.version
                ),
            );
        }
    } else if let Some(k) = f.insp.kernels.last()
        && !k.virtio_capable
    {
        f.skip(
            FIXER,
            "default kernel",
            &format!("kernel {} has no virtio_blk and no other kernel has", k.version),
        );
    }
    let tool = [
        ("/usr/sbin/update-grub", vec!["update-grub"]),
        ("/usr/sbin/grub2-mkconfig", vec!["grub2-mkconfig", "-o"]),
        ("/usr/sbin/grub-mkconfig", vec!["grub-mkconfig", "-o"]),
    ]
    .into_iter()
    .find(|(p, _)| g.is_file(p));
    let config = f.insp.grub_config.clone();
    let inputs_changed =
        f.changes[first_input_change..].iter().any(|c| c.action != crate::guest::Action::Skip);
    let current = config.as_deref().and_then(|cfg| g.read_text(cfg).ok().flatten());
    let stale = current.as_deref().is_none_or(|text| !lists_every_kernel(text, &f.insp.kernels));
    match (tool, config) {
        (Some((_, argv)), Some(cfg))
            if g.is_file("/etc/default/grub") && !inputs_changed && !stale =>
        {
            // Regenerating would write the same menu (and takes ~15 s of the guest's
            // grub-probe under emulation): only what it says of the root is made stable.
            f.skip(
                FIXER,
                argv[0],
                &format!(
                    "{cfg} already boots every installed kernel and nothing it is generated \
                     from changed"
                ),
            );
            edit_generated(f, &cfg, map)?;
        }
        (Some((_, mut argv)), Some(cfg)) if g.is_file("/etc/default/grub") => {
            if argv.len() == 2 {
                argv.push(&cfg);
            }
            f.run(FIXER, &argv)?;
            // The generator names the root as it sees it in the appliance when the guest
            // forbids UUIDs (GRUB_DISABLE_LINUX_UUID=true) or forces GRUB_DEVICE: make what it
            // wrote stable, in the file GRUB will read.
            edit_generated(f, &cfg, map)?;
        }
        (_, Some(cfg)) => {
            // No generator (or no /etc/default/grub): edit the generated file itself.
            edit_generated(f, &cfg, map)?;
        }
        (_, None) => f.skip(FIXER, "boot loader", "no GRUB configuration found"),
    }
    if let Some(k) = virtio_default(&f.insp.kernels)
        && g.is_file("/usr/sbin/grubby")
    {
        f.run(FIXER, &["grubby", &format!("--set-default=/boot/vmlinuz-{}", k.version)])?;
    }
    Ok(())
}

/// True when a generated GRUB configuration has a menu entry for every installed kernel and
/// its initramfs (by file name, as grub-mkconfig writes them).
fn lists_every_kernel(cfg: &str, kernels: &[Kernel]) -> bool {
    let file = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
    let mentioned = |name: String| {
        cfg.lines().any(|l| {
            let t = l.trim_start();
            (t.starts_with("linux") || t.starts_with("initrd"))
                && t.split_whitespace().any(|w| w.rsplit('/').next() == Some(name.as_str()))
        })
    };
    kernels.iter().all(|k| {
        k.vmlinuz.as_deref().is_none_or(|v| mentioned(file(v)))
            && k.initramfs.as_deref().is_none_or(|i| mentioned(file(i)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(version: &str, virtio: bool) -> Kernel {
        Kernel {
            version: version.into(),
            vmlinuz: Some(format!("/boot/vmlinuz-{version}")),
            initramfs: None,
            virtio_capable: virtio,
            virtio_builtin: false,
            initramfs_has_virtio_blk: None,
        }
    }

    #[test]
    fn a_configuration_is_current_only_when_it_boots_every_kernel_and_initramfs() {
        let cfg = "menuentry 'Debian GNU/Linux' {\n\
                   \tlinux\t/boot/vmlinuz-6.1.0-9-amd64 root=UUID=x ro quiet\n\
                   \tinitrd\t/boot/initrd.img-6.1.0-9-amd64\n}\n";
        let mut k = kernel("6.1.0-9-amd64", true);
        k.initramfs = Some("/boot/initrd.img-6.1.0-9-amd64".into());
        assert!(lists_every_kernel(cfg, std::slice::from_ref(&k)));
        // A kernel installed without update-grub, or a missing initrd line: stale.
        assert!(!lists_every_kernel(cfg, &[k.clone(), kernel("6.1.0-10-amd64", true)]));
        let no_initrd = cfg.replace("\tinitrd\t/boot/initrd.img-6.1.0-9-amd64\n", "");
        assert!(!lists_every_kernel(&no_initrd, std::slice::from_ref(&k)));
        // A separate /boot: GRUB names the files from its root.
        let sep = cfg.replace("/boot/", "/");
        assert!(lists_every_kernel(&sep, &[k]));
    }

    #[test]
    fn the_default_moves_only_off_a_kernel_without_virtio() {
        let ks = [kernel("5.10.0-28", true), kernel("6.1.0-9", true), kernel("6.1.0-10", false)];
        assert_eq!(virtio_default(&ks).map(|k| k.version.as_str()), Some("6.1.0-9"));
        let ok = [kernel("5.10.0-28", false), kernel("6.1.0-10", true)];
        assert!(virtio_default(&ok).is_none(), "the newest boots on virtio: GRUB's choice stands");
        assert!(virtio_default(&[kernel("4.9", false)]).is_none());
        assert!(virtio_default(&[]).is_none());
        assert_eq!(
            grub_default("6.1.0-9-amd64", "9dfa"),
            "\"gnulinux-advanced-9dfa>gnulinux-6.1.0-9-amd64-advanced-9dfa\""
        );
    }

    fn run(line: &str) -> Option<String> {
        match edit_cmdline(line, |d| (d == "/dev/sda1").then(|| "UUID=1234".to_string())) {
            LineEdit::Replace(s) => Some(s),
            _ => None,
        }
    }

    #[test]
    fn rewrites_root_in_kernel_lines_and_defaults() {
        assert_eq!(
            run("    linux /boot/vmlinuz root=/dev/sda1 ro quiet").as_deref(),
            Some("    linux /boot/vmlinuz root=UUID=1234 ro quiet")
        );
        assert_eq!(
            run("GRUB_CMDLINE_LINUX=\"root=/dev/sda1 quiet\"").as_deref(),
            Some("GRUB_CMDLINE_LINUX=\"root=UUID=1234 quiet\"")
        );
        assert_eq!(run("    linux /boot/vmlinuz root=UUID=9 ro"), None);
        assert_eq!(run("    linux /boot/vmlinuz myroot=/dev/sda1"), None);
    }
}
