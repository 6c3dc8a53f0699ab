//! `report.json` (contract section 4): what a job did, stage by stage, what it wrote, what it
//! found in the guest and every change it made there.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::io::rfc3339;

use serde::Serialize;

pub use crate::convert::FstabBeforeAfter;
use crate::fix::Change;
use crate::guest::inspect::Inspection;

/// Version of the report format.
pub const REPORT_VERSION: &str = "1.0";

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StageStatus {
    /// Ran and succeeded.
    Success,
    /// Ran and failed (the job failed).
    Failed,
    /// Turned off by the manifest, or nothing to do.
    Skipped,
}

/// One stage in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageReport {
    /// Which stage.
    pub name: crate::progress::Stage,
    /// How it ended.
    pub status: StageStatus,
    /// Wall time.
    pub duration_seconds: f64,
    /// Stage-specific facts.
    pub details: serde_json::Value,
}

/// `pipeline` in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineReport {
    /// True when every stage that ran succeeded.
    pub success: bool,
    /// Wall time of the job.
    pub duration_seconds: f64,
    /// The stages in order.
    pub stages: Vec<StageReport>,
}

/// One file the job wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artifact {
    /// Where.
    pub path: PathBuf,
    /// `disk`, `domain`, `nvram`, `report`.
    pub kind: String,
    /// `qcow2`, `raw`, `xml`, `fd`, `json`.
    pub format: String,
    /// Size.
    pub bytes: u64,
    /// SHA-256 of the file (absent for the report itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// What inspection found, in the report's words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuestSummary {
    /// `linux`, `windows`.
    pub os: String,
    /// Distribution.
    pub distro: String,
    /// Version.
    pub version: String,
    /// Architecture.
    pub arch: String,
    /// `bios` or `uefi`.
    pub firmware: String,
    /// Everything inspection read.
    pub details: Inspection,
}

impl GuestSummary {
    /// From an inspection.
    pub fn from_inspection(i: &Inspection) -> GuestSummary {
        GuestSummary {
            os: i.os_type.to_string(),
            distro: i.distro.clone(),
            version: i.version.clone(),
            arch: i.arch.clone(),
            firmware: i.firmware.clone(),
            details: i.clone(),
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub version: String,
    /// This program's version.
    pub hyper2kvm_version: String,
    /// When the job ended (RFC 3339, UTC).
    pub timestamp: String,
    /// The manifest file.
    pub input_manifest: PathBuf,
    /// Stage by stage.
    pub pipeline: PipelineReport,
    /// Files written.
    pub artifacts: Vec<Artifact>,
    /// Warnings (the manifest's unknown fields, the stages' findings).
    pub warnings: Vec<String>,
    /// Errors (the job failed when there is any).
    pub errors: Vec<String>,
    /// One line for people.
    pub summary: String,
    /// What inspection found.
    pub guest: Option<GuestSummary>,
    /// Every change made inside the guest.
    pub changes: Vec<Change>,
    /// `/etc/fstab` before and after the fixes, when `print_fstab` asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fstab: Option<FstabBeforeAfter>,
    /// The boot-chain verifier's answer on the converted guest (Linux guests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_verdict: Option<crate::bootchain::Verdict>,
}

impl Report {
    /// The one way a report is made: a job on `input_manifest` that ran for `duration_seconds`
    /// through `stages`, ended now with `errors` (none: it succeeded); the caller fills in
    /// what the job found and wrote.
    pub(crate) fn new(
        input_manifest: PathBuf,
        stages: Vec<StageReport>,
        duration_seconds: f64,
        warnings: Vec<String>,
        errors: Vec<String>,
        summary: String,
    ) -> Report {
        Report {
            version: REPORT_VERSION.into(),
            hyper2kvm_version: crate::VERSION.into(),
            timestamp: rfc3339(SystemTime::now()),
            input_manifest,
            pipeline: PipelineReport { success: errors.is_empty(), duration_seconds, stages },
            artifacts: Vec::new(),
            warnings,
            errors,
            summary,
            guest: None,
            changes: Vec::new(),
            fstab: None,
            boot_verdict: None,
        }
    }
}
