//! The manifest pipeline (contract sections 1, 2 and 4): LOAD → VERIFY → INSPECT → FIX →
//! CONVERT → VALIDATE → OUTPUT, each stage on or off per the manifest, run by a [`Job`] that
//! reports typed [`Event`]s, can be cancelled from another thread and has a timeout, and that
//! writes `report.json` ([`report`]).
//!
//! A batch manifest runs its VMs' jobs side by side through a [`BatchJob`] ([`batch`]).
//!
//! Inspection and fixes run on the converted disks before they are renamed into place (the
//! data is copied once), so with `pipeline.convert.enabled: false` they are skipped too.

pub mod batch;
mod job;
pub mod report;
mod run;
mod stages;
mod verify;

pub use crate::progress::Stage;
pub use batch::{BatchJob, BatchOutcome, BatchReport, VmResult, VmStatus};
pub use job::{ConvertDefaults, Job, JobOptions, JobOutcome, Plan, boot_order};
pub use run::{ManifestRun, RunOutcome, RunPlan, VmPlan};
pub use stages::Event;

/// `p` made absolute from the current directory (unchanged when it already is, or when the
/// current directory cannot be read).
pub(crate) fn absolute(p: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
