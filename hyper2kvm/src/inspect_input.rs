//! `inspect` of any input: the guest on a probed disk image, OVA or OVF, read-only.
//!
//! The disks are attached through thin qcow2 overlays (in a private directory that is removed
//! afterwards) whose backing files are our own `json:` descriptions of the sources, so any
//! format we probe — a disk inside an OVA, a vmfsThin descriptor, a delta chain — is seen by
//! libguestfs exactly as qemu-img converts it, and nothing can write to a source.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::appliance::{self, Appliance, Container};
use crate::bootchain::{self, Target, Verdict};
use crate::error::{Error, ErrorKind, Result};
use crate::fix::{Change, FixOptions};
use crate::guest::inspect::{Inspection, OsType, inspect};
use crate::guest::{Guest, GuestDisk, GuestOptions};
use crate::image::{DiskImage, ImageFormat};
use crate::probe::{ProbeOptions, Probed, probe};
use crate::progress::CancelToken;
use crate::qemu_img;

/// The result of inspecting an input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectReport {
    /// What the input is.
    pub input: Probed,
    /// The operating system found, or `None` for disks without one.
    pub guest: Option<Inspection>,
    /// The changes the fixers would make (only for a dry run of a conversion).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planned_changes: Vec<Change>,
    /// What would be done that is not a file change (a Windows guest's drivers, or why it
    /// would be refused), for a dry run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plan_notes: Vec<String>,
    /// Will the guest boot on KVM (virtio-blk, the source's NICs) as it is? The boot-chain
    /// verifier on the source, read-only; Linux guests only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_verdict: Option<Verdict>,
}

/// Removes a directory when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The disks of a probed input, boot disk first.
pub fn disks_of(input: &Probed) -> Result<Vec<DiskImage>> {
    match input {
        Probed::Disk(d) => Ok(vec![d.clone()]),
        Probed::Appliance(a) => a
            .disks
            .iter()
            .map(|d| d.image.clone().ok_or_else(|| Error::unsupported(&a.path, format!("disk {:?} cannot be inspected in place (compressed archive or blank disk); convert it first", d.disk_id))))
            .collect(),
    }
}

/// Inspects the guest on `input` without writing to it.
pub fn inspect_input(
    input: &Path,
    probe_opts: &ProbeOptions,
    guest_opts: &GuestOptions,
) -> Result<InspectReport> {
    inspect_and_plan(input, probe_opts, guest_opts, None)
}

/// What a conversion of an appliance that must be unpacked first would do, without unpacking
/// it: one note per disk, and (with fixes) that the guest is inspected only once unpacked.
fn unpack_plan(a: &Appliance, fix: bool) -> Vec<String> {
    let mut notes: Vec<String> = a
        .disks
        .iter()
        .filter_map(|d| {
            let href = d.href.as_deref()?;
            let how = match (a.container, &d.image) {
                (_, Some(_)) => "is read in place from the archive",
                (Container::OvaGzip | Container::OvaXz, None) => {
                    "is unpacked with the rest of the compressed archive"
                }
                (_, None) => "is decompressed",
            };
            Some(format!(
                "disk {:?} ({href}, {} bytes) {how} into the output directory's scratch space, \
                 converted, and the unpacked copy removed",
                d.disk_id, d.capacity
            ))
        })
        .collect();
    if fix {
        notes.push(
            "the guest cannot be inspected before it is unpacked: its fixes are decided and \
             verified during the conversion"
                .into(),
        );
    }
    notes
}

/// The plan of a conversion for a dry run: [`inspect_and_plan`], except that an appliance
/// whose disks must be unpacked first (a compressed OVA, deflated or gzip-compressed disk
/// members) is planned from its descriptor without unpacking anything.
pub fn plan_conversion(
    input: &Path,
    probe_opts: &ProbeOptions,
    guest_opts: &GuestOptions,
    fix: Option<&FixOptions>,
) -> Result<InspectReport> {
    let probed = probe(input, probe_opts)?;
    if let Probed::Appliance(a) = &probed
        && appliance::needs_unpacking(a)
    {
        let plan_notes = unpack_plan(a, fix.is_some());
        return Ok(InspectReport {
            input: probed,
            guest: None,
            planned_changes: Vec::new(),
            plan_notes,
            boot_verdict: None,
        });
    }
    inspect_probed(probed, guest_opts, fix)
}

/// Inspects the guest on `input` and, with `fix`, lists what the fixers would change (they run
/// in dry-run mode on read-only overlays).
pub fn inspect_and_plan(
    input: &Path,
    probe_opts: &ProbeOptions,
    guest_opts: &GuestOptions,
    fix: Option<&FixOptions>,
) -> Result<InspectReport> {
    inspect_probed(probe(input, probe_opts)?, guest_opts, fix)
}

fn inspect_probed(
    probed: Probed,
    guest_opts: &GuestOptions,
    fix: Option<&FixOptions>,
) -> Result<InspectReport> {
    let disks = disks_of(&probed)?;
    let dir = std::env::temp_dir().join(format!(
        "hyper2kvm-inspect-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir(&dir)
        .map_err(|e| Error::io(&dir, "cannot create a scratch directory", e))?;
    let _cleanup = TempDir(dir.clone());
    let mut attached = Vec::new();
    for (i, d) in disks.iter().enumerate() {
        let overlay = dir.join(format!("disk{i}.qcow2"));
        let spec = d.block_spec().map_err(|e| {
            if e.kind() == ErrorKind::Unsupported { e.context("inspection") } else { e }
        })?;
        qemu_img::create_overlay(&overlay, &spec, d.virtual_size)?;
        attached.push(GuestDisk { path: overlay, format: ImageFormat::Qcow2 });
    }
    let opts = GuestOptions { writable: false, ..guest_opts.clone() };
    let g = Guest::open(&attached, &opts)?;
    let guest = inspect(&g, &dir)?;
    let boot_verdict = match &guest {
        Some(insp) if insp.os_type == OsType::Linux => {
            let source: Vec<String> = match &probed {
                Probed::Appliance(a) => a.ovf.nics.iter().filter_map(|n| n.mac.clone()).collect(),
                Probed::Disk(_) => Vec::new(),
            };
            let macs = bootchain::target_macs(&g, &source)?;
            Some(bootchain::verify(&g, insp, &Target::virtio_blk(macs), &dir)?)
        }
        _ => None,
    };
    let (planned_changes, plan_notes) = match (fix, &guest) {
        (Some(fix), Some(insp)) => crate::fix::plan(&g, insp, fix, &dir)?,
        _ => (Vec::new(), Vec::new()),
    };
    g.close()?;
    Ok(InspectReport { input: probed, guest, planned_changes, plan_notes, boot_verdict })
}

/// Inspects each input in turn (each one guest), with the default options; stops at the first
/// failure, or when `cancel` is set between inputs.
pub fn inspect_inputs(inputs: &[PathBuf], cancel: &CancelToken) -> Result<Vec<InspectReport>> {
    let mut out = Vec::with_capacity(inputs.len());
    for input in inputs {
        if cancel.is_cancelled() {
            return Err(Error::new(ErrorKind::Cancelled, "inspection cancelled"));
        }
        out.push(inspect_input(input, &ProbeOptions::default(), &GuestOptions::default())?);
    }
    Ok(out)
}
