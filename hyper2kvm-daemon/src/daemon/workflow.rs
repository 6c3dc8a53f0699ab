//! The workflow-directory protocol (contract §3b) that HyperSDK's `hyperctl manifest …`, its
//! dashboard and REST API feed, served beside the manifest queue when `WORKFLOW_DIR` is set:
//!
//! ```text
//! WORKFLOW_DIR/to_be_processed/NAME.json      arrives (<base>-YYYYMMDD-HHMMSS.json)
//!             /processing/NAME.json           while it runs (+ NAME.json.meta.json: its owner)
//!             /processed/YYYY-MM-DD/NAME.json + NAME.json.report.json
//!             /failed/YYYY-MM-DD/NAME.json    + NAME.json.error.json
//! ```
//! (dates in UTC). `*.meta.json`, `*.report.json` and `*.error.json` are never jobs; hyperctl
//! ignores them when it counts.
//!
//! Crash safety, as for the manifest queue: a worker claims a file by creating its
//! `processing/NAME.json.meta.json` exclusively (`O_EXCL`: of two workers, on one host or two
//! sharing the directory, one wins) and then renaming the file into `processing/`. A meta file
//! whose owner died (a dead pid on this host, or a heartbeat older than ten minutes from
//! another host) is recovered: the file goes back to `to_be_processed/` and runs again from
//! scratch. A job cancelled because the daemon stops is put back the same way.
//!
//! One worker thread runs one job at a time with the synchronous engine; a document that is not
//! JSON (once unchanged for `SETTLE_SECONDS`), names a source we cannot read (a vCenter
//! inventory path), or fails, ends in `failed/` with its `.error.json`, and the worker goes on.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use hyper2kvm::io::rfc3339;
use hyper2kvm::manifest::workflow::{self, WorkflowVm};
use hyper2kvm::{CancelToken, Error, ErrorKind};
use serde_json::{Value, json};

use super::config::Config;
use super::queue::{alive, hostname};

const INBOX: &str = "to_be_processed";
const PROCESSING: &str = "processing";
const PROCESSED: &str = "processed";
const FAILED: &str = "failed";
/// A heartbeat older than this means the owner on another host is gone.
const STALE: Duration = Duration::from_secs(600);
const HEARTBEAT: Duration = Duration::from_secs(60);

/// The running worker.
pub struct Worker {
    handle: JoinHandle<()>,
    stop: Arc<AtomicBool>,
    busy: Arc<AtomicBool>,
}

impl Worker {
    /// Starts serving `root` (its directories are created).
    pub fn start(root: PathBuf, cfg: Arc<Config>, cancel: CancelToken) -> io::Result<Worker> {
        for d in [INBOX, PROCESSING, PROCESSED, FAILED] {
            fs::create_dir_all(root.join(d))?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(AtomicBool::new(false));
        let (s, b) = (stop.clone(), busy.clone());
        let handle = std::thread::Builder::new()
            .name("workflow".into())
            .spawn(move || serve(&root, &cfg, &cancel, &s, &b))?;
        Ok(Worker { handle, stop, busy })
    }

    /// Takes no new job from now on.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// A job is running.
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst)
    }

    /// Waits for the thread (after [`stop`](Self::stop); cancel the token to cut a job short).
    pub fn join(self) {
        let _ = self.handle.join();
    }
}

fn today() -> String {
    rfc3339(SystemTime::now())[..10].to_string()
}

/// `NAME.json` files waiting in the inbox, oldest name first.
fn waiting(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(root.join(INBOX))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.ends_with(".json")
                && !n.starts_with('.')
                && ![".meta.json", ".report.json", ".error.json"].iter().any(|s| n.ends_with(s))
        })
        .collect();
    v.sort();
    v
}

fn meta_path(root: &Path, name: &str) -> PathBuf {
    root.join(PROCESSING).join(format!("{name}.meta.json"))
}

/// Claims `name`: the meta file exclusively, then the rename. `None` when another worker has it.
fn claim(root: &Path, name: &str, job_id: &str) -> io::Result<Option<PathBuf>> {
    let meta = meta_path(root, name);
    let mut f = match fs::OpenOptions::new().write(true).create_new(true).open(&meta) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(e),
    };
    let owner = json!({"job_id": job_id, "host": hostname(), "pid": std::process::id(),
                       "claimed_at": rfc3339(SystemTime::now())});
    f.write_all(owner.to_string().as_bytes())?;
    drop(f);
    let to = root.join(PROCESSING).join(name);
    match fs::rename(root.join(INBOX).join(name), &to) {
        Ok(()) => Ok(Some(to)),
        Err(e) => {
            let _ = fs::remove_file(&meta);
            if e.kind() == io::ErrorKind::NotFound { Ok(None) } else { Err(e) }
        }
    }
}

/// Puts a claimed file back into the inbox.
fn requeue(root: &Path, name: &str) -> io::Result<()> {
    let from = root.join(PROCESSING).join(name);
    if from.exists() {
        fs::rename(&from, root.join(INBOX).join(name))?;
    }
    let _ = fs::remove_file(meta_path(root, name));
    Ok(())
}

/// Requeues the jobs of dead owners; their names.
fn recover(root: &Path) -> Vec<String> {
    let me = hostname();
    let mut back = Vec::new();
    for e in fs::read_dir(root.join(PROCESSING)).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(name) = n.strip_suffix(".meta.json") else { continue };
        let owner: Value = fs::read(e.path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let pid = owner["pid"].as_u64().unwrap_or(0) as u32;
        let dead = if owner["host"].as_str() == Some(me.as_str()) {
            pid != std::process::id() && !alive(pid)
        } else {
            let age = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
            age.is_none_or(|a| a > STALE)
        };
        if dead && requeue(root, name).is_ok() {
            back.push(name.to_string());
        }
    }
    back
}

/// Moves the finished file into `state/<date>/` with its result document beside it.
fn finish(root: &Path, name: &str, state: &str, suffix: &str, doc: &Value) -> io::Result<PathBuf> {
    let dir = root.join(state).join(today());
    fs::create_dir_all(&dir)?;
    let side = dir.join(format!("{name}{suffix}"));
    hyper2kvm::io::write_json(&side, doc).map_err(|e| io::Error::other(e.to_string()))?;
    let to = dir.join(name);
    fs::rename(root.join(PROCESSING).join(name), &to)?;
    let _ = fs::remove_file(meta_path(root, name));
    Ok(to)
}

/// Refreshes the owner's heartbeat (the meta file's mtime) while a job runs.
fn heartbeat(meta: PathBuf, done: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut last = Instant::now();
        while !done.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
            if last.elapsed() >= HEARTBEAT {
                if let Ok(f) = fs::File::options().append(true).open(&meta) {
                    let _ = f.set_modified(SystemTime::now());
                }
                last = Instant::now();
            }
        }
    })
}

/// How one file ended.
enum Outcome {
    Processed(Value),
    Failed(Error, Value),
    Cancelled,
}

/// Runs every VM of one workflow document.
fn run_doc(path: &Path, cfg: &Config, cancel: &CancelToken) -> Outcome {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(Error::io(path, "reading", e), Value::Null),
    };
    let doc: Value = match serde_json::from_slice(&bytes) {
        Ok(d) => d,
        Err(e) => {
            return Outcome::Failed(
                Error::invalid(path, format!("is not a JSON document: {e}")),
                Value::Null,
            );
        }
    };
    let vms: Vec<WorkflowVm> = match workflow::parse(&doc, &cfg.output_dir) {
        Ok(v) => v,
        Err(problems) => {
            return Outcome::Failed(
                Error::invalid(path, format!("workflow manifest: {}", problems.join("; "))),
                Value::Null,
            );
        }
    };
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for vm in vms {
        if cancel.is_cancelled() {
            return Outcome::Cancelled;
        }
        tracing::info!(
            "workflow {}: converting {} into {}",
            vm.name,
            vm.source.display(),
            vm.output_dir.display()
        );
        let r = fs::create_dir_all(&vm.output_dir)
            .map_err(|e| Error::io(&vm.output_dir, "cannot create", e))
            .and_then(|_| {
                hyper2kvm::convert(
                    &vm.source,
                    &vm.output_dir,
                    &vm.options,
                    &mut |_| {},
                    &cancel.child(),
                )
            });
        match r {
            Ok(report) => results.push(json!({"name": vm.name, "success": true, "report": report})),
            Err(e) if e.kind() == ErrorKind::Cancelled => return Outcome::Cancelled,
            Err(e) => {
                failed.push(format!("{}: {e}", vm.name));
                results.push(json!({"name": vm.name, "success": false, "error": e.to_json()}));
            }
        }
    }
    if failed.is_empty() {
        Outcome::Processed(json!({"vms": results}))
    } else {
        Outcome::Failed(
            Error::new(
                ErrorKind::Internal,
                format!(
                    "{} of {} VM(s) failed: {}",
                    failed.len(),
                    results.len(),
                    failed.join("; ")
                ),
            ),
            json!({"vms": results}),
        )
    }
}

/// The worker's loop.
fn serve(root: &Path, cfg: &Config, cancel: &CancelToken, stop: &AtomicBool, busy: &AtomicBool) {
    tracing::info!("serving the workflow directories under {}", root.display());
    // Files that do not parse yet: first seen (size, mtime) and when.
    let mut unsettled: std::collections::HashMap<String, (u64, SystemTime, Instant)> =
        Default::default();
    let mut next_recover = Instant::now();
    let mut seq = 0u64;
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() >= next_recover {
            for n in recover(root) {
                tracing::warn!("workflow {n}: its worker died; it runs again from scratch");
            }
            next_recover = Instant::now() + cfg.poll_interval;
        }
        let mut ran = false;
        for name in waiting(root) {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let inbox = root.join(INBOX).join(&name);
            let Ok(md) = fs::metadata(&inbox) else { continue };
            let complete =
                fs::read(&inbox).ok().is_some_and(|b| serde_json::from_slice::<Value>(&b).is_ok());
            if !complete {
                let now = (md.len(), md.modified().unwrap_or(SystemTime::UNIX_EPOCH));
                let seen = unsettled.entry(name.clone()).or_insert((now.0, now.1, Instant::now()));
                if (seen.0, seen.1) != now {
                    *seen = (now.0, now.1, Instant::now());
                }
                if seen.2.elapsed() < cfg.settle {
                    continue;
                }
            }
            unsettled.remove(&name);
            seq += 1;
            let job_id = format!("wf-{}-{}-{seq}", hostname(), std::process::id());
            let claimed = match claim(root, &name, &job_id) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!("workflow {name}: cannot claim: {e}");
                    continue;
                }
            };
            busy.store(true, Ordering::SeqCst);
            ran = true;
            let done = Arc::new(AtomicBool::new(false));
            let beat = heartbeat(meta_path(root, &name), done.clone());
            tracing::info!("workflow {name}: claimed as {job_id}");
            let outcome = run_doc(&claimed, cfg, cancel);
            done.store(true, Ordering::SeqCst);
            let _ = beat.join();
            let moved = match outcome {
                Outcome::Processed(result) => {
                    let doc = json!({"job_id": job_id, "original_name": name, "status": "processed",
                                     "processed_at": rfc3339(SystemTime::now()),
                                     "hyper2kvm_version": hyper2kvm::VERSION, "result": result});
                    finish(root, &name, PROCESSED, ".report.json", &doc)
                        .map(|p| tracing::info!("workflow {name}: processed ({})", p.display()))
                }
                Outcome::Failed(e, result) => {
                    let doc = json!({"job_id": job_id, "original_name": name,
                                     "failed_at": rfc3339(SystemTime::now()), "error": e.to_string(),
                                     "exception": e.kind().as_str(), "status": "failed",
                                     "result": result});
                    tracing::warn!("workflow {name}: failed: {e}");
                    finish(root, &name, FAILED, ".error.json", &doc).map(|_| ())
                }
                Outcome::Cancelled => {
                    tracing::info!("workflow {name}: cancelled; put back for the next start");
                    requeue(root, &name)
                }
            };
            if let Err(e) = moved {
                tracing::error!("workflow {name}: cannot move the finished file: {e}");
            }
            busy.store(false, Ordering::SeqCst);
        }
        if !ran {
            let until = Instant::now() + cfg.poll_interval.min(Duration::from_secs(1));
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
