//! [`ManifestRun`]: either kind of manifest file, loaded, planned or run through one API, so
//! the command line, the C ABI and the Python module need no case of their own.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::batch::{BatchJob, BatchOutcome};
use super::job::{Job, JobOptions, JobOutcome, Plan};
use super::stages::Event;
use crate::error::Result;
use crate::manifest::{self, ManifestFile};
use crate::progress::CancelToken;

/// A loaded VM or batch manifest.
#[derive(Debug)]
pub enum ManifestRun {
    /// One VM.
    Vm(Box<Job>),
    /// Several.
    Batch(Box<BatchJob>),
}

/// A dry run's plans, one per VM to run (a VM manifest has one, named after its VM).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunPlan {
    /// `(VM id or name, its plan)`, in the order they would start.
    pub vms: Vec<VmPlan>,
    /// The batch's disabled VMs (`enabled: false`).
    pub skipped: Vec<String>,
}

/// One VM's plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmPlan {
    /// The VM's id in the batch, or its name.
    pub id: String,
    /// What would happen.
    pub plan: Plan,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunOutcome {
    /// A VM manifest's report.
    Vm(Box<JobOutcome>),
    /// A batch's report.
    Batch(Box<BatchOutcome>),
}

impl RunOutcome {
    /// True when every VM succeeded.
    pub fn success(&self) -> bool {
        match self {
            RunOutcome::Vm(o) => o.report.pipeline.success,
            RunOutcome::Batch(b) => b.report.success,
        }
    }

    /// Every file written, in order (the lines HyperSDK reads as `Output:`).
    pub fn outputs(&self) -> Vec<&Path> {
        match self {
            RunOutcome::Vm(o) => o.report.artifacts.iter().map(|a| a.path.as_path()).collect(),
            RunOutcome::Batch(b) => b
                .report
                .vms
                .iter()
                .flat_map(|v| v.artifacts.iter().map(|p| p.as_path()))
                .chain(std::iter::once(b.report_path.as_path()))
                .collect(),
        }
    }
}

impl ManifestRun {
    /// Loads and checks a VM or batch manifest (every violation in the one error); `cancel`
    /// stops the run (a binding's job handle, a signal handler's flag).
    pub fn load(path: &Path, opts: JobOptions, cancel: CancelToken) -> Result<ManifestRun> {
        Ok(match manifest::load(path)? {
            ManifestFile::Vm(m) => ManifestRun::Vm(Box::new(Job::new(*m, opts, cancel))),
            ManifestFile::Batch(b) => {
                ManifestRun::Batch(Box::new(BatchJob::new(b, opts).with_cancel_token(cancel)))
            }
        })
    }

    /// Cancels the run (every VM of a batch) from any thread.
    pub fn cancel_token(&self) -> CancelToken {
        match self {
            ManifestRun::Vm(j) => j.cancel_token(),
            ManifestRun::Batch(b) => b.cancel_token(),
        }
    }

    /// Unknown fields and the like, of every manifest read.
    pub fn warnings(&self) -> &[String] {
        match self {
            ManifestRun::Vm(j) => &j.manifest().warnings,
            ManifestRun::Batch(b) => &b.batch().warnings,
        }
    }

    /// Every directory the run writes into (a batch's own and each enabled VM's), absolute.
    pub fn output_dirs(&self) -> Vec<PathBuf> {
        match self {
            ManifestRun::Vm(j) => vec![j.output_dir()],
            ManifestRun::Batch(b) => {
                let batch = b.batch();
                std::iter::once(super::absolute(&batch.output_dir))
                    .chain(
                        batch
                            .vms
                            .iter()
                            .filter(|v| v.enabled)
                            .map(|v| super::absolute(&v.output_dir)),
                    )
                    .collect()
            }
        }
    }

    /// The dry run of every VM, in the order they would start. Writes nothing.
    pub fn plan(&self) -> Result<RunPlan> {
        match self {
            ManifestRun::Vm(j) => Ok(RunPlan {
                vms: vec![VmPlan { id: j.manifest().manifest.vm_name(), plan: j.plan()? }],
                skipped: Vec::new(),
            }),
            ManifestRun::Batch(b) => {
                let batch = b.batch();
                let mut vms = Vec::new();
                for &i in &batch.run_order() {
                    if let Some(job) = b.job(&batch.vms[i]) {
                        vms.push(VmPlan { id: batch.vms[i].id.clone(), plan: job.plan()? });
                    }
                }
                let skipped =
                    batch.vms.iter().filter(|v| !v.enabled).map(|v| v.id.clone()).collect();
                Ok(RunPlan { vms, skipped })
            }
        }
    }

    /// Runs it; `events` hears every event with the VM's id (or name). A batch calls it from
    /// several threads at once. A failed VM manifest is an `Err`; a batch's VM failures are in
    /// its outcome.
    pub fn run(&self, events: &(dyn Fn(&str, &Event) + Sync)) -> Result<RunOutcome> {
        match self {
            ManifestRun::Vm(j) => {
                let name = j.manifest().manifest.vm_name();
                j.run(&mut |e| events(&name, e)).map(|o| RunOutcome::Vm(Box::new(o)))
            }
            ManifestRun::Batch(b) => b.run(events).map(|o| RunOutcome::Batch(Box::new(o))),
        }
    }

    /// The document the C ABI and the Python module return: with `dry_run`
    /// `{"dry_run": true, "warnings", "plan"}` (nothing written), else
    /// `{"success", "outputs", "result"}` after [`run`](Self::run).
    pub fn document(
        &self,
        dry_run: bool,
        events: &(dyn Fn(&str, &Event) + Sync),
    ) -> Result<serde_json::Value> {
        if dry_run {
            let plan = self.plan()?;
            return Ok(serde_json::json!({
                "dry_run": true,
                "warnings": self.warnings(),
                "plan": plan,
            }));
        }
        let outcome = self.run(events)?;
        Ok(serde_json::json!({
            "success": outcome.success(),
            "outputs": outcome.outputs(),
            "result": outcome,
        }))
    }
}
