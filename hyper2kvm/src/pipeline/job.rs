//! [`Job`]: one manifest run through the stages, with typed events, cancellation and a
//! timeout. The daemon, the C ABI and the Python module call this.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::report::{Artifact, GuestSummary, Report, StageStatus};
use super::stages::{Event, StageClock};
use super::verify::verify_checksums;
use crate::appliance::manifest::{Algorithm, digest_reader};
use crate::convert::{
    ConvertOptions, Executed, Execution, ExpectedChecksum, PlannedDisk, Staging, TargetFormat,
    disk_file_name, execute, output_files,
};
use crate::error::{Error, ErrorKind, Result};
use crate::fix::FixOptions;
use crate::formats::vhd;
use crate::guest::GuestOptions;
use crate::inspect_input::{InspectReport, inspect_and_plan};
use crate::io::{confined, in_threads, safe_file_stem, write_json};
use crate::kubevirt::KubeVirtOptions;
use crate::libvirt::DomainOptions;
use crate::manifest::LoadedManifest;
use crate::manifest::schema::ManifestDisk;
use crate::probe::{ProbeOptions, Probed, probe};
use crate::progress::{CancelToken, Progress, Stage};
use crate::validate::BootTestOptions;

/// Why the verify stage has no time of its own when the checksums are checked in the
/// conversion's read.
pub const FUSED_VERIFY: &str = "verified in the convert stage's own read of each source (one \
    pass): a mismatch fails the convert stage before anything is inspected or published";

/// How a job runs (the manifest says what to do; these say how).
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// The job's id in logs (the `job` span's `job_id`): a batch VM's id, the daemon's job
    /// id; by default the manifest's file name.
    pub id: Option<String>,
    /// Disks converted (and checksummed) at once.
    pub parallel: usize,
    /// Cancel the job after this long.
    pub timeout: Option<Duration>,
    /// The output directory instead of the manifest's (the daemon's `OUTPUT_DIR`).
    pub output_dir: Option<PathBuf>,
    /// The libguestfs appliance.
    pub guest: GuestOptions,
    /// The libvirt domain written with the disks (`None`: none).
    pub domain: Option<DomainOptions>,
    /// Boot the converted guest in the validate stage.
    pub boot_test: Option<BootTestOptions>,
    /// What applies where the manifest is silent.
    pub defaults: ConvertDefaults,
    /// The report's file name in the output directory, instead of `options.report.path` (the
    /// daemon's `{vm_name}.report.json`, contract section 3).
    pub report_file: Option<String>,
    /// The virtio-win drivers for Windows guests (else `VIRTIO_WIN`, else the defaults of
    /// [`crate::fix::windows::DriverSource::locate`]).
    pub virtio_win: Option<PathBuf>,
    /// Convert Windows guests without virtio drivers (SATA, e1000) instead of refusing.
    pub allow_no_virtio: bool,
    /// Discard the guest's free blocks in the outputs ([`FixOptions::trim`]).
    pub trim: bool,
}

/// What a runner supplies where the manifest is silent: the daemon's `QEMU_CONVERT_OPTIONS`
/// and `COMPRESS_LEVEL`; direct mode keeps [`Default`] (qcow2, no compression, level 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertDefaults {
    /// Without `output.format`.
    pub format: TargetFormat,
    /// Without `pipeline.convert.compress`.
    pub compress: bool,
    /// Without `pipeline.convert.compress_level`.
    pub compress_level: u8,
    /// qemu-img's parallel coroutines (`-m`).
    pub coroutines: u8,
    /// Without `output.target`: the KubeVirt target too (`OUTPUT_TARGET=kubevirt`), or not.
    pub kubevirt: Option<KubeVirtOptions>,
}

impl Default for ConvertDefaults {
    fn default() -> Self {
        ConvertDefaults {
            format: TargetFormat::Qcow2,
            compress: false,
            compress_level: 6,
            coroutines: ConvertOptions::default().coroutines,
            kubevirt: None,
        }
    }
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            id: None,
            parallel: 4,
            timeout: None,
            output_dir: None,
            guest: GuestOptions::default(),
            domain: Some(DomainOptions::default()),
            boot_test: None,
            defaults: ConvertDefaults::default(),
            report_file: None,
            virtio_win: None,
            allow_no_virtio: false,
            trim: true,
        }
    }
}

/// What a finished job produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobOutcome {
    /// The report (also written to `report_path`).
    pub report: Report,
    /// Where the report was written, when it was.
    pub report_path: Option<PathBuf>,
}

/// What a dry run of a job would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The files it would write, in order.
    pub outputs: Vec<PathBuf>,
    /// Unknown fields and the like.
    pub warnings: Vec<String>,
    /// The boot disk inspected read-only, with the changes the fixes would make (absent when
    /// `pipeline.inspect` is off).
    pub inspection: Option<InspectReport>,
}

/// One manifest's job.
#[derive(Debug)]
pub struct Job {
    manifest: LoadedManifest,
    opts: JobOptions,
    cancel: CancelToken,
}

/// Disk order, boot disk first (contract §1, as HyperSDK's writer really writes manifests):
/// the boot disk is the one disk whose `disk_type` is `boot`; when none is, or several are, it
/// is the lowest `boot_order_hint` among them (among all disks when none is), where a missing
/// hint counts as 0 for the first disk and as its position for the others (HyperSDK's
/// `omitempty` drops the boot disk's hint 0); ties go to array order. The other disks follow
/// in the same hint order.
pub fn boot_order(disks: &[ManifestDisk]) -> Vec<usize> {
    let hint = |i: usize| disks[i].boot_order_hint.unwrap_or(i as i64);
    let by_hint = |mut v: Vec<usize>| {
        v.sort_by_key(|&i| (hint(i), i));
        v
    };
    let typed: Vec<usize> =
        (0..disks.len()).filter(|&i| disks[i].disk_type.as_deref() == Some("boot")).collect();
    let candidates = if typed.is_empty() { (0..disks.len()).collect() } else { typed };
    let Some(&boot) = by_hint(candidates).first() else { return Vec::new() };
    let rest = by_hint((0..disks.len()).filter(|&i| i != boot).collect());
    std::iter::once(boot).chain(rest).collect()
}

fn sha256_file(path: &Path) -> Result<String> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, "reading", e))?;
    digest_reader(f, Algorithm::Sha256).map_err(|e| Error::io(path, "reading", e))
}

impl Job {
    /// Loads and checks a manifest (every violation in the one error).
    pub fn load(path: &Path, opts: JobOptions) -> Result<Job> {
        Ok(Job::new(LoadedManifest::load(path)?, opts, CancelToken::new()))
    }

    /// A job over an already loaded manifest, cancelled by `cancel` (give it a
    /// [`child`](CancelToken::child) of a batch's token so that its timeout stops only it).
    pub fn new(manifest: LoadedManifest, opts: JobOptions, cancel: CancelToken) -> Job {
        Job { manifest, opts, cancel }
    }

    /// The loaded manifest.
    pub fn manifest(&self) -> &LoadedManifest {
        &self.manifest
    }

    /// A token that cancels this job from any thread.
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// Where outputs go: the option, else `output.directory` (relative to the manifest), else
    /// `<manifest dir>/output`.
    /// The path is absolute (from the current directory when the manifest's was relative):
    /// every path in the report and on an `Output:` line is.
    pub fn output_dir(&self) -> PathBuf {
        if let Some(d) = &self.opts.output_dir {
            return super::absolute(d);
        }
        super::absolute(&match &self.manifest.manifest.output.directory {
            Some(d) => self.manifest.dir.join(d),
            None => self.manifest.dir.join("output"),
        })
    }

    /// The files the job will write, in order (disks by boot order, domain, the UEFI
    /// variable store when the manifest says UEFI, report).
    pub fn planned_outputs(&self) -> Result<Vec<PathBuf>> {
        let uefi = self.manifest.manifest.vm_description("").uefi == Some(true);
        self.outputs_for(uefi)
    }

    /// [`planned_outputs`](Self::planned_outputs) for a guest with (`uefi`) or without a
    /// variable store.
    fn outputs_for(&self, uefi: bool) -> Result<Vec<PathBuf>> {
        let m = &self.manifest.manifest;
        let out = self.output_dir();
        let report = self.report_path(&out)?;
        if !m.pipeline.convert.enabled {
            return Ok(report.into_iter().collect());
        }
        let ids: Vec<&str> =
            boot_order(&m.disks).into_iter().map(|i| m.disks[i].id.as_str()).collect();
        let ext = self.target_format().extension();
        let domain = self.opts.domain.is_some();
        let kubevirt = domain && self.kubevirt()?.is_some();
        let base = safe_file_stem(&m.vm_name());
        let mut files = output_files(&out, &base, &ids, ext, domain, uefi);
        if kubevirt {
            files.push(crate::kubevirt::kubevirt_path(&out, &base));
        }
        files.extend(report);
        Ok(files)
    }

    /// `output.target` (with `output.namespace` and `output.datavolume_source`), else the
    /// runner's default.
    fn kubevirt(&self) -> Result<Option<KubeVirtOptions>> {
        let o = &self.manifest.manifest.output;
        let mut k = match o.target.as_deref() {
            Some("kubevirt") => self.opts.defaults.kubevirt.clone().unwrap_or_default(),
            Some(_) => return Ok(None),
            None => match &self.opts.defaults.kubevirt {
                Some(k) => k.clone(),
                None => return Ok(None),
            },
        };
        if let Some(ns) = &o.namespace {
            k.namespace = Some(ns.clone());
        }
        if let Some(src) = &o.datavolume_source {
            k.source = src.parse().map_err(|e: Error| e.with_path(&self.manifest.path))?;
        }
        Ok(Some(k))
    }

    /// `output.format`, else the runner's default.
    fn target_format(&self) -> TargetFormat {
        match self.manifest.manifest.output.format.as_deref() {
            Some("raw") => TargetFormat::Raw,
            Some(_) => TargetFormat::Qcow2,
            None => self.opts.defaults.format,
        }
    }

    /// Where the report goes in `out` (`None`: reports are off).
    fn report_path(&self, out: &Path) -> Result<Option<PathBuf>> {
        let r = &self.manifest.manifest.options.report;
        if !r.enabled {
            return Ok(None);
        }
        match &self.opts.report_file {
            Some(name) => confined(out, "the report file", Path::new(name)).map(Some),
            None => confined(out, "options.report.path", &r.path).map(Some),
        }
    }

    /// The dry run: checks the outputs' paths and inspects the boot disk read-only, listing
    /// what the fixes would change. Writes nothing.
    pub fn plan(&self) -> Result<Plan> {
        let m = &self.manifest.manifest;
        let inspection = if m.pipeline.inspect.enabled {
            let fix = FixOptions {
                dry_run: true,
                configuration: m.configuration.clone(),
                ..FixOptions::default()
            };
            let boot = boot_order(&m.disks)[0];
            let probe = ProbeOptions { cross_check: false, verify_manifest: true };
            Some(inspect_and_plan(
                &m.disks[boot].local_path,
                &probe,
                &self.opts.guest,
                m.pipeline.fix.enabled.then_some(&fix),
            )?)
        } else {
            None
        };
        // The manifest's firmware wins; without one, what the boot disk holds decides.
        let uefi = self.manifest.manifest.vm_description("").uefi.unwrap_or_else(|| {
            inspection.as_ref().and_then(|i| i.guest.as_ref()).is_some_and(|g| g.firmware == "uefi")
        });
        let outputs = self.outputs_for(uefi)?;
        Ok(Plan { outputs, warnings: self.manifest.warnings.clone(), inspection })
    }

    fn convert_options(&self) -> Result<ConvertOptions> {
        let m = &self.manifest.manifest;
        let p = &m.pipeline;
        let d = &self.opts.defaults;
        let format = self.target_format();
        let fix = if p.inspect.enabled || p.fix.enabled {
            Some(FixOptions {
                dry_run: !p.fix.enabled,
                backup: p.fix.backup,
                fstab_mode: p.fix.fstab_mode.parse()?,
                update_grub: p.fix.update_grub,
                regen_initramfs: p.fix.regen_initramfs,
                remove_vmware_tools: p.fix.remove_vmware_tools,
                configuration: m.configuration.clone(),
                virtio_win: self.opts.virtio_win.clone(),
                allow_no_virtio: self.opts.allow_no_virtio,
                trim: self.opts.trim,
                ..FixOptions::default()
            })
        } else {
            None
        };
        Ok(ConvertOptions {
            format,
            compress: (p.convert.compress.unwrap_or(d.compress) && format == TargetFormat::Qcow2)
                .then(|| p.convert.compress_level.unwrap_or(d.compress_level)),
            coroutines: d.coroutines,
            overwrite: true,
            name: Some(m.vm_name()),
            probe: ProbeOptions { cross_check: false, verify_manifest: true },
            fix,
            guest: self.opts.guest.clone(),
            domain: self.opts.domain.clone(),
            check: p.validate.enabled && p.validate.check_image_integrity,
            boot_test: if p.validate.enabled { self.opts.boot_test.clone() } else { None },
            print_fstab: p.fix.print_fstab,
            // The report lists every output's SHA-256.
            hash_outputs: true,
            kubevirt: self.kubevirt()?,
        })
    }

    /// The job's id in logs: [`JobOptions::id`], else the manifest's file name.
    pub fn id(&self) -> String {
        self.opts.id.clone().unwrap_or_else(|| {
            self.manifest
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
    }

    /// Runs every enabled stage; `events` hears each start, progress, warning and finish.
    /// On failure nothing is left under a final name (the report, when enabled, records the
    /// failure). Everything runs inside a `job` tracing span (`job_id`, `vm_name`).
    pub fn run(&self, events: &mut dyn FnMut(&Event)) -> Result<JobOutcome> {
        let vm_name = self.manifest.manifest.vm_name();
        let _span = tracing::info_span!("job", job_id = %self.id(), vm_name = %vm_name).entered();
        let done = Arc::new(AtomicBool::new(false));
        let timed_out = Arc::new(AtomicBool::new(false));
        if let Some(limit) = self.opts.timeout {
            let (done, timed_out, cancel) = (done.clone(), timed_out.clone(), self.cancel.clone());
            std::thread::spawn(move || {
                let start = Instant::now();
                while !done.load(Ordering::SeqCst) {
                    if start.elapsed() >= limit {
                        timed_out.store(true, Ordering::SeqCst);
                        cancel.cancel();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        let result = self.run_stages(events);
        done.store(true, Ordering::SeqCst);
        match result {
            Err(e) if timed_out.load(Ordering::SeqCst) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "the job took longer than {} s and was stopped ({})",
                    self.opts.timeout.unwrap_or_default().as_secs(),
                    e.message()
                ),
            )
            .with_path(&self.manifest.path)),
            other => other,
        }
    }

    /// Probes the disks in boot order and plans their outputs; disagreements between the
    /// manifest and the content are warnings (the content wins).
    fn plan_disks(
        &self,
        copts: &ConvertOptions,
        out_dir: &Path,
        clock: &mut StageClock<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<PlannedDisk>> {
        let m = &self.manifest.manifest;
        let base = safe_file_stem(&m.vm_name());
        let ext = copts.format.extension();
        let mut disks = Vec::new();
        let order = boot_order(&m.disks);
        // Each probe reads its disk's metadata and runs `qemu-img info`: several at once.
        let probed = in_threads(&order, self.opts.parallel, |&i| {
            probe(&m.disks[i].local_path, &copts.probe)
        });
        for ((n, i), probed) in order.into_iter().enumerate().zip(probed) {
            let d = &m.disks[i];
            let image = match probed? {
                Probed::Disk(img) => img,
                Probed::Appliance(_) => {
                    return Err(Error::invalid(
                        &d.local_path,
                        format!("disks[{i}] is an appliance, not a disk image"),
                    ));
                }
            };
            let mut warn = |w: String| {
                clock.warn(Stage::Load, &w);
                warnings.push(w);
            };
            if image.format.name() != d.source_format
                && !(d.source_format == "raw" && image.format.name() == "iso")
            {
                warn(format!(
                    "disks[{i}]: the manifest says {}, the content is {}; the content wins",
                    d.source_format,
                    image.format.name()
                ));
            }
            // HyperSDK's writer puts the exported file's size here, not the virtual size.
            if d.bytes != image.virtual_size {
                warn(format!(
                    "disks[{i}].bytes: the manifest says {}, the image's virtual size is {} (HyperSDK writes the file size); the image wins",
                    d.bytes, image.virtual_size
                ));
            }
            let file = disk_file_name(&base, n, &d.id, ext);
            disks.push(PlannedDisk::new(Some(d.id.clone()), image, out_dir, file));
        }
        Ok(disks)
    }

    fn run_stages(&self, events: &mut dyn FnMut(&Event)) -> Result<JobOutcome> {
        let started = Instant::now();
        let m = &self.manifest.manifest;
        let out_dir = self.output_dir();
        let mut warnings = self.manifest.warnings.clone();
        let mut clock = StageClock::new(events);
        clock.start(Stage::Load);
        for w in &self.manifest.warnings {
            clock.warn(Stage::Load, w);
        }
        let copts = self.convert_options().map_err(|e| e.with_stage(Stage::Load))?;
        let report_path = self.report_path(&out_dir).map_err(|e| e.with_stage(Stage::Load))?;

        // Probe the disks (their content decides the format).
        let mut disks = self
            .plan_disks(&copts, &out_dir, &mut clock, &mut warnings)
            .map_err(|e| e.with_stage(Stage::Load))?;

        // VERIFY: in the conversion's own read of each source when every checksummed disk is
        // converted straight from its file (one pass over the data); a separate pass first
        // otherwise (nothing converted, or VHD differencing chains merged by our own code).
        let checksummed = m.disks.iter().any(|d| d.checksum.is_some());
        // Each manifest disk's place among the planned ones.
        let slots: Vec<Option<usize>> = m
            .disks
            .iter()
            .map(|d| disks.iter().position(|p| p.disk_id.as_deref() == Some(&d.id)))
            .collect();
        let fused = checksummed
            && m.pipeline.convert.enabled
            && disks.iter().all(|d| !d.image.chain().any(|l| vhd::is_differencing(&l.details)))
            && m.disks.iter().zip(&slots).all(|(d, k)| d.checksum.is_none() || k.is_some());
        if fused {
            for (i, d) in m.disks.iter().enumerate() {
                let (Some(sum), Some(k)) = (&d.checksum, slots[i]) else { continue };
                disks[k].checksum = Some(ExpectedChecksum {
                    file: d.local_path.clone(),
                    sha256: sum.trim_start_matches("sha256:").to_string(),
                    what: format!("disks[{i}] ({}, {})", d.id, d.local_path.display()),
                    manifest: self.manifest.path.clone(),
                });
            }
            clock.skip(Stage::Verify, FUSED_VERIFY);
        } else if checksummed {
            clock.start(Stage::Verify);
            verify_checksums(
                &self.manifest.path,
                &m.disks,
                self.opts.parallel,
                &mut |p: &Progress| clock.progress(p),
                &self.cancel,
            )
            .map_err(|e| e.with_stage(Stage::Verify))?;
        } else {
            clock.skip(Stage::Verify, "no disk has a checksum");
        }
        let mut staging = Staging::default();
        if !m.pipeline.convert.enabled {
            for (s, why) in [
                (Stage::Convert, "pipeline.convert.enabled is false"),
                (Stage::Inspect, "inspection runs on the converted disks"),
                (Stage::Fix, "fixes run on the converted disks"),
                (Stage::Validate, "nothing was converted"),
            ] {
                clock.skip(s, why);
            }
            let done = Done { artifacts: Vec::new(), executed: None, warnings };
            return self.finish(clock, started, done, report_path, &out_dir, &mut staging);
        }

        let created_out_dir = !out_dir.exists();
        std::fs::create_dir_all(&out_dir)
            .map_err(|e| Error::io(&out_dir, "cannot create output directory", e))?;
        let desc = m.vm_description(
            &self
                .manifest
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        match &copts.fix {
            None => {
                clock.skip(Stage::Inspect, "pipeline.inspect.enabled is false");
                clock.skip(Stage::Fix, "pipeline.fix.enabled is false");
            }
            Some(f) if f.dry_run => clock.skip(Stage::Fix, "pipeline.fix.enabled is false"),
            Some(_) => {}
        }
        if !copts.check && copts.boot_test.is_none() {
            clock.skip(Stage::Validate, "pipeline.validate is off");
        }
        let x = Execution {
            disks: &disks,
            out_dir: &out_dir,
            opts: &copts,
            parallel: self.opts.parallel,
            cancel: &self.cancel,
        };
        let executed = execute(&x, desc, &mut |p: &Progress| clock.progress(p), &mut staging)
            .map_err(|e| e.with_path(&self.manifest.path));
        let executed = match executed {
            Ok(x) => x,
            Err(e) => {
                let e = match clock.current() {
                    Some(stage) => e.with_stage(stage),
                    None => e,
                };
                clock.finish(StageStatus::Failed, serde_json::json!({ "error": e.to_string() }));
                if e.kind() == ErrorKind::Checksum {
                    // Bad input, found in the conversion's read: as when it is found before,
                    // nothing is left behind (the partial outputs go with `staging`).
                    drop(staging);
                    if created_out_dir {
                        let _ = std::fs::remove_dir(&out_dir);
                    }
                    return Err(e);
                }
                if let Some(p) = &report_path {
                    let report = Report::new(
                        self.manifest.path.clone(),
                        clock.stages,
                        started.elapsed().as_secs_f64(),
                        warnings,
                        vec![e.to_string()],
                        format!("failed: {}", e.message()),
                    );
                    let _ = write_json(p, &report);
                }
                return Err(e);
            }
        };
        let details =
            serde_json::json!({ "checks": executed.checks, "boot_test": executed.boot_test });
        clock.finish(StageStatus::Success, details);
        warnings.extend(executed.warnings.iter().cloned());
        let done = Done {
            artifacts: artifacts(&executed, &staging, self.opts.parallel)?,
            executed: Some(executed),
            warnings,
        };
        self.finish(clock, started, done, report_path, &out_dir, &mut staging)
    }

    /// The output stage: the report written, then the boot disk renamed into place.
    fn finish(
        &self,
        mut clock: StageClock<'_>,
        started: Instant,
        done: Done,
        report_path: Option<PathBuf>,
        out_dir: &Path,
        staging: &mut Staging,
    ) -> Result<JobOutcome> {
        clock.start(Stage::Output);
        let changes_applied = self.manifest.manifest.pipeline.fix.enabled;
        let Done { mut artifacts, executed, warnings } = done;
        let guest =
            executed.as_ref().and_then(|x| x.guest.as_ref()).map(GuestSummary::from_inspection);
        let changes = match &executed {
            Some(x) if changes_applied => x.changes.clone(),
            _ => Vec::new(),
        };
        let disks = artifacts.iter().filter(|a| a.kind == "disk").count();
        let summary = format!(
            "{} disk(s) converted for {}{}, {} change(s) in the guest",
            disks,
            self.manifest.manifest.vm_name(),
            guest
                .as_ref()
                .map(|g| format!(" ({} {} {})", g.distro, g.version, g.arch))
                .unwrap_or_default(),
            changes.len()
        );
        clock.finish(StageStatus::Success, serde_json::json!({ "output_directory": out_dir }));
        let mut report = Report::new(
            self.manifest.path.clone(),
            clock.stages,
            started.elapsed().as_secs_f64(),
            warnings,
            Vec::new(),
            summary,
        );
        report.guest = guest;
        report.changes = changes;
        if let Some(x) = executed {
            report.fstab = x.fstab;
            report.boot_verdict = x.verdict;
        }
        if let Some(p) = &report_path {
            std::fs::create_dir_all(out_dir)
                .map_err(|e| Error::io(out_dir, "cannot create output directory", e))?;
            artifacts.push(Artifact {
                path: p.clone(),
                kind: "report".into(),
                format: "json".into(),
                bytes: 0,
                sha256: None,
            });
            report.artifacts = artifacts;
            write_json(p, &report)?;
        } else {
            report.artifacts = artifacts;
        }
        staging.finish()?;
        Ok(JobOutcome { report, report_path })
    }
}

/// What the stages before OUTPUT produced.
struct Done {
    artifacts: Vec<Artifact>,
    executed: Option<Executed>,
    warnings: Vec<String>,
}

/// The artifacts of a finished job, with their SHA-256s (`parallel` disks hashed at once).
fn artifacts(x: &Executed, staging: &Staging, parallel: usize) -> Result<Vec<Artifact>> {
    let mut out = Vec::new();
    // The disks' SHA-256s, several at once (each is a full read of a large file).
    // (Already computed while they were flushed, unless the conversion did not.)
    let sums = in_threads(&x.outputs, parallel, |o| match &o.sha256 {
        Some(sum) => Ok(sum.clone()),
        None => sha256_file(staging.current_path(&o.path)),
    });
    for (o, sum) in x.outputs.iter().zip(sums) {
        out.push(Artifact {
            path: o.path.clone(),
            kind: "disk".into(),
            format: if o.format == TargetFormat::Raw { "raw".into() } else { "qcow2".into() },
            bytes: o.bytes,
            sha256: Some(sum?),
        });
    }
    if let Some(d) = &x.domain {
        for (path, kind, format) in [
            (Some(&d.xml), "domain", "xml"),
            (d.nvram.as_ref(), "nvram", "fd"),
            (d.kubevirt.as_ref(), "kubevirt", "yaml"),
        ] {
            if let Some(p) = path {
                let bytes = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                out.push(Artifact {
                    path: p.clone(),
                    kind: kind.into(),
                    format: format.into(),
                    bytes,
                    sha256: Some(sha256_file(p)?),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(id: &str, hint: Option<i64>, kind: Option<&str>) -> ManifestDisk {
        ManifestDisk {
            id: id.into(),
            boot_order_hint: hint,
            disk_type: kind.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn boot_disk_by_type_then_hint_then_order() {
        // HyperSDK's real two-disk vSphere manifest: disk-0 has no hint (omitempty dropped 0).
        let d = [disk("disk-0", None, Some("boot")), disk("disk-1", Some(1), None)];
        assert_eq!(boot_order(&d), vec![0, 1]);
        // The same without disk_type: a missing hint is 0 for the first disk.
        let d = [disk("disk-0", None, None), disk("disk-1", Some(1), None)];
        assert_eq!(boot_order(&d), vec![0, 1]);
        // The one `boot` disk wins over any hint.
        let d = [disk("a", Some(0), Some("data")), disk("b", Some(5), Some("boot"))];
        assert_eq!(boot_order(&d), vec![1, 0]);
        let d = [
            disk("data", None, Some("data")),
            disk("boot", None, Some("boot")),
            disk("x", None, None),
        ];
        assert_eq!(boot_order(&d), vec![1, 0, 2]);
        // Several `boot` disks: the lowest hint among them (missing = position), then order.
        let d = [
            disk("d0", Some(0), Some("data")),
            disk("b1", None, Some("boot")),
            disk("b2", Some(1), Some("boot")),
        ];
        assert_eq!(boot_order(&d), vec![1, 0, 2], "b1's missing hint is 1, a tie won by order");
        let d = [disk("a", Some(3), None), disk("b", None, None), disk("c", Some(2), None)];
        assert_eq!(boot_order(&d), vec![1, 2, 0], "b's missing hint is its position, 1");
        assert!(boot_order(&[]).is_empty());
    }
}
