//! [`BatchJob`]: the VMs of a batch manifest run as [`Job`]s, up to `parallel_limit` at once in
//! priority order, stopping new starts after a failure unless `continue_on_error`, and a
//! `batch-report.json` that says what happened to each VM.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

use serde::Serialize;

use super::job::{Job, JobOptions};
use super::report::REPORT_VERSION;
use super::stages::Event;
use crate::error::Result;
use crate::io::rfc3339;
use crate::io::write_json;
use crate::manifest::{Batch, BatchVm};
use crate::progress::CancelToken;

/// The batch report's file name, in the batch's output directory.
pub const BATCH_REPORT: &str = "batch-report.json";

/// What became of one VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VmStatus {
    /// Its job succeeded.
    Success,
    /// Its job failed.
    Failed,
    /// `enabled: false`.
    Skipped,
    /// Not started: an earlier VM failed without `continue_on_error`, or the batch was
    /// cancelled.
    NotRun,
}

/// One VM in the batch report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmResult {
    /// The VM's id.
    pub id: String,
    /// Its manifest.
    pub manifest: PathBuf,
    /// Its priority.
    pub priority: i64,
    /// What became of it.
    pub status: VmStatus,
    /// Where its outputs went.
    pub output_directory: PathBuf,
    /// 0 for the first VM started, 1 for the next, …
    pub start_sequence: Option<usize>,
    /// When it started (RFC 3339).
    pub started_at: Option<String>,
    /// Its wall time.
    pub duration_seconds: f64,
    /// Its `report.json`, when one was written.
    pub report: Option<PathBuf>,
    /// Every file it wrote.
    pub artifacts: Vec<PathBuf>,
    /// Why it failed or was not run.
    pub error: Option<String>,
    /// The failure's kind (`invalid_input`, `io`, …).
    pub error_kind: Option<String>,
}

/// `batch-report.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchReport {
    /// Format version (`1.0`).
    pub version: String,
    /// The hyper2kvm that ran it.
    pub hyper2kvm_version: String,
    /// When it finished (RFC 3339).
    pub timestamp: String,
    /// The batch manifest.
    pub batch_manifest: PathBuf,
    /// `batch_metadata.batch_id`, else the file stem.
    pub batch_id: String,
    /// True when every enabled VM succeeded.
    pub success: bool,
    /// Wall time of the batch.
    pub duration_seconds: f64,
    /// VMs run at once.
    pub parallel_limit: usize,
    /// Whether VMs kept starting after a failure.
    pub continue_on_error: bool,
    /// Every VM, in the batch file's order.
    pub vms: Vec<VmResult>,
    /// One line: how many succeeded, failed, were skipped or not run.
    pub summary: String,
}

/// What a finished batch produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchOutcome {
    /// The report (also written to `report_path`).
    pub report: BatchReport,
    /// `OUTPUT/batch-report.json`.
    pub report_path: PathBuf,
}

/// A batch manifest's run.
#[derive(Debug)]
pub struct BatchJob {
    batch: Batch,
    opts: JobOptions,
    cancel: CancelToken,
}

impl BatchJob {
    /// Loads and checks a batch manifest and every enabled VM manifest in it.
    pub fn load(path: &Path, opts: JobOptions) -> Result<BatchJob> {
        Ok(BatchJob::new(Batch::load(path)?, opts))
    }

    /// A run of an already loaded batch. `opts` apply to every VM's job (its `timeout` to each
    /// VM alone; its `output_dir` is replaced by each VM's own).
    pub fn new(batch: Batch, opts: JobOptions) -> BatchJob {
        BatchJob { batch, opts, cancel: CancelToken::new() }
    }

    /// The same run, cancelled by `cancel` instead of a token of its own.
    pub fn with_cancel_token(mut self, cancel: CancelToken) -> BatchJob {
        self.cancel = cancel;
        self
    }

    /// The loaded batch.
    pub fn batch(&self) -> &Batch {
        &self.batch
    }

    /// A token that cancels the whole batch from any thread.
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// The job of one enabled VM (`None` for a disabled one), writing into its own directory.
    pub fn job(&self, vm: &BatchVm) -> Option<Job> {
        let manifest = vm.manifest.clone()?;
        let opts = JobOptions {
            id: Some(vm.id.clone()),
            output_dir: Some(vm.output_dir.clone()),
            ..self.opts.clone()
        };
        Some(Job::new(manifest, opts, self.cancel.child()))
    }

    /// Runs the enabled VMs, `parallel_limit` at once, highest priority first. `events` hears
    /// every VM's events with its id (from several threads). VM failures are in the outcome;
    /// `Err` only when the batch report cannot be written.
    pub fn run(&self, events: &(dyn Fn(&str, &Event) + Sync)) -> Result<BatchOutcome> {
        let started = Instant::now();
        let b = &self.batch;
        let queue = Mutex::new(b.run_order().into_iter().collect::<VecDeque<usize>>());
        let mut results: Vec<VmResult> = b.vms.iter().map(pending).collect();
        let slots: Vec<Mutex<&mut VmResult>> = results.iter_mut().map(Mutex::new).collect();
        let stop = AtomicBool::new(false);
        let sequence = AtomicUsize::new(0);
        let workers = b.parallel_limit.min(b.vms.iter().filter(|v| v.enabled).count()).max(1);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        // Popping, deciding and numbering under one lock: start_sequence is
                        // the order VMs really started in.
                        let (i, start) = {
                            let mut q = queue.lock().expect("queue");
                            let Some(i) = q.pop_front() else { break };
                            let why = if self.cancel.is_cancelled() {
                                Some("the batch was cancelled")
                            } else if stop.load(Ordering::SeqCst) {
                                Some(
                                    "not started: an earlier VM failed and \
                                     batch_metadata.continue_on_error is false",
                                )
                            } else {
                                None
                            };
                            match why {
                                Some(why) => (i, Err(why)),
                                None => (i, Ok(sequence.fetch_add(1, Ordering::SeqCst))),
                            }
                        };
                        let mut slot = slots[i].lock().expect("slot");
                        let n = match start {
                            Ok(n) => n,
                            Err(why) => {
                                slot.error = Some(why.to_string());
                                continue;
                            }
                        };
                        self.run_vm(&b.vms[i], n, &mut slot, events);
                        if slot.status == VmStatus::Failed && !b.continue_on_error {
                            stop.store(true, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        drop(slots);
        let count = |s: VmStatus| results.iter().filter(|r| r.status == s).count();
        let (ok, failed, skipped, not_run) = (
            count(VmStatus::Success),
            count(VmStatus::Failed),
            count(VmStatus::Skipped),
            count(VmStatus::NotRun),
        );
        let report = BatchReport {
            version: REPORT_VERSION.into(),
            hyper2kvm_version: crate::VERSION.into(),
            timestamp: rfc3339(SystemTime::now()),
            batch_manifest: b.path.clone(),
            batch_id: b.batch_id.clone(),
            success: failed == 0 && not_run == 0,
            duration_seconds: started.elapsed().as_secs_f64(),
            parallel_limit: b.parallel_limit,
            continue_on_error: b.continue_on_error,
            summary: format!(
                "batch {}: {ok} succeeded, {failed} failed, {skipped} skipped, {not_run} not run",
                b.batch_id
            ),
            vms: results,
        };
        std::fs::create_dir_all(&b.output_dir)
            .map_err(|e| crate::Error::io(&b.output_dir, "cannot create output directory", e))?;
        let report_path = b.output_dir.join(BATCH_REPORT);
        write_json(&report_path, &report)?;
        Ok(BatchOutcome { report, report_path })
    }

    fn run_vm(
        &self,
        vm: &BatchVm,
        n: usize,
        slot: &mut VmResult,
        events: &(dyn Fn(&str, &Event) + Sync),
    ) {
        let Some(job) = self.job(vm) else { return };
        let t = Instant::now();
        slot.start_sequence = Some(n);
        slot.started_at = Some(rfc3339(SystemTime::now()));
        let result = job.run(&mut |e| events(&vm.id, e));
        slot.duration_seconds = t.elapsed().as_secs_f64();
        let report_path = job
            .manifest()
            .manifest
            .options
            .report
            .enabled
            .then(|| vm.output_dir.join(&job.manifest().manifest.options.report.path));
        match result {
            Ok(outcome) => {
                slot.status = VmStatus::Success;
                slot.artifacts = outcome.report.artifacts.iter().map(|a| a.path.clone()).collect();
                slot.report = outcome.report_path;
            }
            Err(e) => {
                slot.status = VmStatus::Failed;
                slot.error = Some(e.to_string());
                slot.error_kind = Some(e.kind().as_str().to_string());
                slot.report = report_path.filter(|p| p.is_file());
            }
        }
    }
}

/// A VM's entry before it runs: skipped when disabled, else not run until it is.
fn pending(vm: &BatchVm) -> VmResult {
    VmResult {
        id: vm.id.clone(),
        manifest: vm.manifest_path.clone(),
        priority: vm.priority,
        status: if vm.enabled { VmStatus::NotRun } else { VmStatus::Skipped },
        output_directory: vm.output_dir.clone(),
        start_sequence: None,
        started_at: None,
        duration_seconds: 0.0,
        report: None,
        artifacts: Vec::new(),
        error: (!vm.enabled).then(|| "enabled is false".to_string()),
        error_kind: None,
    }
}
