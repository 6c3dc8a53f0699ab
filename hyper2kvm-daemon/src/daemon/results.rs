//! What a finished job leaves for HyperSDK and the operator: `{vm_name}.error` (the message
//! HyperSDK shows) with `{vm_name}.error.json` beside it, source clean-up after a verified
//! success, libvirt definition, and what the webhook and the mail say.

use std::path::{Path, PathBuf};

use hyper2kvm::Error;
use serde_json::{Value, json};

use super::config::Config;
use super::worker::Attempt;

/// Whether a failure may pass on a later attempt: I/O trouble (a full disk) and crashed tools,
/// never bad input, a timeout or a cancellation.
pub fn transient(e: &Error) -> bool {
    use hyper2kvm::ErrorKind::*;
    matches!(e.kind(), Io | ToolFailed)
}

/// Writes `{vm}.error` and `{vm}.error.json` in the job's output directory.
pub fn write_error(a: &Attempt, e: &Error) -> std::io::Result<PathBuf> {
    let vm = &a.work.vm_name;
    std::fs::create_dir_all(&a.output_dir)?;
    let detail = json!({
        "error": e.to_json(),
        "vm_name": vm,
        "manifest": a.work.claimed.name,
        "job_id": a.work.claimed.id,
        "attempts": a.work.attempt,
        "transient": transient(e),
        "timestamp": hyper2kvm::io::rfc3339(std::time::SystemTime::now()),
        "hyper2kvm_version": hyper2kvm::VERSION,
    });
    let json_path = a.output_dir.join(format!("{vm}.error.json"));
    let text_path = a.output_dir.join(format!("{vm}.error"));
    let io = |e: Error| std::io::Error::other(e.to_string());
    hyper2kvm::io::write_json(&json_path, &detail).map_err(io)?;
    hyper2kvm::io::write_atomically(&text_path, format!("{e}\n").as_bytes()).map_err(io)?;
    Ok(text_path)
}

/// Where earlier results go when a new job of the same VM name is claimed.
pub const SUPERSEDED: &str = ".hyper2kvm/superseded";

/// HyperSDK polls `{vm}.qcow2` before `{vm}.error` and clears neither: when a job for `vm` is
/// claimed, the results an earlier job of that name left in `out` (the disks, the domain and
/// its NVRAM, the report, the error files — the fixed names, `{vm}-{id}` for each of the new
/// manifest's `disk_ids`, HyperSDK's `{vm}-disk-N`, and whatever the earlier report lists in
/// `out`) are moved into
/// `out/.hyper2kvm/superseded/{vm}-{time}/`, never deleted, so no stale file can decide the
/// new job. Returns that directory when something was moved.
pub fn supersede(out: &Path, vm: &str, disk_ids: &[String]) -> std::io::Result<Option<PathBuf>> {
    let mut names: Vec<String> = ["qcow2", "raw", "xml", "report.json", "error", "error.json"]
        .iter()
        .map(|ext| format!("{vm}.{ext}"))
        .collect();
    names.push(format!("{vm}_VARS.fd"));
    for id in disk_ids {
        let id = hyper2kvm::io::safe_file_stem(id);
        names.push(format!("{vm}-{id}.qcow2"));
        names.push(format!("{vm}-{id}.raw"));
    }
    // HyperSDK names its disks disk-0, disk-1, …: an earlier export may have had more.
    let prefix = format!("{vm}-disk-");
    for e in std::fs::read_dir(out).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let digits = n
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".qcow2").or_else(|| r.strip_suffix(".raw")));
        if digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) {
            names.push(n);
        }
    }
    if let Ok(text) = std::fs::read_to_string(out.join(format!("{vm}.report.json")))
        && let Ok(report) = serde_json::from_str::<Value>(&text)
    {
        for a in report["artifacts"].as_array().into_iter().flatten() {
            let Some(p) = a["path"].as_str().map(Path::new) else { continue };
            if p.parent() == Some(out)
                && let Some(n) = p.file_name().and_then(|n| n.to_str())
            {
                names.push(n.to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    let present: Vec<&String> =
        names.iter().filter(|n| out.join(n).symlink_metadata().is_ok()).collect();
    if present.is_empty() {
        return Ok(None);
    }
    let stamp = hyper2kvm::io::rfc3339(std::time::SystemTime::now()).replace([':', '-'], "");
    let parent = out.join(SUPERSEDED);
    std::fs::create_dir_all(&parent)?;
    let mut dir = parent.join(format!("{vm}-{stamp}"));
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = parent.join(format!("{vm}-{stamp}-{n}"));
    }
    std::fs::create_dir(&dir)?;
    for name in present {
        std::fs::rename(out.join(name), dir.join(name))?;
    }
    Ok(Some(dir))
}

/// `CLEANUP_SOURCE`: deletes the source disks of a verified success, but only those inside the
/// queue directory or `ALLOWED_INPUT_DIRS` (a manifest cannot make us delete anything else).
pub fn cleanup_sources(cfg: &Config, queue_dir: &Path, a: &Attempt) {
    if !cfg.cleanup_source {
        return;
    }
    if !a.verified {
        tracing::warn!(
            "[{}] CLEANUP_SOURCE: sources kept, the success was not verified (no checksums and \
             no image check)",
            a.work.claimed.id
        );
        return;
    }
    let roots: Vec<PathBuf> = std::iter::once(queue_dir.to_path_buf())
        .chain(cfg.allowed_input_dirs.iter().cloned())
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .collect();
    for s in &a.sources {
        match std::fs::canonicalize(s) {
            Ok(real) if roots.iter().any(|r| real.starts_with(r)) => {
                match std::fs::remove_file(s) {
                    Ok(()) => {
                        tracing::info!("[{}] removed source {}", a.work.claimed.id, s.display())
                    }
                    Err(e) => {
                        tracing::warn!("[{}] cannot remove {}: {e}", a.work.claimed.id, s.display())
                    }
                }
            }
            _ => tracing::warn!(
                "[{}] CLEANUP_SOURCE: {} is outside the queue and ALLOWED_INPUT_DIRS; kept",
                a.work.claimed.id,
                s.display()
            ),
        }
    }
}

/// `LIBVIRT_INTEGRATION`: defines the domain written by the job.
pub fn define(cfg: &Config, a: &Attempt) -> Option<String> {
    use hyper2kvm::libvirt::define::{DefineOptions, define_file};
    let report = &a.result.as_ref().ok()?.report;
    if !cfg.libvirt.integration {
        return None;
    }
    let xml_path = report.artifacts.iter().find(|x| x.kind == "domain")?.path.clone();
    let disks: Vec<PathBuf> =
        report.artifacts.iter().filter(|x| x.kind == "disk").map(|x| x.path.clone()).collect();
    let opts = DefineOptions {
        uri: Some(cfg.libvirt.uri.clone()),
        autostart: cfg.libvirt.autostart,
        pool: Some(cfg.libvirt.pool.clone()).filter(|p| !p.is_empty()),
    };
    Some(match define_file(&xml_path, &disks, &opts) {
        Ok(d) => format!("defined domain {} in {}", d.name, d.uri),
        Err(e) => format!("warning: libvirt define failed (the outputs are fine): {e}"),
    })
}

/// The webhook's JSON body.
pub fn event(a: &Attempt, error_file: Option<&Path>) -> Value {
    let (status, outputs, error) = match &a.result {
        Ok(o) => (
            "succeeded",
            o.report.artifacts.iter().map(|x| x.path.clone()).collect::<Vec<_>>(),
            None,
        ),
        Err(e) => ("failed", Vec::new(), Some(e.to_json())),
    };
    json!({
        "event": format!("job.{status}"),
        "job_id": a.work.claimed.id,
        "manifest": a.work.claimed.name,
        "vm_name": a.work.vm_name,
        "attempts": a.work.attempt,
        "outputs": outputs,
        "error": error,
        "error_file": error_file,
        "timestamp": hyper2kvm::io::rfc3339(std::time::SystemTime::now()),
    })
}

/// What the webhook and the mail say about a finished job.
pub fn finished(a: &Attempt, error_file: Option<&Path>) -> super::deliver::Finished {
    let event = event(a, error_file);
    let w = &a.work;
    let (verdict, detail) = match &a.result {
        Ok(o) => ("succeeded", o.report.summary.clone()),
        Err(e) => ("failed", e.to_string()),
    };
    let mut text = format!(
        "Job {} ({}) {verdict} on attempt {}.\n\nManifest: {}\n{detail}\n",
        w.claimed.id, w.vm_name, w.attempt, w.claimed.name
    );
    if let Ok(o) = &a.result {
        text.push_str("\nOutputs:\n");
        for x in &o.report.artifacts {
            text.push_str(&format!("  {}\n", x.path.display()));
        }
    }
    if let Some(f) = error_file {
        text.push_str(&format!("\nError file: {}\n", f.display()));
    }
    super::deliver::Finished {
        job_id: w.claimed.id.clone(),
        event,
        subject: format!("hyper2kvm: {} {verdict} (job {})", w.vm_name, w.claimed.id),
        text,
    }
}
