//! [`Job`]: one manifest run through the stages, with typed events, cancellation and a
//! timeout. The daemon, the C ABI and the Python module call this.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::report::{
    Artifact, GuestSummary, PipelineReport, REPORT_VERSION, Report, StageReport, StageStatus,
    rfc3339,
};
use super::verify::verify_checksums;
use crate::appliance::manifest::{Algorithm, digest_reader};
use crate::convert::{
    Cleanup, ConvertOptions, Executed, Job as DiskJob, TargetFormat, execute, safe_file_stem,
};
use crate::error::{Error, ErrorKind, Result};
use crate::files::write_json;
use crate::fix::FixOptions;
use crate::guest::GuestOptions;
use crate::inspect_input::{InspectReport, inspect_and_plan};
use crate::libvirt::DomainOptions;
use crate::manifest::LoadedManifest;
use crate::manifest::schema::ManifestDisk;
use crate::probe::{ProbeOptions, Probed, probe};
use crate::progress::{CancelToken, Progress};
use crate::validate::BootTestOptions;

/// A stage of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Reading and checking the manifest.
    Load,
    /// Checksums of the source disks.
    Verify,
    /// Reading the guest.
    Inspect,
    /// Changing the guest.
    Fix,
    /// Writing the disks.
    Convert,
    /// `qemu-img check` and the boot test.
    Validate,
    /// Renaming into place, the domain and the report.
    Output,
}

impl Stage {
    /// Its name in events and the report.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Load => "load",
            Stage::Verify => "verify",
            Stage::Inspect => "inspect",
            Stage::Fix => "fix",
            Stage::Convert => "convert",
            Stage::Validate => "validate",
            Stage::Output => "output",
        }
    }
}

/// What a running job reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A stage began.
    Started {
        /// Which.
        stage: Stage,
    },
    /// Bytes done of a stage's total.
    Progress {
        /// Which.
        stage: Stage,
        /// The file or disk being worked on.
        item: String,
        /// Bytes done.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// Something worth knowing that does not stop the job.
    Warning {
        /// Which stage.
        stage: Stage,
        /// What.
        message: String,
    },
    /// A stage ended.
    Finished {
        /// Which.
        stage: Stage,
        /// How.
        status: StageStatus,
        /// Its wall time.
        seconds: f64,
    },
}

/// How a job runs (the manifest says what to do; these say how).
#[derive(Debug, Clone)]
pub struct JobOptions {
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
    /// [`crate::windows::DriverSource::locate`]).
    pub virtio_win: Option<PathBuf>,
    /// Convert Windows guests without virtio drivers (SATA, e1000) instead of refusing.
    pub allow_no_virtio: bool,
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
}

impl Default for ConvertDefaults {
    fn default() -> Self {
        ConvertDefaults {
            format: TargetFormat::Qcow2,
            compress: false,
            compress_level: 6,
            coroutines: ConvertOptions::default().coroutines,
        }
    }
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
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

/// A path inside `dir` from a manifest value: relative, no `..`.
fn confined(dir: &Path, what: &str, p: &Path) -> Result<PathBuf> {
    if p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{what} {} must be a relative path inside the output directory", p.display()),
        ));
    }
    Ok(dir.join(p))
}

fn sha256_file(path: &Path) -> Result<String> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, "reading", e))?;
    digest_reader(f, Algorithm::Sha256).map_err(|e| Error::io(path, "reading", e))
}

/// Turns the converter's progress into stage events with timing.
struct StageClock<'a> {
    events: &'a mut dyn FnMut(&Event),
    current: Option<(Stage, Instant)>,
    stages: Vec<StageReport>,
}

impl StageClock<'_> {
    fn start(&mut self, stage: Stage) {
        if self.current.is_some_and(|(s, _)| s == stage) {
            return;
        }
        self.finish(StageStatus::Success, serde_json::Value::Null);
        (self.events)(&Event::Started { stage });
        self.current = Some((stage, Instant::now()));
    }

    fn finish(&mut self, status: StageStatus, details: serde_json::Value) {
        if let Some((stage, t)) = self.current.take() {
            let seconds = t.elapsed().as_secs_f64();
            (self.events)(&Event::Finished { stage, status, seconds });
            self.stages.push(StageReport {
                name: stage.name().into(),
                status,
                duration_seconds: seconds,
                details,
            });
        }
    }

    fn skip(&mut self, stage: Stage, why: &str) {
        self.finish(StageStatus::Success, serde_json::Value::Null);
        (self.events)(&Event::Started { stage });
        (self.events)(&Event::Finished { stage, status: StageStatus::Skipped, seconds: 0.0 });
        self.stages.push(StageReport {
            name: stage.name().into(),
            status: StageStatus::Skipped,
            duration_seconds: 0.0,
            details: serde_json::json!({ "reason": why }),
        });
    }
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

    /// The files the job will write, in order (disks by boot order, domain, report).
    pub fn planned_outputs(&self) -> Result<Vec<PathBuf>> {
        let m = &self.manifest.manifest;
        let out = self.output_dir();
        let ext = self.target_format().extension();
        let base = safe_file_stem(&m.vm_name());
        let mut files = Vec::new();
        for (n, i) in boot_order(&m.disks).into_iter().enumerate() {
            files.push(if n == 0 {
                out.join(format!("{base}.{ext}"))
            } else {
                out.join(format!("{base}-{}.{ext}", safe_file_stem(&m.disks[i].id)))
            });
        }
        if self.opts.domain.is_some() && m.pipeline.convert.enabled {
            files.push(out.join(format!("{base}.xml")));
        }
        if let Some(r) = self.report_path(&out)? {
            files.push(r);
        }
        if !m.pipeline.convert.enabled {
            files.retain(|f| f.extension().is_some_and(|e| e == "json"));
        }
        Ok(files)
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
        let outputs = self.planned_outputs()?;
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
        })
    }

    /// Runs every enabled stage; `events` hears each start, progress, warning and finish.
    /// On failure nothing is left under a final name (the report, when enabled, records the
    /// failure).
    pub fn run(&self, events: &mut dyn FnMut(&Event)) -> Result<JobOutcome> {
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

    fn run_stages(&self, events: &mut dyn FnMut(&Event)) -> Result<JobOutcome> {
        let started = Instant::now();
        let m = &self.manifest.manifest;
        let out_dir = self.output_dir();
        let mut warnings = self.manifest.warnings.clone();
        let mut clock = StageClock { events, current: None, stages: Vec::new() };
        clock.start(Stage::Load);
        for w in &self.manifest.warnings {
            (clock.events)(&Event::Warning { stage: Stage::Load, message: w.clone() });
        }
        let copts = self.convert_options()?;
        let report_path = self.report_path(&out_dir)?;

        // VERIFY
        if m.disks.iter().any(|d| d.checksum.is_some()) {
            clock.start(Stage::Verify);
            let mut progress = |p: &Progress| {
                (clock.events)(&Event::Progress {
                    stage: Stage::Verify,
                    item: p.item.clone(),
                    done: p.done,
                    total: p.total,
                })
            };
            verify_checksums(
                &self.manifest.path,
                &m.disks,
                self.opts.parallel,
                &mut progress,
                &self.cancel,
            )?;
        } else {
            clock.skip(Stage::Verify, "no disk has a checksum");
        }

        // Probe the disks (their content decides the format).
        let order = boot_order(&m.disks);
        let mut jobs = Vec::new();
        let base = safe_file_stem(&m.vm_name());
        let ext = copts.format.extension();
        for (n, &i) in order.iter().enumerate() {
            let d = &m.disks[i];
            let image = match probe(&d.local_path, &copts.probe)? {
                Probed::Disk(img) => img,
                Probed::Appliance(_) => {
                    return Err(Error::invalid(
                        &d.local_path,
                        format!("disks[{i}] is an appliance, not a disk image"),
                    ));
                }
            };
            if image.format.name() != d.source_format
                && !(d.source_format == "raw" && image.format.name() == "iso")
            {
                let w = format!(
                    "disks[{i}]: the manifest says {}, the content is {}; the content wins",
                    d.source_format,
                    image.format.name()
                );
                (clock.events)(&Event::Warning { stage: Stage::Load, message: w.clone() });
                warnings.push(w);
            }
            // HyperSDK's writer puts the exported file's size here, not the virtual size.
            if d.bytes != image.virtual_size {
                let w = format!(
                    "disks[{i}].bytes: the manifest says {}, the image's virtual size is {} (HyperSDK writes the file size); the image wins",
                    d.bytes, image.virtual_size
                );
                (clock.events)(&Event::Warning { stage: Stage::Load, message: w.clone() });
                warnings.push(w);
            }
            let file = if n == 0 {
                format!("{base}.{ext}")
            } else {
                format!("{base}-{}.{ext}", safe_file_stem(&d.id))
            };
            jobs.push(DiskJob::new(Some(d.id.clone()), image, &out_dir, file));
        }

        if !m.pipeline.convert.enabled {
            for (s, why) in [
                (Stage::Convert, "pipeline.convert.enabled is false"),
                (Stage::Inspect, "inspection runs on the converted disks"),
                (Stage::Fix, "fixes run on the converted disks"),
                (Stage::Validate, "nothing was converted"),
            ] {
                clock.skip(s, why);
            }
            return self.finish(
                clock,
                started,
                Vec::new(),
                None,
                warnings,
                report_path,
                &out_dir,
                &mut Cleanup::default(),
            );
        }

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
        let mut cleanup = Cleanup::default();
        if copts.fix.is_none() {
            clock.skip(Stage::Inspect, "pipeline.inspect.enabled is false");
            clock.skip(Stage::Fix, "pipeline.fix.enabled is false");
        }
        if !copts.check && copts.boot_test.is_none() {
            clock.skip(Stage::Validate, "pipeline.validate is off");
        }
        let executed = {
            let mut progress = |p: &Progress| {
                let stage = match p.stage.as_str() {
                    "convert" => Stage::Convert,
                    "fix" => Stage::Fix,
                    _ => Stage::Validate,
                };
                clock.start(stage);
                (clock.events)(&Event::Progress {
                    stage,
                    item: p.item.clone(),
                    done: p.done,
                    total: p.total,
                });
            };
            execute(
                &jobs,
                desc,
                &out_dir,
                &copts,
                self.opts.parallel,
                &mut progress,
                &self.cancel,
                &mut cleanup,
            )
            .map_err(|e| e.with_path(&self.manifest.path))
        };
        let executed = match executed {
            Ok(x) => x,
            Err(e) => {
                clock.finish(StageStatus::Failed, serde_json::json!({ "error": e.to_string() }));
                if let Some(p) = &report_path {
                    let _ = self.write_failure(&clock.stages, started, &e, warnings, p);
                }
                return Err(e);
            }
        };
        let details =
            serde_json::json!({ "checks": executed.checks, "boot_test": executed.boot_test });
        clock.finish(StageStatus::Success, details);
        let mut warn = warnings;
        warn.extend(executed.warnings.iter().cloned());
        let changes_applied = m.pipeline.fix.enabled;
        self.finish(
            clock,
            started,
            artifacts(&executed)?,
            Some((executed, changes_applied)),
            warn,
            report_path,
            &out_dir,
            &mut cleanup,
        )
    }

    fn write_failure(
        &self,
        stages: &[StageReport],
        started: Instant,
        e: &Error,
        warnings: Vec<String>,
        path: &Path,
    ) -> Result<()> {
        let report = Report {
            version: REPORT_VERSION.into(),
            hyper2kvm_version: crate::VERSION.into(),
            timestamp: rfc3339(SystemTime::now()),
            input_manifest: self.manifest.path.clone(),
            pipeline: PipelineReport {
                success: false,
                duration_seconds: started.elapsed().as_secs_f64(),
                stages: stages.to_vec(),
            },
            artifacts: Vec::new(),
            warnings,
            errors: vec![e.to_string()],
            summary: format!("failed: {}", e.message()),
            guest: None,
            changes: Vec::new(),
            fstab: None,
            boot_verdict: None,
        };
        write_json(path, &report)
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        mut clock: StageClock<'_>,
        started: Instant,
        mut artifacts: Vec<Artifact>,
        executed: Option<(Executed, bool)>,
        warnings: Vec<String>,
        report_path: Option<PathBuf>,
        out_dir: &Path,
        cleanup: &mut Cleanup,
    ) -> Result<JobOutcome> {
        clock.start(Stage::Output);
        let (guest, changes, fstab, boot_verdict) = match &executed {
            Some((x, applied)) => (
                x.guest.as_ref().map(GuestSummary::from_inspection),
                if *applied { x.changes.clone() } else { Vec::new() },
                x.fstab.clone(),
                x.verdict.clone(),
            ),
            None => (None, Vec::new(), None, None),
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
        let mut report = Report {
            version: REPORT_VERSION.into(),
            hyper2kvm_version: crate::VERSION.into(),
            timestamp: rfc3339(SystemTime::now()),
            input_manifest: self.manifest.path.clone(),
            pipeline: PipelineReport {
                success: true,
                duration_seconds: started.elapsed().as_secs_f64(),
                stages: clock.stages,
            },
            artifacts: Vec::new(),
            warnings,
            errors: Vec::new(),
            summary,
            guest,
            changes,
            fstab,
            boot_verdict,
        };
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
        if let Some((mut x, _)) = executed {
            x.publish(cleanup)?;
        }
        Ok(JobOutcome { report, report_path })
    }
}

fn artifacts(x: &Executed) -> Result<Vec<Artifact>> {
    let mut out = Vec::new();
    for o in &x.outputs {
        out.push(Artifact {
            path: o.path.clone(),
            kind: "disk".into(),
            format: if o.format == TargetFormat::Raw { "raw".into() } else { "qcow2".into() },
            bytes: o.bytes,
            sha256: Some(sha256_file(x.current_path(&o.path))?),
        });
    }
    if let Some(d) = &x.domain {
        for (path, kind, format) in
            [(Some(&d.xml), "domain", "xml"), (d.nvram.as_ref(), "nvram", "fd")]
        {
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
        assert!(confined(Path::new("/o"), "x", Path::new("../r.json")).is_err());
        assert!(confined(Path::new("/o"), "x", Path::new("/r.json")).is_err());
        assert_eq!(
            confined(Path::new("/o"), "x", Path::new("r/r.json")).unwrap(),
            Path::new("/o/r/r.json")
        );
    }
}
