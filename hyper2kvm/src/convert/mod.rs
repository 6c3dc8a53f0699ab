//! Converting any probed input (disk image, OVA, OVF) into qcow2 or raw files.
//!
//! Every output is written under a hidden temporary name in the output directory and renamed
//! into place only when all disks of the input are complete, so a file under its final name is
//! always whole. Nothing is written outside the output directory; sources are only read.

mod execute;
mod guest;
mod plan;
mod staging;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

pub(crate) use self::execute::{Executed, Execution, execute};
pub use self::guest::FstabBeforeAfter;
pub(crate) use self::plan::{ExpectedChecksum, PlannedDisk, disk_file_name, output_files};
pub(crate) use self::staging::Staging;
use crate::appliance;
use crate::bootchain::Verdict;
use crate::error::{Error, ErrorKind, Result};
use crate::fix::{Change, FixOptions};
use crate::guest::GuestOptions;
use crate::guest::inspect::Inspection;
use crate::image::ImageFormat;
use crate::kubevirt::KubeVirtOptions;
use crate::libvirt::{Domain, DomainOptions, VmDescription};
use crate::probe::{ProbeOptions, Probed, probe};
use crate::progress::{CancelToken, Progress};
use crate::qemu_img::CheckReport;
use crate::validate::{BootTestOptions, BootTestResult};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetFormat {
    /// qcow2 v3.
    Qcow2,
    /// Sparse raw.
    Raw,
}

impl TargetFormat {
    pub(crate) fn image_format(self) -> ImageFormat {
        match self {
            TargetFormat::Qcow2 => ImageFormat::Qcow2,
            TargetFormat::Raw => ImageFormat::Raw,
        }
    }

    /// The file extension (and qemu-img format name): `qcow2` or `raw`.
    pub fn extension(self) -> &'static str {
        match self {
            TargetFormat::Qcow2 => "qcow2",
            TargetFormat::Raw => "raw",
        }
    }
}

impl std::str::FromStr for TargetFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<TargetFormat> {
        match s {
            "qcow2" => Ok(TargetFormat::Qcow2),
            "raw" => Ok(TargetFormat::Raw),
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("output format must be qcow2 or raw, not {s:?}"),
            )),
        }
    }
}

/// Options of [`convert`].
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Output format.
    pub format: TargetFormat,
    /// qcow2 compression level 1–9, or none.
    pub compress: Option<u8>,
    /// Replace existing outputs instead of failing.
    pub overwrite: bool,
    /// Base name for the outputs (default: the VM name or the input's file stem).
    pub name: Option<String>,
    /// Probing options.
    pub probe: ProbeOptions,
    /// Parallel coroutines for qemu-img.
    pub coroutines: u8,
    /// Inspect and fix the guest on the outputs (`None`: convert only).
    pub fix: Option<FixOptions>,
    /// How to run the libguestfs appliance.
    pub guest: GuestOptions,
    /// Write `NAME.xml` (a libvirt domain) beside the disks (`None`: no domain).
    pub domain: Option<DomainOptions>,
    /// `qemu-img check` every output before it is renamed into place.
    pub check: bool,
    /// Boot the converted guest before renaming it into place (`None`: no boot test).
    pub boot_test: Option<BootTestOptions>,
    /// Keep `/etc/fstab` as it was before and after the fixes.
    pub print_fstab: bool,
    /// Compute each output's SHA-256 ([`ConvertOutput::sha256`]) while it is flushed to disk.
    pub hash_outputs: bool,
    /// Also write `NAME.kubevirt.yaml` (`--target kubevirt`): the domain as a KubeVirt
    /// `VirtualMachine` and its disks' CDI `DataVolume`s. Needs `domain`.
    pub kubevirt: Option<KubeVirtOptions>,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            format: TargetFormat::Qcow2,
            compress: None,
            overwrite: false,
            name: None,
            probe: ProbeOptions::default(),
            coroutines: 8,
            fix: Some(FixOptions::default()),
            guest: GuestOptions::default(),
            domain: Some(DomainOptions::default()),
            check: true,
            boot_test: None,
            print_fstab: false,
            hash_outputs: false,
            kubevirt: None,
        }
    }
}

/// One written disk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConvertOutput {
    /// The OVF disk id, for appliances.
    pub disk_id: Option<String>,
    /// Where the data came from.
    pub source: PathBuf,
    /// The file written.
    pub path: PathBuf,
    /// Its format.
    pub format: TargetFormat,
    /// Guest-visible size.
    pub virtual_size: u64,
    /// Size of the output file.
    pub bytes: u64,
    /// Its SHA-256 (lowercase hex), when [`ConvertOptions::hash_outputs`] asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// What [`convert`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConvertReport {
    /// The probed input.
    pub input: Probed,
    /// The files written, boot disk first.
    pub outputs: Vec<ConvertOutput>,
    /// Wall time in seconds.
    pub duration_seconds: f64,
    /// What inspection of the converted guest found (absent with fixes off or no OS).
    pub guest: Option<Inspection>,
    /// Every change made inside the guest.
    pub changes: Vec<Change>,
    /// Things worth knowing that did not stop the conversion.
    pub warnings: Vec<String>,
    /// The libvirt domain written beside the disks.
    pub domain: Option<DomainReport>,
    /// `qemu-img check` of each output, in output order.
    pub checks: Vec<CheckReport>,
    /// The boot test, when one ran.
    pub boot_test: Option<BootTestResult>,
    /// The boot-chain verifier's answer on the converted guest (Linux guests, fixes on).
    pub boot_verdict: Option<Verdict>,
}

/// The domain written by [`convert`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainReport {
    /// `OUTDIR/NAME.xml`.
    pub xml: PathBuf,
    /// `OUTDIR/NAME_VARS.fd` for UEFI guests.
    pub nvram: Option<PathBuf>,
    /// `OUTDIR/NAME.kubevirt.yaml`, with `--target kubevirt`.
    pub kubevirt: Option<PathBuf>,
    /// What it describes.
    pub domain: Domain,
}

/// Converts `input` into `out_dir` (created if missing). Progress reports cover all disks.
pub fn convert(
    input: &Path,
    out_dir: &Path,
    opts: &ConvertOptions,
    progress: &mut dyn FnMut(&Progress),
    cancel: &CancelToken,
) -> Result<ConvertReport> {
    let started = Instant::now();
    if let Some(level) = opts.compress
        && !(1..=9).contains(&level)
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("compression level must be 1-9, not {level}"),
        ));
    }
    if opts.compress.is_some() && opts.format != TargetFormat::Qcow2 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "compression needs the qcow2 output format",
        ));
    }
    if let Some(fix) = &opts.fix {
        let problems = fix.configuration.problems();
        if !problems.is_empty() {
            return Err(Error::new(ErrorKind::InvalidInput, problems.join("; ")));
        }
    }
    let mut probed = probe(input, &opts.probe)?;
    std::fs::create_dir_all(out_dir)
        .map_err(|e| Error::io(out_dir, "cannot create output directory", e))?;
    let mut staging = Staging::default();
    if let Probed::Appliance(a) = &probed
        && appliance::needs_unpacking(a)
    {
        // A compressed archive or member cannot be read in place; unpack it once inside the
        // output directory, and remove it whatever happens.
        let work = out_dir.join(format!(".hyper2kvm-extract-{}", std::process::id()));
        std::fs::create_dir(&work)
            .map_err(|e| Error::io(&work, "cannot create work directory", e))?;
        staging.track_dir(work.clone());
        let mut extracted = appliance::extract_appliance(input, &work, &opts.probe)?;
        extracted.warnings.retain(|w| !w.ends_with(appliance::NOT_IN_PLACE));
        probed = Probed::Appliance(extracted);
    }
    let disks = plan::plan_disks(&probed, input, out_dir, opts)?;
    let origin = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let desc = match &probed {
        Probed::Appliance(a) => VmDescription::from_descriptor(&a.ovf, &origin),
        Probed::Disk(_) => VmDescription { origin, ..VmDescription::default() },
    };
    let x = Execution { disks: &disks, out_dir, opts, parallel: 1, cancel };
    let done = execute(&x, desc, progress, &mut staging).map_err(|e| e.with_path(input))?;
    staging.finish()?;
    Ok(ConvertReport {
        input: probed,
        outputs: done.outputs,
        duration_seconds: started.elapsed().as_secs_f64(),
        guest: done.guest,
        changes: done.changes,
        warnings: done.warnings,
        domain: done.domain,
        checks: done.checks,
        boot_test: done.boot_test,
        boot_verdict: done.verdict,
    })
}
