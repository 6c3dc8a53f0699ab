//! Converting any probed input (disk image, OVA, OVF) into qcow2 or raw files.
//!
//! Every output is written under a hidden temporary name in the output directory and renamed
//! into place only when all disks of the input are complete, so a file under its final name is
//! always whole. Nothing is written outside the output directory; sources are only read.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Instant;

use serde::Serialize;

use crate::appliance;
use crate::bootchain::{self, Target, Verdict};
use crate::error::{Error, ErrorKind, Result};
use crate::fix::{Change, FixOptions, fix_linux};
use crate::formats::vhd;
use crate::guest::inspect::{Inspection, inspect};
use crate::guest::{Guest, GuestDisk, GuestOptions};
use crate::image::{DiskImage, ImageFormat};
use crate::libvirt::{
    Domain, DomainDisk, DomainOptions, Firmware, VmDescription, build_domain, domain_paths,
    write_domain,
};
use crate::pipeline::report::FstabBeforeAfter;
use crate::probe::{ProbeOptions, Probed, probe};
use crate::progress::{CancelToken, Progress};
use crate::qemu_img::{self, BlockSpec, CheckReport};
use crate::validate::{BootTestOptions, BootTestResult, boot_test};

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
    fn image_format(self) -> ImageFormat {
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
    /// What it describes.
    pub domain: Domain,
}

/// Replaces anything but `[A-Za-z0-9._-]` and strips leading dots, so a VM name from an OVF
/// can only ever name a plain file inside the output directory.
pub fn safe_file_stem(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .take(120)
        .collect();
    while s.starts_with('.') {
        s.remove(0);
    }
    if s.is_empty() { "disk".into() } else { s }
}

/// Removes its files and directory unless disarmed; keeps failures from leaving litter.
#[derive(Default)]
pub(crate) struct Cleanup {
    pub files: Vec<PathBuf>,
    pub dir: Option<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// One disk to convert: its source image and its final and temporary output paths.
pub(crate) struct Job {
    pub disk_id: Option<String>,
    pub image: DiskImage,
    pub final_path: PathBuf,
    pub temp_path: PathBuf,
}

impl Job {
    /// `out_dir/file`, written first as `out_dir/.file.hyper2kvm-part`.
    pub fn new(disk_id: Option<String>, image: DiskImage, out_dir: &Path, file: String) -> Job {
        Job {
            disk_id,
            image,
            temp_path: out_dir.join(format!(".{file}.hyper2kvm-part")),
            final_path: out_dir.join(file),
        }
    }
}

fn plan(
    input: &Probed,
    input_path: &Path,
    out_dir: &Path,
    opts: &ConvertOptions,
) -> Result<Vec<Job>> {
    let ext = opts.format.extension();
    let stem = |default: &str| safe_file_stem(opts.name.as_deref().unwrap_or(default));
    let make = |disk_id: Option<String>, image: DiskImage, file: String| {
        Job::new(disk_id, image, out_dir, file)
    };
    let jobs = match input {
        Probed::Disk(d) => {
            let default = input_path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            vec![make(None, d.clone(), format!("{}.{ext}", stem(&default)))]
        }
        Probed::Appliance(a) => {
            let base = stem(&a.ovf.name);
            let mut jobs = Vec::new();
            for (i, d) in a.disks.iter().enumerate() {
                let Some(image) = &d.image else {
                    return Err(Error::unsupported(
                        &a.path,
                        format!("disk {:?} has no backing file (blank disk)", d.disk_id),
                    ));
                };
                let file = if i == 0 {
                    format!("{base}.{ext}")
                } else {
                    format!("{base}-{}.{ext}", safe_file_stem(&d.disk_id))
                };
                jobs.push(make(Some(d.disk_id.clone()), image.clone(), file));
            }
            if jobs.is_empty() {
                return Err(Error::invalid(&a.path, "the OVF describes no disks"));
            }
            jobs
        }
    };
    if opts.domain.is_some()
        && let Some(stem) = jobs.first().and_then(|j| j.final_path.file_stem())
    {
        let (xml, _) = domain_paths(out_dir, &stem.to_string_lossy());
        if xml.exists() && !opts.overwrite {
            return Err(Error::invalid(
                &xml,
                "output already exists (use --overwrite to replace it)",
            ));
        }
    }
    for j in &jobs {
        let clash = j.image.all_files().iter().any(|f| same_file(f, &j.final_path))
            || same_file(input_path, &j.final_path);
        if clash {
            return Err(Error::invalid(&j.final_path, "output would overwrite the input"));
        }
        if j.final_path.exists() && !opts.overwrite {
            return Err(Error::invalid(
                &j.final_path,
                "output already exists (use --overwrite to replace it)",
            ));
        }
    }
    Ok(jobs)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn sync_file(path: &Path) -> Result<u64> {
    let f = File::open(path).map_err(|e| Error::io(path, "cannot reopen output", e))?;
    f.sync_all().map_err(|e| Error::io(path, "cannot flush output", e))?;
    Ok(f.metadata().map_err(|e| Error::io(path, "cannot stat output", e))?.len())
}

/// What inspecting and fixing the outputs gave.
#[derive(Default)]
struct FixOutcome {
    guest: Option<Inspection>,
    changes: Vec<Change>,
    warnings: Vec<String>,
    fstab: Option<FstabBeforeAfter>,
    /// For a Windows guest: the disk bus and NIC model it has drivers for.
    devices: Option<(crate::libvirt::DiskBus, crate::libvirt::NicModel)>,
    /// The boot-chain verifier's answer on the fixed guest.
    verdict: Option<Verdict>,
    /// The MACs the guest's network configuration names, for a source that names none.
    guest_macs: Vec<String>,
}

/// What the boot-chain verifier checks against for the domain's disk bus.
pub(crate) fn boot_target(bus: crate::libvirt::DiskBus, macs: Vec<String>) -> Target {
    match bus {
        crate::libvirt::DiskBus::VirtioBlk => Target::virtio_blk(macs),
        crate::libvirt::DiskBus::VirtioScsi => Target::virtio_scsi(macs),
        crate::libvirt::DiskBus::Sata => Target::sata(macs),
    }
}

/// Inspects and fixes the guest on our converted (not yet renamed) outputs, then verifies its
/// boot chain; `disk_bus` is the bus the domain will use (a Windows guest gets the driver for
/// it) and `source_macs` the NICs' MACs the source named (the guest's own are used when it
/// named none). A Linux guest that would not boot after the fixes fails here.
fn fix_outputs(
    disks: &[GuestDisk],
    scratch: &Path,
    fix: &FixOptions,
    guest_opts: &GuestOptions,
    print_fstab: bool,
    disk_bus: crate::libvirt::DiskBus,
    source_macs: &[String],
) -> Result<FixOutcome> {
    let g = Guest::open(disks, &GuestOptions { writable: !fix.dry_run, ..guest_opts.clone() })?;
    let result = (|| {
        let locked = crate::windows::inspect::bitlocker_volumes(&g);
        if !locked.is_empty() {
            let why = crate::windows::inspect::bitlocker_refusal();
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("{}: {why}", locked.join(", ")),
            ));
        }
        let Some(insp) = inspect(&g, scratch)? else {
            let w = "no operating system found on the disks: converted without fixes".to_string();
            return Ok(FixOutcome { warnings: vec![w], ..FixOutcome::default() });
        };
        if let Some(why) = insp.windows.as_ref().and_then(|w| w.refusal()) {
            return Err(Error::new(ErrorKind::Unsupported, why));
        }
        if insp.os_type == "windows" && insp.windows.is_some() {
            let src = crate::windows::fix::driver_source(fix, scratch)?;
            let opts = crate::windows::WindowsFixOptions::from_fix(fix, src.as_ref(), disk_bus);
            if fix.dry_run {
                let w = "fixes are off: the Windows guest was not given virtio drivers and may \
                         not boot from a virtio disk"
                    .to_string();
                return Ok(FixOutcome {
                    guest: Some(insp),
                    warnings: vec![w],
                    ..Default::default()
                });
            }
            let done = crate::windows::fix_windows(&g, &insp, &opts)?;
            return Ok(FixOutcome {
                guest: Some(insp),
                changes: done.changes,
                warnings: done.warnings,
                fstab: None,
                devices: Some((done.disk_bus, done.nic_model)),
                ..Default::default()
            });
        }
        if insp.os_type != "linux" {
            let w = format!("{} guests are converted without fixes for now", insp.os_type);
            return Ok(FixOutcome { guest: Some(insp), warnings: vec![w], ..Default::default() });
        }
        let before = if print_fstab { g.read_text("/etc/fstab")? } else { None };
        // Read before the fixers remove the MAC pinning.
        let macs = bootchain::target_macs(&g, source_macs)?;
        let changes = fix_linux(&g, &insp, fix, scratch)?;
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
    Ok(out)
}

/// Converts a chain that contains VHD differencing disks: the first layer qemu can read is
/// converted to raw at `merged`, each differencing layer's sectors are written over it from the
/// bottom up, and the result is converted to the target at `dst` (or renamed, for raw).
fn convert_vhd_chain(
    image: &DiskImage,
    merged: &Path,
    dst: &Path,
    opts: &qemu_img::ConvertOptions,
    progress: &mut dyn FnMut(f64),
    cancel: &CancelToken,
) -> Result<()> {
    let layers: Vec<&DiskImage> =
        image.chain().take_while(|d| vhd::is_differencing(&d.details)).collect();
    let base = image
        .chain()
        .nth(layers.len())
        .ok_or_else(|| Error::new(ErrorKind::Internal, "differencing chain without a base"))?;
    let raw =
        qemu_img::ConvertOptions { format: ImageFormat::Raw, compress_level: None, ..opts.clone() };
    qemu_img::convert(
        &BlockSpec::for_image(base)?,
        merged,
        &raw,
        &mut |f| progress(f * 0.5),
        cancel,
    )?;
    let out = std::fs::OpenOptions::new()
        .write(true)
        .open(merged)
        .map_err(|e| Error::io(merged, "cannot open merged image", e))?;
    out.set_len(image.virtual_size)
        .map_err(|e| Error::io(merged, "cannot size merged image", e))?;
    for layer in layers.iter().rev() {
        vhd::apply_differencing(layer, &out)?;
    }
    drop(out);
    if opts.format == ImageFormat::Raw {
        std::fs::rename(merged, dst).map_err(|e| Error::io(dst, "cannot rename", e))?;
        progress(1.0);
        return Ok(());
    }
    let result = qemu_img::convert(
        &BlockSpec::file(merged, ImageFormat::Raw),
        dst,
        opts,
        &mut |f| progress(0.5 + f * 0.5),
        cancel,
    );
    let _ = std::fs::remove_file(merged);
    result
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
    let mut cleanup = Cleanup { files: Vec::new(), dir: None };
    if let Probed::Appliance(a) = &probed
        && appliance::needs_unpacking(a)
    {
        // A compressed archive or member cannot be read in place; unpack it once inside the
        // output directory, and remove it whatever happens.
        let work = out_dir.join(format!(".hyper2kvm-extract-{}", std::process::id()));
        std::fs::create_dir(&work)
            .map_err(|e| Error::io(&work, "cannot create work directory", e))?;
        cleanup.dir = Some(work.clone());
        let mut extracted = appliance::extract_appliance(input, &work, &opts.probe)?;
        extracted.warnings.retain(|w| !w.ends_with(appliance::NOT_IN_PLACE));
        probed = Probed::Appliance(extracted);
    }
    let jobs = plan(&probed, input, out_dir, opts)?;
    let origin = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let desc = match &probed {
        Probed::Appliance(a) => VmDescription::from_descriptor(&a.ovf, &origin),
        Probed::Disk(_) => VmDescription { origin, ..VmDescription::default() },
    };
    let mut done = execute(&jobs, desc, out_dir, opts, 1, progress, cancel, &mut cleanup)
        .map_err(|e| e.with_path(input))?;
    done.publish(&mut cleanup)?;
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

/// What [`execute`] did.
pub(crate) struct Executed {
    pub outputs: Vec<ConvertOutput>,
    pub guest: Option<Inspection>,
    pub changes: Vec<Change>,
    pub warnings: Vec<String>,
    pub domain: Option<DomainReport>,
    pub checks: Vec<CheckReport>,
    pub boot_test: Option<BootTestResult>,
    pub fstab: Option<FstabBeforeAfter>,
    pub verdict: Option<Verdict>,
    /// The boot disk's (temporary, final) names until it is published.
    pub unpublished: Option<(PathBuf, PathBuf)>,
}

/// Converts one disk to its temporary output.
fn convert_one(
    j: &Job,
    qopts: &qemu_img::ConvertOptions,
    report: &mut dyn FnMut(f64),
    cancel: &CancelToken,
) -> Result<()> {
    let result = if j.image.chain().any(|d| vhd::is_differencing(&d.details)) {
        let merged = j.temp_path.with_extension("merge-part");
        convert_vhd_chain(&j.image, &merged, &j.temp_path, qopts, report, cancel)
    } else {
        let spec = BlockSpec::for_image(&j.image)?;
        qemu_img::convert(&spec, &j.temp_path, qopts, report, cancel)
    };
    result.map_err(|e| if e.path().is_none() { e.with_path(&j.image.path) } else { e })
}

/// Converts every disk to its temporary output, up to `parallel` at once; progress is
/// reported from this thread. The first failure (in disk order) is returned.
fn convert_all(
    jobs: &[Job],
    qopts: &qemu_img::ConvertOptions,
    parallel: usize,
    progress: &mut dyn FnMut(&Progress),
    cancel: &CancelToken,
) -> Result<()> {
    let total: u64 = jobs.iter().map(|j| j.image.virtual_size).sum();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<()>>>> = Mutex::new(jobs.iter().map(|_| None).collect());
    let (tx, rx) = mpsc::channel::<(usize, f64)>();
    std::thread::scope(|scope| {
        for _ in 0..parallel.clamp(1, jobs.len().max(1)) {
            let tx = tx.clone();
            let (next, results) = (&next, &results);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(j) = jobs.get(i) else { break };
                    let r = if cancel.is_cancelled() {
                        Err(Error::new(ErrorKind::Cancelled, "conversion cancelled"))
                    } else {
                        convert_one(
                            j,
                            qopts,
                            &mut |f| {
                                let _ = tx.send((i, f));
                            },
                            cancel,
                        )
                    };
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(r);
                    }
                }
            });
        }
        drop(tx);
        let mut fractions = vec![0.0f64; jobs.len()];
        for (i, f) in rx {
            fractions[i] = f;
            let done: f64 =
                jobs.iter().zip(&fractions).map(|(j, f)| f * j.image.virtual_size as f64).sum();
            let item = jobs[i]
                .final_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            progress(&Progress { stage: "convert".into(), item, done: done as u64, total });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| Error::new(ErrorKind::Internal, "a conversion thread panicked"))?;
    for r in results {
        r.unwrap_or_else(|| Err(Error::new(ErrorKind::Internal, "a disk was not converted")))?;
    }
    Ok(())
}

/// Converts, fixes, validates and renames the planned disks, then writes the domain. Used by
/// [`convert`] and the manifest pipeline.
#[allow(clippy::too_many_arguments)]
pub(crate) fn execute(
    jobs: &[Job],
    mut desc: VmDescription,
    out_dir: &Path,
    opts: &ConvertOptions,
    parallel: usize,
    progress: &mut dyn FnMut(&Progress),
    cancel: &CancelToken,
    cleanup: &mut Cleanup,
) -> Result<Executed> {
    let qopts = qemu_img::ConvertOptions {
        format: opts.format.image_format(),
        compress_level: opts.compress,
        coroutines: opts.coroutines,
        ..qemu_img::ConvertOptions::default()
    };
    for j in jobs {
        let _ = std::fs::remove_file(&j.temp_path);
        cleanup.files.push(j.temp_path.clone());
        cleanup.files.push(j.temp_path.with_extension("merge-part"));
    }
    if cancel.is_cancelled() {
        return Err(Error::new(ErrorKind::Cancelled, "conversion cancelled"));
    }
    convert_all(jobs, &qopts, parallel, progress, cancel)?;
    let (mut guest, mut changes, mut warnings) = (None, Vec::new(), Vec::new());
    let mut fstab = None;
    let mut devices = None;
    let mut verdict = None;
    if let Some(fix) = &opts.fix {
        if cancel.is_cancelled() {
            return Err(Error::new(ErrorKind::Cancelled, "conversion cancelled"));
        }
        let disks: Vec<GuestDisk> = jobs
            .iter()
            .map(|j| GuestDisk { path: j.temp_path.clone(), format: opts.format.image_format() })
            .collect();
        progress(&Progress { stage: "fix".into(), item: "guest".into(), done: 0, total: 1 });
        log::info!("converted; inspecting and fixing the guest");
        let bus = opts.domain.as_ref().map(|d| d.disk_bus).unwrap_or_default();
        let source_macs: Vec<String> = desc.nics.iter().filter_map(|n| n.mac.clone()).collect();
        let out =
            fix_outputs(&disks, out_dir, fix, &opts.guest, opts.print_fstab, bus, &source_macs)?;
        log::info!("guest fixed ({} changes)", out.changes.len());
        (guest, changes, warnings, fstab) = (out.guest, out.changes, out.warnings, out.fstab);
        devices = out.devices;
        verdict = out.verdict;
        if desc.nics.is_empty() && !desc.nics_declared {
            // The source said nothing about NICs: the domain's keep the MACs the guest's own
            // configuration is written for.
            desc.nics = out
                .guest_macs
                .into_iter()
                .map(|m| crate::libvirt::SourceNic { mac: Some(m), network: None })
                .collect();
        }
        progress(&Progress { stage: "fix".into(), item: "guest".into(), done: 1, total: 1 });
    }
    let mut checks = Vec::new();
    if opts.check {
        let n = jobs.len() as u64;
        progress(&Progress {
            stage: "validate".into(),
            item: "qemu-img check".into(),
            done: 0,
            total: n,
        });
        for j in jobs {
            let c = qemu_img::check(&j.temp_path, opts.format.image_format())
                .map_err(|e| e.with_path(&j.final_path))?;
            if c.corruptions > 0 || c.check_errors > 0 {
                return Err(Error::new(
                    ErrorKind::ToolFailed,
                    format!(
                        "qemu-img check found {} corruption(s) and {} error(s) in the output",
                        c.corruptions, c.check_errors
                    ),
                )
                .with_path(&j.final_path));
            }
            checks.push(c);
        }
        progress(&Progress {
            stage: "validate".into(),
            item: "qemu-img check".into(),
            done: n,
            total: n,
        });
    }
    let domain = match &opts.domain {
        Some(dopts) => {
            // A Windows guest gets only the devices it now has drivers for.
            let mut dopts = dopts.clone();
            if let Some((bus, nic)) = devices {
                dopts.disk_bus = bus;
                dopts.nic_model = nic;
            }
            warnings.extend(crate::libvirt::unmapped_networks(&desc, &dopts));
            Some(plan_domain(desc, out_dir, jobs, guest.as_ref(), opts, &dopts)?)
        }
        None => None,
    };
    let mut boot = None;
    if let (Some(bt), Some((d, _))) = (&opts.boot_test, &domain) {
        // Boot what is about to be renamed: the same domain on the temporary files.
        let mut on_temps = d.clone();
        for (disk, j) in on_temps.disks.iter_mut().zip(jobs) {
            disk.path = j.temp_path.clone();
        }
        progress(&Progress { stage: "boot-test".into(), item: d.name.clone(), done: 0, total: 1 });
        let r = boot_test(&on_temps, bt, out_dir, cancel)?;
        progress(&Progress { stage: "boot-test".into(), item: d.name.clone(), done: 1, total: 1 });
        if !r.passed {
            return Err(r.into_error(&jobs[0].final_path, &bt.marker, bt.timeout));
        }
        boot = Some(r);
    } else if opts.boot_test.is_some() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "a boot test needs the domain (not --no-domain)",
        ));
    }
    let mut outputs = Vec::new();
    for j in jobs {
        let bytes = sync_file(&j.temp_path)?;
        outputs.push(ConvertOutput {
            disk_id: j.disk_id.clone(),
            source: j.image.path.clone(),
            path: j.final_path.clone(),
            format: opts.format,
            virtual_size: j.image.virtual_size,
            bytes,
        });
    }
    // Every other file first; the boot disk, which HyperSDK takes as "done", last of all
    // (`publish`).
    for j in &jobs[1..] {
        std::fs::rename(&j.temp_path, &j.final_path)
            .map_err(|e| Error::io(&j.final_path, "cannot rename output into place", e))?;
    }
    cleanup.files.retain(|f| *f == jobs[0].temp_path);
    let domain = match domain {
        Some((d, xml)) => {
            write_domain(&d, &xml)?;
            let nvram = match &d.firmware {
                Firmware::Uefi(u) => Some(u.nvram.clone()),
                Firmware::Bios => None,
            };
            Some(DomainReport { xml, nvram, domain: d })
        }
        None => None,
    };
    Ok(Executed {
        outputs,
        guest,
        changes,
        warnings,
        domain,
        checks,
        boot_test: boot,
        fstab,
        verdict,
        unpublished: Some((jobs[0].temp_path.clone(), jobs[0].final_path.clone())),
    })
}

impl Executed {
    /// Where an output's data is now: its temporary name until [`publish`](Self::publish).
    pub fn current_path<'a>(&'a self, final_path: &'a Path) -> &'a Path {
        match &self.unpublished {
            Some((temp, fin)) if fin == final_path => temp,
            _ => final_path,
        }
    }

    /// Renames the boot disk into place: the very last step of a job, so that its appearing
    /// means everything else is there.
    pub fn publish(&mut self, cleanup: &mut Cleanup) -> Result<()> {
        if let Some((temp, fin)) = self.unpublished.take() {
            std::fs::rename(&temp, &fin)
                .map_err(|e| Error::io(&fin, "cannot rename output into place", e))?;
            cleanup.files.clear();
            if let Some(d) = fin.parent().and_then(|d| File::open(d).ok()) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

/// The domain for the outputs, and where its XML goes.
fn plan_domain(
    mut desc: VmDescription,
    out_dir: &Path,
    jobs: &[Job],
    guest: Option<&Inspection>,
    opts: &ConvertOptions,
    dopts: &DomainOptions,
) -> Result<(Domain, PathBuf)> {
    let out_abs = std::fs::canonicalize(out_dir).map_err(|e| Error::io(out_dir, "resolving", e))?;
    let name = jobs[0]
        .final_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "guest".into());
    desc.name = name.clone();
    let disks: Vec<DomainDisk> = jobs
        .iter()
        .map(|j| DomainDisk {
            path: out_abs.join(j.final_path.file_name().unwrap_or_default()),
            format: opts.format.extension().to_string(),
        })
        .collect();
    let (xml, nvram) = domain_paths(&out_abs, &name);
    let domain = build_domain(&desc, guest, &disks, nvram, dopts)?;
    Ok((domain, xml))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_cannot_escape() {
        assert_eq!(safe_file_stem("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_file_stem("..."), "disk");
        assert_eq!(safe_file_stem("web server 01"), "web_server_01");
    }
}
