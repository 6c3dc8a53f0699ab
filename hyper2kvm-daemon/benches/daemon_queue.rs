//! The daemon's queue: how long a manifest waits between arriving and being claimed, and the
//! daemon's idle memory. `cargo bench -p hyper2kvm-daemon --bench daemon_queue` (also run by
//! `make bench`).
//!
//! 1,000 small manifests (valid, one raw disk each, conversion off so that a job takes
//! milliseconds and the queue never backs up) are written one every 10 ms, as HyperSDK writes
//! them: in place, not atomically. Arrival is when our write of a manifest returns; its claim is
//! when inotify reports it moved out of the queue. The same run is made with the daemon's
//! inotify switched off (`HYPER2KVM_NO_INOTIFY=1`, scans every `POLL_INTERVAL=1`) as the
//! baseline. Idle RSS is read from /proc after start and after the 1,000 jobs. Targets: median
//! under 100 ms with inotify, idle RSS under 30 MiB.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use inotify::{Inotify, WatchMask};

const MANIFESTS: usize = 1000;
const PACE: Duration = Duration::from_millis(10);

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn start(root: &Path, inotify: bool) -> Child {
    std::fs::write(root.join("d.conf"), "POLL_INTERVAL=1\nMAX_CONCURRENT=4\nLOG_LEVEL=warn\n")
        .unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_hyper2kvm"));
    c.arg("daemon")
        .arg(format!("--watch-dir={}", root.join("queue").display()))
        .arg(format!("--output-dir={}", root.join("output").display()))
        .arg(format!("--state-dir={}", root.join("state").display()))
        .arg(format!("--config={}", root.join("d.conf").display()))
        .env("TEMP_DIR", root.join("tmp"))
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if !inotify {
        c.env("HYPER2KVM_NO_INOTIFY", "1");
    }
    c.spawn().unwrap()
}

struct Run {
    latencies_ms: Vec<f64>,
    idle_kib: u64,
    after_kib: u64,
}

fn run(inotify: bool) -> Run {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let queue = root.join("queue");
    std::fs::create_dir_all(&queue).unwrap();
    let disk = root.join("d.raw");
    std::fs::File::create(&disk).unwrap().set_len(1 << 20).unwrap();
    let mut watch = Inotify::init().unwrap();
    watch.watches().add(&queue, WatchMask::MOVED_FROM).unwrap();
    let mut daemon = start(root, inotify);
    std::thread::sleep(Duration::from_secs(2));
    let idle_kib = rss_kib(daemon.id());
    // Claims are timed by a thread blocked on inotify, so they are seen the moment they happen.
    let claimed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen = claimed.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(events) = watch.read_events_blocking(&mut buf) {
            let now = Instant::now();
            let mut m = seen.lock().unwrap();
            for e in events {
                if let Some(n) = e.name {
                    m.entry(n.to_string_lossy().into_owned()).or_insert(now);
                }
            }
        }
    });
    let mut written: HashMap<String, Instant> = HashMap::new();
    for i in 0..MANIFESTS {
        let name = format!("vm{i:04}.json");
        let m = serde_json::json!({
            "manifest_version": "1.0",
            "source": {"provider": "vsphere", "vm_name": format!("vm{i:04}")},
            "disks": [{"id": "disk-0", "source_format": "raw", "bytes": 1 << 20, "local_path": disk}],
            "pipeline": {"convert": {"enabled": false}}
        });
        let mut f = std::fs::File::create(queue.join(&name)).unwrap();
        f.write_all(m.to_string().as_bytes()).unwrap();
        drop(f);
        written.insert(name, Instant::now());
        std::thread::sleep(PACE);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let count = || claimed.lock().unwrap().len();
    while count() < MANIFESTS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(count(), MANIFESTS, "every manifest claimed");
    let claimed = claimed.lock().unwrap().clone();
    let out = root.join("output");
    let done = |out: &Path| {
        std::fs::read_dir(out)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".report.json"))
                })
                .count()
            })
            .unwrap_or(0)
    };
    while done(&out) < MANIFESTS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(done(&out), MANIFESTS, "every job finished");
    std::thread::sleep(Duration::from_secs(2));
    let after_kib = rss_kib(daemon.id());
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
    let mut latencies_ms: Vec<f64> = written
        .iter()
        .map(|(n, w)| claimed[n].saturating_duration_since(*w).as_secs_f64() * 1000.0)
        .collect();
    latencies_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Run { latencies_ms, idle_kib, after_kib }
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let fast = run(true);
    let base = run(false);
    println!("daemon_queue: {MANIFESTS} manifests written one every {} ms", PACE.as_millis());
    for (label, r) in [("inotify", &fast), ("scan only (POLL_INTERVAL=1, baseline)", &base)] {
        println!(
            "  {label}: arrival to claim median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            pct(&r.latencies_ms, 0.5),
            pct(&r.latencies_ms, 0.99),
            r.latencies_ms.last().copied().unwrap_or(0.0)
        );
    }
    println!(
        "  median ratio inotify / scan-only: {:.3}",
        pct(&fast.latencies_ms, 0.5) / pct(&base.latencies_ms, 0.5).max(0.001)
    );
    println!(
        "  idle RSS: {:.1} MiB at start, {:.1} MiB after {MANIFESTS} jobs (target < 30 MiB)",
        fast.idle_kib as f64 / 1024.0,
        fast.after_kib as f64 / 1024.0
    );
}
