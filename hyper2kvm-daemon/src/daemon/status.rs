//! The daemon's status: a JSON file in its state directory, rewritten as jobs start and end,
//! read by `hyper2kvm status`, and the one-line `STATUS=` text systemd shows.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use super::worker::Live;

/// Jobs by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Manifests waiting in the queue.
    pub queued: usize,
    /// Running now.
    pub running: usize,
    /// Waiting to be retried.
    pub retrying: usize,
    /// Succeeded since start.
    pub done: usize,
    /// Failed since start.
    pub failed: usize,
}

/// `status.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    /// `hyper2kvm@NAME`'s NAME.
    pub instance: Option<String>,
    /// The daemon's pid.
    pub pid: u32,
    /// `running`, `stopping` or `stopped`.
    pub state: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// The queue.
    pub watch_dir: PathBuf,
    /// The results.
    pub output_dir: PathBuf,
    /// Jobs at once.
    pub max_concurrent: usize,
    /// Whether inotify works (else scans only).
    pub inotify: bool,
    /// The counts.
    pub counts: Counts,
    /// The running jobs.
    pub jobs: Vec<Live>,
}

impl Status {
    /// The `STATUS=` line: counts, then the running VMs with their stage.
    pub fn line(&self) -> String {
        let c = &self.counts;
        let mut s = format!(
            "queued {}, running {}, done {}, failed {}",
            c.queued, c.running, c.done, c.failed
        );
        if c.retrying > 0 {
            s.push_str(&format!(", retrying {}", c.retrying));
        }
        if !self.jobs.is_empty() {
            let jobs: Vec<String> = self
                .jobs
                .iter()
                .map(|j| format!("{} {} {}%", j.vm_name, j.stage, j.percent))
                .collect();
            s.push_str(&format!("; {}", jobs.join(", ")));
        }
        if self.state == "stopping" {
            s = format!("stopping: {s}");
        }
        s
    }
}

/// The status file in `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("status.json")
}

/// Writes the status file (temporary name, then rename).
pub fn write(state_dir: &Path, s: &Status) {
    if let Err(e) = hyper2kvm::io::write_json(&path(state_dir), s) {
        tracing::warn!("cannot write the status file: {e}");
    }
}

/// `hyper2kvm status`: prints the status file (`--json`: as it is); exit 3 when no daemon is
/// running (the file is missing, says stopped, or names a dead process), like `systemctl
/// status`.
pub fn show(state_dir: &Path, json: bool) -> ExitCode {
    let p = path(state_dir);
    let s: Status = match std::fs::read(&p).map(|b| serde_json::from_slice(&b)) {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            eprintln!("hyper2kvm: error: {}: not a status file: {e}", p.display());
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("hyper2kvm: no daemon status at {} ({e}); is it running?", p.display());
            return ExitCode::from(3);
        }
    };
    let alive = s.state != "stopped" && Path::new(&format!("/proc/{}", s.pid)).exists();
    if json {
        let mut v = serde_json::to_value(&s).unwrap_or_default();
        v["alive"] = serde_json::Value::Bool(alive);
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!(
            "hyper2kvm daemon{}: {} (pid {}, since {})",
            s.instance.as_deref().map(|i| format!(" @{i}")).unwrap_or_default(),
            if alive { s.state.as_str() } else { "not running" },
            s.pid,
            s.started_at
        );
        println!("queue: {}  output: {}", s.watch_dir.display(), s.output_dir.display());
        println!("{}", s.line());
        println!("updated {}", s.updated_at);
    }
    if alive { ExitCode::SUCCESS } else { ExitCode::from(3) }
}
