//! Changing a Linux guest so it boots on KVM: small fixers, each with a plan and a record.
//!
//! Every fixer looks at the mounted guest and the [`Inspection`], and returns the [`Change`]s
//! it makes — file, action, old line, new line. With `dry_run` nothing is written and the list
//! is the plan. Fixers only ever run on our own converted outputs (or on a throw-away overlay
//! for a dry run), never on a source.

mod bootloader;
pub(crate) mod configure;
mod fstab;
mod initramfs;
mod inject;
mod network;
mod tools;

use std::path::Path;

pub(crate) use super::{FixOptions, FstabMode, InitramfsMethod};
use crate::error::{Error, ErrorKind, Result};
use crate::guest::inspect::{Inspection, OsType};
use crate::guest::{Action, Change, Guest};

/// Shared by the fixers: the guest, the options and the log of changes.
pub(crate) struct Fixer<'a> {
    pub g: &'a Guest,
    pub insp: &'a Inspection,
    pub opts: &'a FixOptions,
    pub changes: Vec<Change>,
}

impl Fixer<'_> {
    /// Rewrites `path` line by line with `edit` (which returns the new line, or `None` to keep
    /// it, or `Some("")`-free removal via [`LineEdit::Delete`]); records every changed line.
    pub fn edit_lines(
        &mut self,
        fixer: &'static str,
        path: &str,
        mut edit: impl FnMut(&str) -> LineEdit,
    ) -> Result<bool> {
        let Some(text) = self.g.read_text(path)? else { return Ok(false) };
        let mut out = String::with_capacity(text.len());
        let mut changed = false;
        for line in text.split_inclusive('\n') {
            let body = line.strip_suffix('\n').unwrap_or(line);
            match edit(body) {
                LineEdit::Keep => out.push_str(line),
                LineEdit::Replace(new) => {
                    changed = true;
                    self.changes.push(
                        Change::new(fixer, Action::Edit, path)
                            .lines(Some(body.into()), Some(new.clone())),
                    );
                    out.push_str(&new);
                    if line.ends_with('\n') {
                        out.push('\n');
                    }
                }
                LineEdit::Delete => {
                    changed = true;
                    self.changes.push(
                        Change::new(fixer, Action::Edit, path).lines(Some(body.into()), None),
                    );
                }
            }
        }
        if changed && !self.opts.dry_run {
            if self.opts.backup {
                self.backup(fixer, path);
            }
            self.g.write(path, out.as_bytes())?;
        }
        Ok(changed)
    }

    /// Keeps `PATH.hyper2kvm.bak` before a change: a symbolic link is copied as a link (never
    /// followed: an absolute link points into the guest, not the appliance), a regular file
    /// by content, anything else is skipped. A backup that cannot be made is recorded as a
    /// skip and never fails the job.
    pub fn backup(&mut self, fixer: &'static str, path: &str) {
        let bak = format!("{path}.hyper2kvm.bak");
        let h = self.g.handle();
        let made = if h.is_symlink(path).unwrap_or(false) {
            h.readlink(path)
                .and_then(|target| {
                    let _ = h.rm_f(&bak);
                    h.ln_s(&target, &bak)
                })
                .map_err(|e| crate::guest::gerr("copying the link", e).message().to_string())
        } else if h
            .is_file(path, guestfs::IsFileOptArgs { followsymlinks: Some(false) })
            .unwrap_or(false)
        {
            self.g
                .read(path)
                .and_then(|b| self.g.write(&bak, &b.unwrap_or_default()))
                .map_err(|e| e.message().to_string())
        } else {
            Err("not a regular file or a symbolic link".to_string())
        };
        if let Err(why) = made {
            self.skip(fixer, &bak, &format!("no backup of {path}: {why}"));
        }
    }

    /// Creates (or replaces) a file.
    pub fn create(&mut self, fixer: &'static str, path: &str, content: &str) -> Result<()> {
        let old = self.g.read_text(path)?;
        if old.as_deref() == Some(content) {
            return Ok(());
        }
        self.changes
            .push(Change::new(fixer, Action::Create, path).lines(old, Some(content.into())));
        if !self.opts.dry_run {
            self.g.write(path, content.as_bytes())?;
        }
        Ok(())
    }

    /// Deletes a file or symbolic link.
    pub fn delete(&mut self, fixer: &'static str, path: &str) -> Result<()> {
        let old = if self.g.handle().is_symlink(path).unwrap_or(false) {
            self.g.handle().readlink(path).ok().map(|t| format!("-> {t}"))
        } else {
            self.g.read_text(path)?
        };
        self.changes.push(Change::new(fixer, Action::Delete, path).lines(old, None));
        if !self.opts.dry_run {
            if self.opts.backup {
                self.backup(fixer, path);
            }
            self.g
                .handle()
                .rm_f(path)
                .map_err(|e| crate::guest::gerr(&format!("deleting {path}"), e))?;
        }
        Ok(())
    }

    /// Runs a guest program (recorded; skipped in a dry run).
    pub fn run(&mut self, fixer: &'static str, argv: &[&str]) -> Result<()> {
        self.changes.push(Change::new(fixer, Action::Run, argv.join(" ")));
        if !self.opts.dry_run {
            self.g.command(argv)?;
        }
        Ok(())
    }

    /// Records a decision not to act.
    pub fn skip(&mut self, fixer: &'static str, what: &str, why: &str) {
        self.changes.push(Change::new(fixer, Action::Skip, what).lines(None, Some(why.into())));
    }
}

/// What an editor does with one line.
pub(crate) enum LineEdit {
    Keep,
    Replace(String),
    Delete,
}

/// Applies (or plans) every Linux fix; returns the changes in order. `scratch` is a host
/// directory for files read out of the guest (the output directory).
pub fn fix_linux(
    g: &Guest,
    insp: &Inspection,
    opts: &FixOptions,
    scratch: &Path,
) -> Result<Vec<Change>> {
    if insp.os_type != OsType::Linux {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("no fixes for {} guests yet", insp.os_type),
        ));
    }
    let mut f = Fixer { g, insp, opts, changes: Vec::new() };
    fstab::fix(&mut f)?;
    if opts.update_grub {
        bootloader::fix(&mut f)?;
    }
    network::fix(&mut f)?;
    if opts.remove_vmware_tools {
        tools::fix(&mut f)?;
    }
    tools::enable_guest_agent(&mut f)?;
    if !opts.configuration.is_empty() {
        configure::apply(&mut f, &opts.configuration)?;
    }
    // Last: the initramfs must be built from the fixed fstab/resume configuration.
    if opts.regen_initramfs {
        initramfs::fix(&mut f, scratch)?;
    }
    if insp.selinux.as_deref() == Some("enforcing") {
        f.create("selinux", "/.autorelabel", "")?;
    }
    Ok(f.changes)
}
