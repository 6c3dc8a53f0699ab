//! `hyper2kvm daemon`: watches a queue directory for Artifact Manifests and runs each through
//! the pipeline (contract section 3), under systemd (`Type=notify`, watchdog) or alone.
//!
//! It runs on a tokio runtime. The main loop is one task that waits (`select!`) for a signal
//! (SIGTERM/SIGINT stop taking jobs and let running ones finish within `--stop-timeout`, then
//! cancel and requeue them; SIGHUP reloads the config), a finished job, an inotify event on the
//! queue, or its timer (at least once a second); on each turn it checks what changed in the
//! queue plus a full scan every `POLL_INTERVAL`, claims ready manifests while fewer than
//! `MAX_CONCURRENT` jobs run, retries transient failures with backoff, refreshes the heartbeat
//! of running jobs, prunes old records, and sends `WATCHDOG=1` and `STATUS=` to systemd and the
//! status file. Each job is a `spawn_blocking` task running the synchronous engine; its
//! cancellation token reaches qemu-img and the appliance. Webhooks, mail and the metrics
//! server are tasks beside it.

pub mod config;
mod deliver;
pub mod metrics;
mod notify;
pub mod queue;
mod results;
pub mod status;
mod watch;
mod worker;
mod workflow;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hyper2kvm::io::rfc3339;
use hyper2kvm::{CancelToken, ErrorKind};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use config::{Config, Flags};
use deliver::Deliveries;
use metrics::Metrics;
use notify::Notifier;
use queue::{Queue, Ready, read_record, write_record};
use status::{Counts, Status};
use watch::Watcher;
use worker::{Attempt, Live, LiveMap, Work, vm_name_of};

/// How often running jobs' records are touched (other hosts judge liveness by it).
const HEARTBEAT: Duration = Duration::from_secs(60);
/// How often finished records are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// What `hyper2kvm daemon` was given on its command line.
#[derive(Debug, Clone)]
pub struct Args {
    /// Settings flags.
    pub flags: Flags,
    /// Seconds running jobs get to finish after SIGTERM before they are cancelled and
    /// requeued.
    pub stop_timeout: Duration,
}

struct Daemon {
    cfg: Arc<Config>,
    flags: Flags,
    queue: Queue,
    watcher: Watcher,
    notifier: Notifier,
    live: LiveMap,
    running: HashMap<String, (Work, CancelToken, Instant)>,
    jobs: JoinSet<Attempt>,
    retries: Vec<(Instant, Work)>,
    pending: VecDeque<Ready>,
    metrics: Arc<Metrics>,
    deliveries: Deliveries,
    counts: Counts,
    started_at: String,
    root: CancelToken,
    stopping: Option<Instant>,
    last_status: String,
    /// The workflow-directory worker, when `WORKFLOW_DIR` is set.
    workflow: Option<workflow::Worker>,
}

/// Runs the daemon until SIGTERM/SIGINT. Exit 2 for a bad config, 1 when it cannot start.
pub fn run(args: &Args) -> ExitCode {
    let env = |k: &str| std::env::var(k).ok();
    let cfg = match Config::load(&args.flags, &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hyper2kvm: error: {e}");
            return ExitCode::from(2);
        }
    };
    crate::logger::configure(cfg.log_level);
    if std::fs::create_dir_all(&cfg.temp_dir).is_ok() {
        // SAFETY: set before any thread of ours exists; the tools we start inherit it.
        unsafe { std::env::set_var("TMPDIR", &cfg.temp_dir) };
    } else {
        tracing::warn!("TEMP_DIR {} cannot be created; using the default", cfg.temp_dir.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hyper2kvm-rt")
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hyper2kvm: error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let mut d = match Daemon::start(cfg, args.flags.clone()).await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("hyper2kvm: error: {e}");
                return ExitCode::from(1);
            }
        };
        d.main_loop(args.stop_timeout).await;
        d.deliveries.drain(Duration::from_secs(15)).await;
        ExitCode::SUCCESS
    })
}

impl Daemon {
    async fn start(cfg: Config, flags: Flags) -> Result<Daemon, String> {
        for (what, d) in [("WATCH_DIR", &cfg.watch_dir), ("OUTPUT_DIR", &cfg.output_dir)] {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("{what} {}: cannot create: {e}", d.display()))?;
        }
        std::fs::create_dir_all(&cfg.state_dir).map_err(|e| {
            format!("state directory {}: cannot create: {e}", cfg.state_dir.display())
        })?;
        let queue = Queue::open(&cfg.watch_dir, cfg.settle)
            .map_err(|e| format!("WATCH_DIR {}: {e}", cfg.watch_dir.display()))?;
        let watcher = Watcher::new(&cfg.watch_dir);
        let metrics = Arc::new(Metrics::new());
        if let Some(addr) = cfg.metrics_listen {
            let bound = metrics::serve(addr, metrics.clone())
                .await
                .map_err(|e| format!("METRICS_LISTEN {addr}: cannot listen: {e}"))?;
            tracing::info!("metrics on http://{bound}/metrics, health on http://{bound}/healthz");
        }
        let deliveries = Deliveries::new(cfg.webhook_timeout)?;
        let root = CancelToken::new();
        let cfg = Arc::new(cfg);
        let workflow = match &cfg.workflow_dir {
            Some(dir) => Some(
                workflow::Worker::start(dir.clone(), cfg.clone(), root.child())
                    .map_err(|e| format!("WORKFLOW_DIR {}: {e}", dir.display()))?,
            ),
            None => None,
        };
        Ok(Daemon {
            flags,
            queue,
            watcher,
            notifier: Notifier::from_env(),
            live: Arc::new(Mutex::new(Vec::new())),
            running: HashMap::new(),
            jobs: JoinSet::new(),
            retries: Vec::new(),
            pending: VecDeque::new(),
            metrics,
            deliveries,
            counts: Counts::default(),
            started_at: rfc3339(SystemTime::now()),
            root,
            stopping: None,
            last_status: String::new(),
            cfg,
            workflow,
        })
    }

    async fn main_loop(&mut self, stop_timeout: Duration) {
        let (mut term, mut int, mut hup) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(t), Ok(i), Ok(h)) => (t, i, h),
            _ => {
                tracing::error!("cannot install the signal handlers; stopping");
                return;
            }
        };
        for id in self.queue.recover() {
            tracing::warn!(
                "job {id} was interrupted (its daemon died); it runs again from scratch"
            );
        }
        let pruned = self.queue.prune(self.cfg.retention, self.cfg.failed_retention);
        tracing::info!(
            "watching {} (inotify {}), results in {}, {} job(s) at once{}",
            self.cfg.watch_dir.display(),
            if self.watcher.is_active() { "on" } else { "off" },
            self.cfg.output_dir.display(),
            self.cfg.max_concurrent,
            if pruned > 0 { format!(", {pruned} old record(s) pruned") } else { String::new() }
        );
        self.notifier.send("READY=1");
        let mut next_scan = Instant::now();
        let mut next_beat = Instant::now() + HEARTBEAT;
        let mut next_prune = Instant::now() + PRUNE_EVERY;
        let mut last_dog = Instant::now();
        let mut cancelled = false;
        let mut changed: Vec<String> = Vec::new();
        loop {
            self.metrics.beat();
            if let Some(deadline) = self.stopping {
                for (_, w) in std::mem::take(&mut self.retries) {
                    self.requeue(&w, "the daemon is stopping");
                }
                if self.running.is_empty() && !self.workflow.as_ref().is_some_and(|w| w.busy()) {
                    break;
                }
                if Instant::now() >= deadline && !cancelled {
                    tracing::warn!(
                        "stop timeout: cancelling {} job(s); they are requeued",
                        self.running.len()
                    );
                    self.root.cancel();
                    cancelled = true;
                }
            }
            changed.sort();
            changed.dedup();
            for n in std::mem::take(&mut changed) {
                if let Some(r) = self.queue.check(&n) {
                    self.push_pending(r);
                }
            }
            let now = Instant::now();
            if now >= next_scan {
                for r in self.queue.scan() {
                    self.push_pending(r);
                }
                for id in self.queue.recover() {
                    tracing::warn!(
                        "job {id} was abandoned by its daemon; it runs again from scratch"
                    );
                }
                next_scan = now + self.cfg.poll_interval;
            }
            if self.stopping.is_none() {
                self.dispatch();
            }
            if now >= next_beat {
                self.heartbeat();
                next_beat = now + HEARTBEAT;
            }
            if now >= next_prune {
                self.queue.prune(self.cfg.retention, self.cfg.failed_retention);
                next_prune = now + PRUNE_EVERY;
            }
            if let Some(dog) = self.notifier.watchdog_interval()
                && last_dog.elapsed() >= dog / 2
            {
                self.notifier.send("WATCHDOG=1");
                last_dog = Instant::now();
            }
            self.publish_status("running");
            let mut wait = next_scan.saturating_duration_since(now).min(Duration::from_secs(1));
            if let Some(dog) = self.notifier.watchdog_interval() {
                wait = wait.min(dog / 2);
            }
            tokio::select! {
                _ = term.recv() => self.begin_stop(stop_timeout),
                _ = int.recv() => self.begin_stop(stop_timeout),
                _ = hup.recv() => self.reload(),
                Some(done) = self.jobs.join_next(), if !self.jobs.is_empty() => match done {
                    Ok(a) => self.finished(a),
                    Err(e) => tracing::error!("a job's task ended abnormally: {e}"),
                },
                names = self.watcher.changed() => {
                    if names.is_empty() {
                        next_scan = Instant::now();
                    }
                    changed = names;
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
        if let Some(w) = self.workflow.take() {
            w.join();
        }
        self.publish_status("stopped");
        tracing::info!("stopped: {} done, {} failed", self.counts.done, self.counts.failed);
    }

    fn begin_stop(&mut self, stop_timeout: Duration) {
        if self.stopping.is_some() {
            return;
        }
        tracing::info!("stopping: no new jobs; {} running", self.running.len());
        self.notifier.send("STOPPING=1");
        self.stopping = Some(Instant::now() + stop_timeout);
        if let Some(w) = &self.workflow {
            w.stop();
        }
    }

    fn push_pending(&mut self, r: Ready) {
        match self.pending.iter_mut().find(|p| p.name() == r.name()) {
            Some(p) => *p = r,
            None => self.pending.push_back(r),
        }
    }

    fn busy(&self, vm: &str) -> bool {
        self.running.values().any(|(w, _, _)| w.vm_name == vm)
            || self.retries.iter().any(|(_, w)| w.vm_name == vm)
    }

    fn dispatch(&mut self) {
        let now = Instant::now();
        let mut deferred = Vec::new();
        while self.running.len() < self.cfg.max_concurrent {
            if let Some(i) = self.retries.iter().position(|(t, _)| *t <= now) {
                let (_, mut w) = self.retries.remove(i);
                w.attempt += 1;
                self.spawn(w);
                continue;
            }
            let Some(r) = self.pending.pop_front() else { break };
            let stem = Path::new(r.name())
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (refuse, vm_name) = match &r {
                Ready::Manifest { doc, .. } => (None, vm_name_of(doc.as_ref(), &stem)),
                Ready::Refuse { why, .. } => (Some(why.clone()), vm_name_of(None, &stem)),
            };
            if self.busy(&vm_name) {
                // One job per VM name at a time: both would write the same files.
                deferred.push(r);
                continue;
            }
            let instance = self.cfg.instance.clone().unwrap_or_else(|| "default".into());
            match self.queue.claim(r.name(), &instance) {
                Ok(Some(claimed)) => {
                    tracing::info!("claimed {} as job {} ({vm_name})", claimed.name, claimed.id);
                    let ids: Vec<String> = match &r {
                        Ready::Manifest { doc: Some(d), .. } => d["disks"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|d| d["id"].as_str().map(String::from))
                            .collect(),
                        _ => Vec::new(),
                    };
                    match results::supersede(&self.cfg.output_dir, &vm_name, &ids) {
                        Ok(Some(dir)) => tracing::info!(
                            "[{}] earlier results of {vm_name} moved aside to {}",
                            claimed.id,
                            dir.display()
                        ),
                        Ok(None) => {}
                        Err(e) => tracing::error!(
                            "[{}] cannot move earlier results of {vm_name} aside: {e}",
                            claimed.id
                        ),
                    }
                    self.spawn(Work { claimed, refuse, vm_name, attempt: 1 });
                }
                Ok(None) => tracing::debug!("{} was claimed by another daemon", r.name()),
                Err(e) => tracing::error!("cannot claim {}: {e}", r.name()),
            }
        }
        self.pending.extend(deferred);
    }

    fn spawn(&mut self, work: Work) {
        let cancel = self.root.child();
        if let Some(mut r) = read_record(&work.claimed.dir) {
            r.state = "running".into();
            r.attempts = work.attempt;
            r.vm_name = Some(work.vm_name.clone());
            let _ = write_record(&work.claimed.dir, &r);
        }
        if let Ok(mut l) = self.live.lock() {
            l.push(Live {
                id: work.claimed.id.clone(),
                manifest: work.claimed.name.clone(),
                vm_name: work.vm_name.clone(),
                stage: "load".into(),
                percent: 0,
                attempt: work.attempt,
            });
        }
        self.running
            .insert(work.claimed.id.clone(), (work.clone(), cancel.clone(), Instant::now()));
        let (cfg, live) = (self.cfg.clone(), self.live.clone());
        let queue_dir = self.queue.dir().to_path_buf();
        self.jobs.spawn_blocking(move || worker::attempt(work, &cfg, &queue_dir, cancel, &live));
    }

    fn requeue(&mut self, w: &Work, why: &str) {
        match self.queue.requeue(&w.claimed.dir, &w.claimed.name) {
            Ok(()) => tracing::info!("job {} requeued: {why}", w.claimed.id),
            Err(e) => tracing::error!("cannot requeue job {}: {e}", w.claimed.id),
        }
    }

    fn finished(&mut self, a: Attempt) {
        let id = a.work.claimed.id.clone();
        if let Some((_, _, started)) = self.running.remove(&id) {
            self.metrics.job_duration.observe(started.elapsed().as_secs_f64());
        }
        for (stage, seconds) in &a.stages {
            let label = metrics::StageLabel { stage: stage.name().to_string() };
            self.metrics.stage_duration.get_or_create(&label).observe(*seconds);
        }
        if let Ok(mut l) = self.live.lock() {
            l.retain(|j| j.id != id);
        }
        let mut record = read_record(&a.work.claimed.dir).unwrap_or_default();
        record.finished_at = Some(rfc3339(SystemTime::now()));
        let queue_dir = self.queue.dir().to_path_buf();
        match &a.result {
            Ok(o) => {
                results::cleanup_sources(&self.cfg, &queue_dir, &a);
                if let Some(msg) = results::define(&self.cfg, &a) {
                    tracing::info!("[{id}] {msg}");
                }
                record.state = "done".into();
                let _ = write_record(&a.work.claimed.dir, &record);
                if let Err(e) = self.queue.finish(&a.work.claimed, true) {
                    tracing::warn!("[{id}] cannot file the record: {e}");
                }
                self.counts.done += 1;
                self.metrics.count("success");
                self.metrics.converted_bytes.inc_by(a.converted_bytes);
                tracing::info!("job {id} ({}) succeeded: {}", a.work.vm_name, o.report.summary);
                let cfg = self.cfg.clone();
                self.deliveries.job_finished(&cfg, results::finished(&a, None));
            }
            Err(e) if e.kind() == ErrorKind::Cancelled && self.root.is_cancelled() => {
                let w = a.work.clone();
                self.requeue(&w, "cancelled at stop");
            }
            Err(e) if results::transient(e) && a.work.attempt <= self.cfg.retry_limit => {
                let delay = self.cfg.retry_backoff * 2u32.saturating_pow(a.work.attempt - 1);
                tracing::warn!(
                    "job {id} ({}) failed (attempt {}): {e}; retrying in {} s",
                    a.work.vm_name,
                    a.work.attempt,
                    delay.as_secs()
                );
                self.metrics.count("retried");
                record.state = "retrying".into();
                record.error = Some(e.to_string());
                let _ = write_record(&a.work.claimed.dir, &record);
                self.retries.push((Instant::now() + delay, a.work));
            }
            Err(e) => {
                let file = match results::write_error(&a, e) {
                    Ok(p) => Some(p),
                    Err(w) => {
                        tracing::error!("[{id}] cannot write the .error file: {w}");
                        None
                    }
                };
                record.state = "failed".into();
                record.error = Some(e.to_string());
                let _ = write_record(&a.work.claimed.dir, &record);
                if let Err(w) = self.queue.finish(&a.work.claimed, false) {
                    tracing::warn!("[{id}] cannot file the record: {w}");
                }
                self.counts.failed += 1;
                self.metrics.count("failed");
                tracing::error!("job {id} ({}) failed: {e}", a.work.vm_name);
                let cfg = self.cfg.clone();
                self.deliveries.job_finished(&cfg, results::finished(&a, file.as_deref()));
            }
        }
    }

    fn heartbeat(&self) {
        let running = self.running.values().map(|(w, _, _)| w);
        for w in running.chain(self.retries.iter().map(|(_, w)| w)) {
            if let Some(r) = read_record(&w.claimed.dir) {
                let _ = write_record(&w.claimed.dir, &r);
            }
        }
    }

    fn reload(&mut self) {
        let env = |k: &str| std::env::var(k).ok();
        match Config::load(&self.flags, &env) {
            Ok(mut c) => {
                for (what, old, new) in [
                    ("WATCH_DIR", &self.cfg.watch_dir, &mut c.watch_dir),
                    ("OUTPUT_DIR", &self.cfg.output_dir, &mut c.output_dir),
                ] {
                    if old != new {
                        tracing::warn!(
                            "reload: {what} changes only on restart; keeping {}",
                            old.display()
                        );
                        *new = old.clone();
                    }
                }
                crate::logger::configure(c.log_level);
                tracing::info!("reloaded the configuration");
                self.cfg = Arc::new(c);
            }
            Err(e) => tracing::error!("reload refused, keeping the running configuration: {e}"),
        }
    }

    fn publish_status(&mut self, state: &str) {
        let state = if state == "running" && self.stopping.is_some() { "stopping" } else { state };
        self.counts.queued = self.queue.pending();
        self.counts.running = self.running.len();
        self.counts.retrying = self.retries.len();
        self.metrics.running.set(self.counts.running as i64);
        self.metrics.queue_depth.set(self.counts.queued as i64);
        let jobs: Vec<Live> = self.live.lock().map(|l| l.clone()).unwrap_or_default();
        let s = Status {
            instance: self.cfg.instance.clone(),
            pid: std::process::id(),
            state: state.into(),
            started_at: self.started_at.clone(),
            updated_at: rfc3339(SystemTime::now()),
            watch_dir: self.cfg.watch_dir.clone(),
            output_dir: self.cfg.output_dir.clone(),
            max_concurrent: self.cfg.max_concurrent,
            inotify: self.watcher.is_active(),
            counts: self.counts.clone(),
            jobs,
        };
        let line = format!("{state} {}", s.line());
        if line != self.last_status {
            status::write(&self.cfg.state_dir, &s);
            self.notifier.send(&format!("STATUS={}", s.line()));
            self.last_status = line;
        }
    }
}

/// The state directory `hyper2kvm status` reads for `instance`.
pub fn state_dir(instance: Option<&str>, state_dir: Option<PathBuf>) -> PathBuf {
    let env = |k: &str| std::env::var(k).ok();
    state_dir.unwrap_or_else(|| Config::default_state_dir(instance, &env))
}
