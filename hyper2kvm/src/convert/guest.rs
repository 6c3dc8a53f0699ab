//! The inspect and fix stages of a conversion: the guest on the converted (not yet renamed)
//! outputs is inspected, fixed for KVM by its OS's fixer, and its boot chain verified.

use std::path::Path;

use serde::Serialize;

use crate::bootchain::{self, Target, Verdict};
use crate::error::{Error, ErrorKind, Result};
use crate::fix::{Change, FixOptions};
use crate::guest::inspect::{Inspection, OsType, inspect};
use crate::guest::{Guest, GuestDisk, GuestOptions};
use crate::libvirt::{DiskBus, NicModel};
use crate::progress::{Progress, Stage};

/// `print_fstab`'s record: `/etc/fstab` before and after the fixes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FstabBeforeAfter {
    /// Before the fixes.
    pub before: String,
    /// After them.
    pub after: String,
}

/// What inspecting and fixing the outputs gave.
#[derive(Debug, Default)]
pub(crate) struct FixOutcome {
    pub guest: Option<Inspection>,
    pub changes: Vec<Change>,
    pub warnings: Vec<String>,
    pub fstab: Option<FstabBeforeAfter>,
    /// For a Windows guest: the disk bus and NIC model it has drivers for.
    pub devices: Option<(DiskBus, NicModel)>,
    /// The boot-chain verifier's answer on the fixed guest.
    pub verdict: Option<Verdict>,
    /// The MACs the guest's network configuration names, for a source that names none.
    pub guest_macs: Vec<String>,
}

/// What [`fix_outputs`] works on and with.
pub(crate) struct FixRequest<'a> {
    /// The converted disks, boot disk first.
    pub disks: &'a [GuestDisk],
    /// Where scratch files go (the output directory).
    pub scratch: &'a Path,
    /// What to fix (`dry_run`: inspect and verify only).
    pub fix: &'a FixOptions,
    /// How to run the appliance.
    pub guest: &'a GuestOptions,
    /// Keep `/etc/fstab` before and after.
    pub print_fstab: bool,
    /// The bus the domain will use (a Windows guest gets the driver for it).
    pub disk_bus: DiskBus,
    /// The NICs' MACs the source named (the guest's own are used when it named none).
    pub source_macs: &'a [String],
}

/// What the boot-chain verifier checks against for the domain's disk bus.
fn boot_target(bus: DiskBus, macs: Vec<String>) -> Target {
    match bus {
        DiskBus::VirtioBlk => Target::virtio_blk(macs),
        DiskBus::VirtioScsi => Target::virtio_scsi(macs),
        DiskBus::Sata => Target::sata(macs),
    }
}

fn stage(progress: &mut dyn FnMut(&Progress), stage: Stage, done: u64) {
    progress(&Progress { stage, item: "guest".into(), done, total: 1 });
}

/// Inspects (stage [`Stage::Inspect`]) and fixes (stage [`Stage::Fix`], unless the fixes are
/// a dry run) the guest, then verifies its boot chain. A Linux guest that would not boot after
/// the fixes fails here.
pub(crate) fn fix_outputs(
    req: &FixRequest<'_>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<FixOutcome> {
    let (fix, scratch, disk_bus, source_macs) =
        (req.fix, req.scratch, req.disk_bus, req.source_macs);
    stage(progress, Stage::Inspect, 0);
    let g = Guest::open(req.disks, &GuestOptions { writable: !fix.dry_run, ..req.guest.clone() })?;
    let result = (|| {
        let locked = crate::guest::windows::bitlocker_volumes(&g);
        if !locked.is_empty() {
            let why = crate::guest::windows::bitlocker_refusal();
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("{}: {why}", locked.join(", ")),
            ));
        }
        let inspected = inspect(&g, scratch)?;
        stage(progress, Stage::Inspect, 1);
        if !fix.dry_run {
            stage(progress, Stage::Fix, 0);
        }
        let Some(insp) = inspected else {
            let w = "no operating system found on the disks: converted without fixes".to_string();
            return Ok(FixOutcome { warnings: vec![w], ..FixOutcome::default() });
        };
        if let Some(why) = insp.windows.as_ref().and_then(|w| w.refusal()) {
            return Err(Error::new(ErrorKind::Unsupported, why));
        }
        let linux = insp.os_type == OsType::Linux;
        let before = if linux && req.print_fstab { g.read_text("/etc/fstab")? } else { None };
        // Read before the fixers remove the MAC pinning.
        let macs = if linux { bootchain::target_macs(&g, source_macs)? } else { Vec::new() };
        let fixed = crate::fix::apply(&g, &insp, fix, scratch, disk_bus)?;
        if !fix.dry_run && fix.trim {
            let trimmed = g.trim();
            tracing::info!("discarded the free blocks of {}", trimmed.join(", "));
        }
        if !linux {
            return Ok(FixOutcome {
                guest: Some(insp),
                changes: fixed.changes,
                warnings: fixed.warnings,
                devices: fixed.devices,
                ..Default::default()
            });
        }
        let changes = fixed.changes;
        let fstab = match before {
            Some(before) => {
                let after = g.read_text("/etc/fstab")?.unwrap_or_default();
                Some(FstabBeforeAfter { before, after })
            }
            None => None,
        };
        let guest_macs = if source_macs.is_empty() { macs.clone() } else { Vec::new() };
        let verdict = bootchain::verify(&g, &insp, &boot_target(disk_bus, macs), scratch)?;
        let mut warnings = Vec::new();
        if !verdict.will_boot {
            if !fix.dry_run {
                return Err(verdict.into_error());
            }
            // Fixes were turned off: the guest is converted as it is, and said not to boot.
            warnings.push(format!(
                "fixes are off and the converted guest will not boot on KVM: {}",
                verdict.line()
            ));
        }
        Ok(FixOutcome {
            guest: Some(insp),
            changes,
            fstab,
            warnings,
            verdict: Some(verdict),
            guest_macs,
            ..Default::default()
        })
    })();
    let closed = g.close();
    let out = result?;
    closed?;
    if !fix.dry_run {
        stage(progress, Stage::Fix, 1);
    }
    Ok(out)
}
