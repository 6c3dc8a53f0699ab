//! The queue directory: which files are manifests ready to run, claiming one, and the job
//! records kept beside the queue in `WATCH_DIR/.hyper2kvm/`.
//!
//! - A candidate is a regular file named `*.json`, `*.yaml` or `*.yml`, not hidden and not
//!   `*.tmp`/`*.part`. HyperSDK writes manifests in place, not atomically, so a JSON file counts
//!   as complete once it parses; YAML (whose prefixes often parse) and anything that does not
//!   parse count once unchanged (size and mtime) for `SETTLE_SECONDS` — a file that is still
//!   unparseable then is a bad manifest and gets its `.error`.
//! - Symbolic links, FIFOs and other non-regular files named like manifests, and files over the
//!   manifest size limit, are claimed at once and refused with a `.error`.
//! - Claiming is `rename(2)` of the manifest into `.hyper2kvm/jobs/ID/`, on the same file
//!   system: of two daemons (two instances, or two hosts on shared NFS) exactly one rename
//!   succeeds, so no manifest runs twice. The job id holds the owner's host and pid.
//! - A job whose owner died (`kill -9`, power loss) is found by [`Queue::recover`]: its manifest
//!   is renamed back into the queue and runs again from scratch; the old record moves to
//!   `.hyper2kvm/interrupted/`. Owners on other hosts are judged by the heartbeat (`job.json`'s
//!   mtime, refreshed every minute); a job with this host and this process's pid but claimed
//!   before this process started belongs to a predecessor (a restarted container's pid 1).
//! - Finished records move to `.hyper2kvm/done/` or `.hyper2kvm/failed/` and are pruned after
//!   `RETENTION_DAYS` / `FAILED_RETENTION_DAYS`.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The hidden directory in the queue that holds job records.
pub const RECORDS: &str = ".hyper2kvm";

/// A heartbeat older than this means the owner on another host is gone.
const STALE_HEARTBEAT: Duration = Duration::from_secs(600);

/// What a scan found ready.
#[derive(Debug, Clone, PartialEq)]
pub enum Ready {
    /// A complete manifest; the parsed document when it parsed.
    Manifest { name: String, doc: Option<serde_json::Value> },
    /// Something to refuse (claimed so that it leaves the queue, then answered with `.error`).
    Refuse { name: String, why: String },
}

impl Ready {
    /// The file's name in the queue.
    pub fn name(&self) -> &str {
        match self {
            Ready::Manifest { name, .. } | Ready::Refuse { name, .. } => name,
        }
    }
}

#[derive(Debug, Clone)]
struct Seen {
    size: u64,
    mtime: SystemTime,
    since: Instant,
    parses: bool,
}

/// A claimed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// `STEM.MILLIS.HOST.PID.N`.
    pub id: String,
    /// `.hyper2kvm/jobs/ID`.
    pub dir: PathBuf,
    /// The manifest inside it.
    pub manifest: PathBuf,
    /// Its name in the queue.
    pub name: String,
}

/// `job.json`: a job's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The job id.
    pub id: String,
    /// The manifest's name in the queue.
    pub manifest: String,
    /// `running`, `retrying`, `done`, `failed`, `interrupted`.
    pub state: String,
    /// The VM name outputs are named after.
    pub vm_name: Option<String>,
    /// Runs so far.
    pub attempts: u32,
    /// RFC 3339.
    pub claimed_at: String,
    /// RFC 3339, when finished.
    pub finished_at: Option<String>,
    /// The last error.
    pub error: Option<String>,
    /// `host/instance` that owns it.
    pub owner: String,
}

/// The queue directory and its records.
#[derive(Debug)]
pub struct Queue {
    watch: PathBuf,
    records: PathBuf,
    settle: Duration,
    seen: HashMap<String, Seen>,
    host: String,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// When this process first opened a queue (ms since the epoch). A job id with this process's
/// pid but an earlier time belongs to a predecessor that had the same pid: a restarted
/// container, where the daemon is always pid 1, or a reused pid.
static OPENED: std::sync::OnceLock<u128> = std::sync::OnceLock::new();

fn now_millis() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
}

/// This machine's name (for job ids and ownership).
pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn is_manifest_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.starts_with('.')
        && !lower.ends_with(".tmp")
        && !lower.ends_with(".part")
        && (lower.ends_with(".json") || lower.ends_with(".yaml") || lower.ends_with(".yml"))
}

fn parse(name: &str, bytes: &[u8]) -> Option<serde_json::Value> {
    if name.to_ascii_lowercase().ends_with(".json") {
        serde_json::from_slice(bytes).ok()
    } else {
        serde_yaml_ng::from_slice(bytes).ok()
    }
}

/// Whether process `pid` on this host is alive and is a hyper2kvm.
pub(crate) fn alive(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("hyper2kvm"))
        .unwrap_or(false)
}

impl Queue {
    /// The queue at `watch` (created if missing, with its record directories).
    pub fn open(watch: &Path, settle: Duration) -> io::Result<Queue> {
        OPENED.get_or_init(now_millis);
        let records = watch.join(RECORDS);
        for d in ["jobs", "done", "failed", "interrupted"] {
            fs::create_dir_all(records.join(d))?;
        }
        Ok(Queue {
            watch: watch.to_path_buf(),
            records,
            settle,
            seen: HashMap::new(),
            host: hostname(),
        })
    }

    /// The queue directory.
    pub fn dir(&self) -> &Path {
        &self.watch
    }

    /// Names of the candidate files now in the queue (for the status counts).
    pub fn pending(&self) -> usize {
        fs::read_dir(&self.watch)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| is_manifest_name(&e.file_name().to_string_lossy()))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Looks at one name; `Some` when it is ready to claim.
    pub fn check(&mut self, name: &str) -> Option<Ready> {
        if !is_manifest_name(name) {
            return None;
        }
        let path = self.watch.join(name);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            self.seen.remove(name);
            return None;
        };
        let ft = meta.file_type();
        let refuse = |why: &str| Some(Ready::Refuse { name: name.into(), why: why.into() });
        if ft.is_symlink() {
            return refuse("is a symbolic link; the queue takes regular files only");
        }
        if ft.is_dir() {
            return None;
        }
        if ft.is_fifo() || ft.is_socket() || ft.is_block_device() || ft.is_char_device() {
            return refuse("is not a regular file");
        }
        if meta.len() > hyper2kvm::manifest::MAX_MANIFEST_BYTES {
            return Some(Ready::Refuse {
                name: name.into(),
                why: format!(
                    "manifest is {} bytes, more than the {} accepted",
                    meta.len(),
                    hyper2kvm::manifest::MAX_MANIFEST_BYTES
                ),
            });
        }
        let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
        let changed = self.seen.get(name).is_none_or(|s| s.size != meta.len() || s.mtime != mtime);
        let mut doc = None;
        if changed {
            let bytes = fs::read(&path).ok()?;
            doc = parse(name, &bytes);
            self.seen.insert(
                name.to_string(),
                Seen { size: meta.len(), mtime, since: Instant::now(), parses: doc.is_some() },
            );
        }
        let s = self.seen.get(name)?;
        let json = name.to_ascii_lowercase().ends_with(".json");
        let settled = s.since.elapsed() >= self.settle;
        if (json && s.parses) || settled {
            if doc.is_none() && s.parses {
                doc = fs::read(&path).ok().and_then(|b| parse(name, &b));
            }
            return Some(Ready::Manifest { name: name.into(), doc });
        }
        None
    }

    /// Every ready name in the queue, oldest first.
    pub fn scan(&mut self) -> Vec<Ready> {
        let Ok(rd) = fs::read_dir(&self.watch) else { return Vec::new() };
        let mut names: Vec<(SystemTime, String)> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let t = e.metadata().and_then(|m| m.modified()).unwrap_or(UNIX_EPOCH);
                is_manifest_name(&name).then_some((t, name))
            })
            .collect();
        names.sort();
        let present: Vec<&String> = names.iter().map(|(_, n)| n).collect();
        self.seen.retain(|k, _| present.contains(&k));
        names.into_iter().filter_map(|(_, n)| self.check(&n)).collect()
    }

    /// Claims `name` by renaming it into a new job directory; `Ok(None)` when another daemon
    /// took it first.
    pub fn claim(&mut self, name: &str, instance: &str) -> io::Result<Option<Claimed>> {
        self.seen.remove(name);
        let stem: String = Path::new(name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') { c } else { '_' })
            .take(64)
            .collect();
        let millis = now_millis();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("{stem}.{millis}.{}.{}.{n}", self.host, std::process::id());
        let dir = self.records.join("jobs").join(&id);
        fs::create_dir(&dir)?;
        let manifest = dir.join(name);
        match fs::rename(self.watch.join(name), &manifest) {
            Ok(()) => {}
            Err(e) => {
                let _ = fs::remove_dir(&dir);
                return if e.kind() == io::ErrorKind::NotFound { Ok(None) } else { Err(e) };
            }
        }
        let claimed = Claimed { id: id.clone(), dir, manifest, name: name.into() };
        let record = Record {
            id,
            manifest: name.into(),
            state: "running".into(),
            claimed_at: hyper2kvm::io::rfc3339(SystemTime::now()),
            owner: format!("{}/{instance}", self.host),
            ..Record::default()
        };
        write_record(&claimed.dir, &record)?;
        Ok(Some(claimed))
    }

    /// Moves a finished job's record to `done/` or `failed/`.
    pub fn finish(&self, c: &Claimed, ok: bool) -> io::Result<()> {
        let to = self.records.join(if ok { "done" } else { "failed" }).join(&c.id);
        fs::rename(&c.dir, to)
    }

    /// Puts a job's manifest back into the queue (it runs again from scratch) and moves its
    /// record to `interrupted/`.
    pub fn requeue(&self, dir: &Path, name: &str) -> io::Result<()> {
        let mut back = self.watch.join(name);
        if back.exists() {
            // A new manifest of the same name arrived meanwhile; keep both.
            let millis = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            back = self.watch.join(format!("requeued-{}-{name}", millis.as_millis()));
        }
        fs::rename(dir.join(name), &back)?;
        let id = dir.file_name().unwrap_or_default();
        fs::rename(dir, self.records.join("interrupted").join(id))
    }

    /// Finds jobs whose owner died and requeues them; returns their ids.
    pub fn recover(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(self.records.join("jobs")) else { return out };
        for e in rd.filter_map(|e| e.ok()) {
            let dir = e.path();
            let id = e.file_name().to_string_lossy().into_owned();
            // STEM.MILLIS.HOST.PID.N (the stem has no dots).
            let parts: Vec<&str> = id.split('.').collect();
            if parts.len() < 5 {
                continue;
            }
            let host = parts[2..parts.len() - 2].join(".");
            let pid: u32 = parts[parts.len() - 2].parse().unwrap_or(0);
            let claimed_at: u128 = parts[1].parse().unwrap_or(0);
            let abandoned = if host == self.host && pid == std::process::id() {
                claimed_at < OPENED.get().copied().unwrap_or(0)
            } else if host == self.host {
                !alive(pid)
            } else {
                let beat = fs::metadata(dir.join("job.json"))
                    .or_else(|_| fs::metadata(&dir))
                    .and_then(|m| m.modified())
                    .ok();
                beat.and_then(|t| t.elapsed().ok()).is_some_and(|age| age > STALE_HEARTBEAT)
            };
            if !abandoned {
                continue;
            }
            let record = read_record(&dir);
            let name = record.map(|r| r.manifest).or_else(|| {
                fs::read_dir(&dir).ok()?.filter_map(|e| e.ok()).find_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    is_manifest_name(&n).then_some(n)
                })
            });
            match name {
                Some(name) if dir.join(&name).exists() => match self.requeue(&dir, &name) {
                    Ok(()) => out.push(id),
                    Err(e) => tracing::debug!("requeueing {id}: {e} (another daemon took it?)"),
                },
                _ => {
                    let _ = fs::rename(&dir, self.records.join("interrupted").join(&id));
                }
            }
        }
        out
    }

    /// Removes finished records older than their retention; returns how many.
    pub fn prune(&self, retention: Duration, failed_retention: Duration) -> usize {
        let mut n = 0;
        for (sub, keep) in
            [("done", retention), ("failed", failed_retention), ("interrupted", failed_retention)]
        {
            let Ok(rd) = fs::read_dir(self.records.join(sub)) else { continue };
            for e in rd.filter_map(|e| e.ok()) {
                let age = fs::metadata(e.path().join("job.json"))
                    .or_else(|_| e.metadata())
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok());
                if age.is_some_and(|a| a >= keep) && fs::remove_dir_all(e.path()).is_ok() {
                    n += 1;
                }
            }
        }
        n
    }
}

/// Writes `DIR/job.json` (temporary name, then rename); also the heartbeat.
pub fn write_record(dir: &Path, r: &Record) -> io::Result<()> {
    hyper2kvm::io::write_json(&dir.join("job.json"), r).map_err(|e| io::Error::other(e.to_string()))
}

/// Reads `DIR/job.json`.
pub fn read_record(dir: &Path) -> Option<Record> {
    serde_json::from_slice(&fs::read(dir.join("job.json")).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_complete_regular_manifests_are_ready() {
        let t = tempfile::tempdir().unwrap();
        let mut q = Queue::open(t.path(), Duration::from_millis(300)).unwrap();
        std::fs::write(t.path().join("a.json"), r#"{"manifest_version": "1.0", "#).unwrap();
        std::fs::write(t.path().join(".hidden.json"), "{}").unwrap();
        std::fs::write(t.path().join("b.json.part"), "{}").unwrap();
        std::fs::write(t.path().join("disk.vmdk"), "x").unwrap();
        std::fs::write(t.path().join("c.yaml"), "manifest_version: '1.0'\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("evil.json")).unwrap();
        let names = |r: Vec<Ready>| r.iter().map(|x| x.name().to_string()).collect::<Vec<_>>();
        assert_eq!(names(q.scan()), vec!["evil.json"], "half a JSON and a fresh YAML wait");
        std::fs::write(t.path().join("a.json"), r#"{"manifest_version": "1.0"}"#).unwrap();
        let ready = q.scan();
        assert!(
            ready
                .iter()
                .any(|r| matches!(r, Ready::Manifest { name, doc: Some(_) } if name == "a.json"))
        );
        std::thread::sleep(Duration::from_millis(400));
        assert!(names(q.scan()).contains(&"c.yaml".to_string()), "YAML counts once settled");
        assert!(matches!(q.check("evil.json"), Some(Ready::Refuse { .. })));
    }

    #[test]
    fn a_claim_succeeds_once_and_an_abandoned_job_is_requeued() {
        let t = tempfile::tempdir().unwrap();
        let mut a = Queue::open(t.path(), Duration::from_secs(1)).unwrap();
        let mut b = Queue::open(t.path(), Duration::from_secs(1)).unwrap();
        std::fs::write(t.path().join("m.json"), "{}").unwrap();
        let c = a.claim("m.json", "a").unwrap().unwrap();
        assert!(b.claim("m.json", "b").unwrap().is_none(), "the second claim finds nothing");
        assert!(c.manifest.is_file() && !t.path().join("m.json").exists());
        assert_eq!(read_record(&c.dir).unwrap().state, "running");
        assert!(a.recover().is_empty(), "our own live job is not abandoned");
        // The same job as if a dead process of this host owned it.
        let dead = c.id.replace(&format!(".{}.", std::process::id()), ".999999999.");
        let dead_dir = c.dir.with_file_name(&dead);
        std::fs::rename(&c.dir, &dead_dir).unwrap();
        assert_eq!(a.recover(), vec![dead.clone()]);
        assert!(t.path().join("m.json").is_file(), "back in the queue");
        assert!(t.path().join(RECORDS).join("interrupted").join(&dead).is_dir());
        let c = b.claim("m.json", "b").unwrap().unwrap();
        b.finish(&c, true).unwrap();
        assert!(t.path().join(RECORDS).join("done").join(&c.id).is_dir());
        assert_eq!(b.prune(Duration::ZERO, Duration::from_secs(3600)), 1, "done pruned at once");
    }

    /// A restarted container runs the daemon as pid 1 again, under the same host name: a job
    /// its predecessor claimed carries our own pid, but was claimed before we started.
    #[test]
    fn a_job_of_a_predecessor_with_our_pid_is_requeued() {
        let t = tempfile::tempdir().unwrap();
        let mut q = Queue::open(t.path(), Duration::from_secs(1)).unwrap();
        std::fs::write(t.path().join("m.json"), "{}").unwrap();
        let c = q.claim("m.json", "a").unwrap().unwrap();
        assert!(q.recover().is_empty(), "our own job, claimed after we started");
        let millis = c.id.split('.').nth(1).unwrap().to_string();
        let old = c.id.replacen(&format!(".{millis}."), ".1000.", 1);
        std::fs::rename(&c.dir, c.dir.with_file_name(&old)).unwrap();
        assert_eq!(q.recover(), vec![old], "claimed before this process opened the queue");
        assert!(t.path().join("m.json").is_file(), "back in the queue");
    }
}
