//! The boot loader: `root=` on the kernel command line made stable, the stale `device.map`
//! removed, and the configuration regenerated with the guest's own tool when it has one
//! (`update-grub`, `grub2-mkconfig`, `grub-mkconfig`); otherwise the generated configuration
//! is edited in place.

use super::fstab::rewrite;
use super::{Fixer, LineEdit};
use crate::error::Result;

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

/// Fixes the boot loader.
pub(crate) fn fix(f: &mut Fixer<'_>) -> Result<()> {
    let (g, opts) = (f.g, f.opts);
    for map in ["/boot/grub/device.map", "/boot/grub2/device.map"] {
        if g.is_file(map) {
            f.delete(FIXER, map)?;
        }
    }
    let map = |dev: &str| rewrite(g, opts, dev);
    f.edit_lines(FIXER, "/etc/default/grub", |l| {
        if l.trim_start().starts_with("GRUB_CMDLINE_LINUX") {
            edit_cmdline(l, map)
        } else {
            LineEdit::Keep
        }
    })?;
    let tool = [
        ("/usr/sbin/update-grub", vec!["update-grub"]),
        ("/usr/sbin/grub2-mkconfig", vec!["grub2-mkconfig", "-o"]),
        ("/usr/sbin/grub-mkconfig", vec!["grub-mkconfig", "-o"]),
    ]
    .into_iter()
    .find(|(p, _)| g.is_file(p));
    let config = f.insp.grub_config.clone();
    match (tool, config) {
        (Some((_, mut argv)), Some(cfg)) if g.is_file("/etc/default/grub") => {
            if argv.len() == 2 {
                argv.push(&cfg);
            }
            f.run(FIXER, &argv)?;
        }
        (_, Some(cfg)) => {
            // No generator (or no /etc/default/grub): edit the generated file itself.
            f.edit_lines(FIXER, &cfg, |l| {
                let t = l.trim_start();
                if t.starts_with("linux") || t.starts_with("kernel") || t.starts_with("append") {
                    edit_cmdline(l, map)
                } else {
                    LineEdit::Keep
                }
            })?;
        }
        (_, None) => f.skip(FIXER, "boot loader", "no GRUB configuration found"),
    }
    if let Some(k) = f.insp.kernels.last()
        && !k.virtio_capable
    {
        f.skip(
            FIXER,
            "default kernel",
            &format!("kernel {} has no virtio_blk; no other kernel chosen", k.version),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
