//! `report.json` (contract section 4): what a job did, stage by stage, what it wrote, what it
//! found in the guest and every change it made there.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

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
    /// `load`, `verify`, `inspect`, `fix`, `convert`, `validate`, `output`.
    pub name: String,
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
            os: i.os_type.clone(),
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

/// `print_fstab`'s record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FstabBeforeAfter {
    /// Before the fixes.
    pub before: String,
    /// After them.
    pub after: String,
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-11-26T02:43:14Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_660_994)),
            "2026-11-26T02:43:14Z"
        );
    }
}
