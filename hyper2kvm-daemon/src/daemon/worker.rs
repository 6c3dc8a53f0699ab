//! One attempt at one claimed job: load the manifest (relative disk paths still start at the
//! queue directory), confine its paths, run the pipeline into `OUTPUT_DIR` with the results
//! named as contract section 3 says, and log every event to the job's `job.log`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hyper2kvm::io::safe_file_stem;

use crate::events::EventPrinter;
use hyper2kvm::io::lexical;
use hyper2kvm::libvirt::{DomainOptions, NetSource};
use hyper2kvm::manifest::LoadedManifest;
use hyper2kvm::pipeline::{Event, Job, JobOptions, JobOutcome};
use hyper2kvm::{CancelToken, Error, ErrorKind, Stage};
use serde_json::Value;

use super::config::Config;
use super::queue::Claimed;

/// What the status shows of a running job.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Live {
    /// The job id.
    pub id: String,
    /// The manifest's name in the queue.
    pub manifest: String,
    /// The VM.
    pub vm_name: String,
    /// The current stage.
    pub stage: String,
    /// Its progress.
    pub percent: u64,
    /// Which attempt.
    pub attempt: u32,
}

/// Running jobs by id, shared with the status writer.
pub type LiveMap = Arc<Mutex<Vec<Live>>>;

/// A job to run.
#[derive(Debug, Clone)]
pub struct Work {
    /// The claimed manifest.
    pub claimed: Claimed,
    /// Refused before it ran (a symlink, a FIFO, too large): why.
    pub refuse: Option<String>,
    /// The VM name outputs are named after.
    pub vm_name: String,
    /// 1 for the first run.
    pub attempt: u32,
}

/// How an attempt ended.
#[derive(Debug)]
pub struct Attempt {
    /// The job.
    pub work: Work,
    /// Where its results went (`OUTPUT_DIR` unless the manifest chose a directory in it).
    pub output_dir: PathBuf,
    /// The outcome.
    pub result: Result<JobOutcome, Error>,
    /// Source disks, for `CLEANUP_SOURCE`, and whether their success was verified.
    pub sources: Vec<PathBuf>,
    /// Every disk had its checksum verified or the outputs were checked.
    pub verified: bool,
    /// Each stage that ended, with its wall time.
    pub stages: Vec<(Stage, f64)>,
    /// Bytes of the source disks the convert stage went through.
    pub converted_bytes: u64,
}

/// The name HyperSDK waits for, from a manifest document that may be invalid:
/// `output.filename`, else `source.vm_name`, else `vm` (contract section 3).
pub fn vm_name_of(doc: Option<&Value>, fallback: &str) -> String {
    let name = match doc {
        Some(d) => hyper2kvm::manifest::schema::vm_name(
            d.pointer("/output/filename").and_then(Value::as_str),
            d.pointer("/source/vm_name").and_then(Value::as_str),
        ),
        None => fallback.to_string(),
    };
    safe_file_stem(&name)
}

/// The job's output directory: always `OUTPUT_DIR`, where HyperSDK polls for `{vm}.qcow2`. A
/// manifest's `output.directory` is HyperSDK's export directory (read-only under the unit's
/// `ProtectSystem=strict`): it is ignored, with a warning in the job's log.
fn output_dir(
    cfg: &Config,
    m: &LoadedManifest,
    say: &mut dyn FnMut(&str),
) -> Result<PathBuf, Error> {
    let base = lexical(&std::path::absolute(&cfg.output_dir).unwrap_or(cfg.output_dir.clone()));
    if let Some(d) = &m.manifest.output.directory {
        let w = format!(
            "warning: output.directory {} ignored: the daemon writes into OUTPUT_DIR ({})",
            d.display(),
            base.display()
        );
        tracing::warn!("{}: {w}", m.path.display());
        say(&w);
    }
    std::fs::create_dir_all(&base).map_err(|e| Error::io(&base, "cannot create", e))?;
    Ok(base)
}

/// With `ALLOWED_INPUT_DIRS`, every disk must resolve (links followed) inside one of them.
fn check_inputs(cfg: &Config, m: &LoadedManifest) -> Result<(), Error> {
    if cfg.allowed_input_dirs.is_empty() {
        return Ok(());
    }
    let allowed: Vec<PathBuf> =
        cfg.allowed_input_dirs.iter().filter_map(|d| std::fs::canonicalize(d).ok()).collect();
    for (i, d) in m.manifest.disks.iter().enumerate() {
        let real = std::fs::canonicalize(&d.local_path)
            .map_err(|e| Error::io(&d.local_path, &format!("disks[{i}].local_path"), e))?;
        if !allowed.iter().any(|a| real.starts_with(a)) {
            return Err(Error::invalid(
                &m.path,
                format!(
                    "disks[{i}].local_path: {} resolves to {}, outside ALLOWED_INPUT_DIRS",
                    d.local_path.display(),
                    real.display()
                ),
            ));
        }
    }
    Ok(())
}

fn job_options(cfg: &Config, out: PathBuf, vm_name: &str) -> JobOptions {
    let network = if cfg.libvirt.bridge.is_empty() {
        NetSource::Network("default".into())
    } else {
        NetSource::Bridge(cfg.libvirt.bridge.clone())
    };
    JobOptions {
        timeout: Some(cfg.conversion_timeout),
        output_dir: Some(out),
        domain: Some(DomainOptions { network, ..DomainOptions::default() }),
        defaults: cfg.convert.clone(),
        report_file: Some(format!("{vm_name}.report.json")),
        virtio_win: cfg.virtio_win.clone(),
        allow_no_virtio: cfg.allow_no_virtio,
        ..JobOptions::default()
    }
}

/// Runs one attempt. `queue_dir` is where the manifest's relative paths start.
pub fn attempt(
    work: Work,
    cfg: &Config,
    queue_dir: &Path,
    cancel: CancelToken,
    live: &LiveMap,
) -> Attempt {
    let mut log =
        File::options().create(true).append(true).open(work.claimed.dir.join("job.log")).ok();
    let mut say = |line: &str| {
        if let Some(f) = &mut log {
            let t = hyper2kvm::io::rfc3339(std::time::SystemTime::now());
            let _ = writeln!(f, "{t} {line}");
        }
    };
    say(&format!("attempt {} of {} ({})", work.attempt, work.claimed.name, work.claimed.id));
    let queue_path = queue_dir.join(&work.claimed.name);
    let mut out = Attempt {
        output_dir: cfg.output_dir.clone(),
        result: Err(Error::new(ErrorKind::Internal, "not run")),
        sources: Vec::new(),
        verified: false,
        stages: Vec::new(),
        converted_bytes: 0,
        work,
    };
    if let Some(why) = &out.work.refuse {
        out.result = Err(Error::invalid(&queue_path, why.clone()));
        say(&format!("refused: {why}"));
        return out;
    }
    let manifest = match LoadedManifest::load_with_base(&out.work.claimed.manifest, queue_dir) {
        Ok(m) => m,
        Err(e) => {
            // Name the file where HyperSDK put it, not where it was claimed to.
            let e = if e.path() == Some(out.work.claimed.manifest.as_path()) {
                Error::new(e.kind(), e.message()).with_path(&queue_path)
            } else {
                e
            };
            say(&format!("error: {e}"));
            out.result = Err(e);
            return out;
        }
    };
    let prepared =
        output_dir(cfg, &manifest, &mut say).and_then(|d| check_inputs(cfg, &manifest).map(|_| d));
    let dir = match prepared {
        Ok(d) => d,
        Err(e) => {
            let e = e.with_path(&queue_path);
            say(&format!("error: {e}"));
            out.result = Err(e);
            return out;
        }
    };
    out.output_dir = dir.clone();
    let vm = out.work.vm_name.clone();
    for stale in [format!("{vm}.error"), format!("{vm}.error.json")] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    let m = &manifest.manifest;
    out.sources = m.disks.iter().map(|d| d.local_path.clone()).collect();
    out.verified = m.disks.iter().all(|d| d.checksum.is_some())
        || (m.pipeline.validate.enabled && m.pipeline.validate.check_image_integrity);
    let id = out.work.claimed.id.clone();
    let opts = JobOptions { id: Some(id.clone()), ..job_options(cfg, dir, &vm) };
    let job = Job::new(manifest, opts, cancel);
    let verbose = cfg.verbose_progress;
    let mut printer = EventPrinter::new();
    let mut stages = Vec::new();
    let mut converted: Vec<(String, u64)> = Vec::new();
    let result = job.run(&mut |e| {
        match e {
            Event::Finished { stage, seconds, .. } => stages.push((*stage, *seconds)),
            Event::Progress { stage: Stage::Convert, item, done, .. } => {
                match converted.iter_mut().find(|(i, _)| i == item) {
                    Some((_, d)) => *d = (*d).max(*done),
                    None => converted.push((item.clone(), *done)),
                }
            }
            _ => {}
        }
        let stage_percent = match e {
            Event::Started { stage } => Some((stage, 0)),
            Event::Progress { stage, done, total, .. } => {
                Some((stage, if *total == 0 { 100 } else { done * 100 / total }))
            }
            _ => None,
        };
        if let Some((stage, pct)) = stage_percent
            && let Ok(mut l) = live.lock()
            && let Some(j) = l.iter_mut().find(|j| j.id == id)
        {
            j.stage = stage.name().into();
            j.percent = pct;
        }
        if let Some(line) = printer.line(e) {
            if verbose || !matches!(e, Event::Progress { .. }) {
                tracing::debug!("[{id}] {line}");
            }
            say(&line);
        }
    });
    match &result {
        Ok(o) => say(&format!("succeeded: {}", o.report.summary)),
        Err(e) => say(&format!("error: {e}")),
    }
    out.result = result;
    out.stages = stages;
    out.converted_bytes = converted.iter().map(|(_, d)| d).sum();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_the_contract_even_for_bad_manifests() {
        let d = json!({"source": {"vm_name": "web 01"}});
        assert_eq!(vm_name_of(Some(&d), "x"), "web_01");
        let d = json!({"source": {"vm_name": ""}, "output": {"filename": "app"}});
        assert_eq!(vm_name_of(Some(&d), "x"), "app");
        assert_eq!(vm_name_of(Some(&json!({"disks": []})), "x"), "vm");
        assert_eq!(vm_name_of(None, "half-written"), "half-written");
    }
}
