//! `hyper2kvm daemon` end to end on temporary directories with real small images: two daemons
//! sharing one queue, manifests written in pieces, `kill -9` in the middle of a conversion, a
//! full output file system, refusals of untrusted paths, SIGTERM, and the systemd
//! notifications read from a `NOTIFY_SOCKET` this test listens on. The guest stages are off in
//! these manifests (the disks hold data, not an OS); the pipeline's guest work is tested in
//! manifest.rs and linux_guest.rs.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

/// The directories of one test.
struct Dirs {
    _t: tempfile::TempDir,
    root: PathBuf,
    queue: PathBuf,
    out: PathBuf,
    exports: PathBuf,
}

fn dirs() -> Dirs {
    let t = scratch();
    let root = t.path().to_path_buf();
    let d = Dirs {
        queue: root.join("queue"),
        out: root.join("output"),
        exports: root.join("exports"),
        root,
        _t: t,
    };
    for p in [&d.queue, &d.out, &d.exports] {
        std::fs::create_dir_all(p).unwrap();
    }
    d
}

/// A running daemon; killed when dropped.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(d: &Dirs, name: &str, conf: &str, env: &[(&str, &str)]) -> Daemon {
        Self::start_wrapped(d, name, conf, env, &[], &[])
    }

    /// Starts `hyper2kvm daemon` with `extra` arguments, inside `wrapper` (e.g. `unshare …`)
    /// when given.
    fn start_wrapped(
        d: &Dirs,
        name: &str,
        conf: &str,
        env: &[(&str, &str)],
        wrapper: &[&str],
        extra: &[&str],
    ) -> Daemon {
        let conf_path = d.root.join(format!("{name}.conf"));
        std::fs::write(&conf_path, conf).unwrap();
        let log = d.root.join(format!("{name}.log"));
        let bin = env!("CARGO_BIN_EXE_hyper2kvm");
        let mut c = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        c.arg("daemon")
            .arg(format!("--watch-dir={}", d.queue.display()))
            .arg(format!("--output-dir={}", d.out.display()))
            .arg("--log-level=debug")
            .arg(format!("--config={}", conf_path.display()))
            .arg(format!("--state-dir={}", d.root.join(format!("state-{name}")).display()))
            .args(extra)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env("TEMP_DIR", d.root.join("tmp"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            c.env(k, v);
        }
        Daemon { child: c.spawn().unwrap(), log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits for exit; the status code.
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let t = Instant::now();
        while t.elapsed() < limit {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("daemon did not exit within {limit:?}:\n{}", self.log());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `f` holds (polling every 50 ms); panics with `what` after `limit`.
fn until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A raw disk of `size` bytes with data, in `exports`.
fn disk(d: &Dirs, name: &str, size: u64) -> PathBuf {
    let p = d.exports.join(format!("{name}.raw"));
    raw_with_data(&p, size);
    p
}

/// A manifest for `vm` with one raw disk (absolute path), the guest stages off.
fn manifest(vm: &str, disk: &Path) -> Value {
    json!({
        "manifest_version": "1.0",
        "source": {"provider": "vsphere", "vm_name": vm},
        "vm": {"cpu": 1, "mem_gb": 1},
        "disks": [{"id": "disk-0", "source_format": "raw",
                   "bytes": std::fs::metadata(disk).unwrap().len(),
                   "local_path": disk, "checksum": format!("sha256:{}", sha256_hex(disk))}],
        "nics": [{"mac": "00:50:56:00:00:01"}],
        "pipeline": {"inspect": {"enabled": false}, "fix": {"enabled": false}}
    })
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && n.ends_with(ext))
        .collect();
    v.sort();
    v
}

fn records(d: &Dirs, state: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.queue.join(".hyper2kvm").join(state))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

const FAST: &str =
    "MAX_CONCURRENT=2\nPOLL_INTERVAL=1\nSETTLE_SECONDS=2\nQEMU_CONVERT_OPTIONS=\"-O qcow2\"\n";

#[test]
fn two_daemons_share_a_queue_of_twenty_manifests_five_bad() {
    let d = dirs();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut docs = Vec::new();
    for i in 0..20 {
        let vm = format!("vm{i:02}");
        let p = disk(&d, &vm, 2 << 20);
        let mut m = manifest(&vm, &p);
        let text = match i {
            3 => {
                m["manifest_version"] = json!("2.0");
                None
            }
            7 => {
                m["disks"][0]["local_path"] = json!(d.exports.join("missing.raw"));
                None
            }
            11 => {
                m["disks"][0]["checksum"] = json!(format!("sha256:{}", "0".repeat(64)));
                None
            }
            15 => {
                m["vm"]["cpu"] = json!(0);
                None
            }
            19 => Some(m.to_string()[..60].to_string()), // truncated for good
            _ => None,
        };
        if [3, 7, 11, 15, 19].contains(&i) {
            bad.push(vm.clone());
        } else {
            good.push(vm.clone());
        }
        docs.push((format!("{vm}.json"), text.unwrap_or_else(|| m.to_string())));
    }
    let mut a = Daemon::start(&d, "a", FAST, &[]);
    let mut b = Daemon::start(&d, "b", FAST, &[]);
    std::thread::sleep(Duration::from_millis(500));
    for (name, text) in &docs {
        std::fs::write(d.queue.join(name), text).unwrap();
    }
    until(Duration::from_secs(240), "15 disks and 5 errors", || {
        files_with_ext(&d.out, ".qcow2").len() + files_with_ext(&d.out, ".error").len() >= 20
            && records(&d, "done").len() + records(&d, "failed").len() >= 20
    });
    std::thread::sleep(Duration::from_secs(1));
    let want_good: Vec<String> = good.iter().map(|v| format!("{v}.qcow2")).collect();
    let want_bad: Vec<String> = bad.iter().map(|v| format!("{v}.error")).collect();
    assert_eq!(files_with_ext(&d.out, ".qcow2"), want_good, "{}\n{}", a.log(), b.log());
    // The truncated manifest never parses: its .error is named after its file.
    assert_eq!(files_with_ext(&d.out, ".error"), want_bad);
    for v in &good {
        assert!(d.out.join(format!("{v}.report.json")).is_file());
        assert!(d.out.join(format!("{v}.xml")).is_file());
    }
    let e = |v: &str| std::fs::read_to_string(d.out.join(format!("{v}.error"))).unwrap();
    assert!(e("vm03").contains("manifest_version: must be \"1.0\""), "{}", e("vm03"));
    assert!(e("vm07").contains("disks[0].local_path") && e("vm07").contains("does not exist"));
    assert!(e("vm11").contains("the manifest says 0000"), "{}", e("vm11"));
    assert!(e("vm15").contains("vm.cpu: 0 is out of range"));
    assert!(e("vm19").contains("not valid JSON"), "{}", e("vm19"));
    let detail: Value =
        serde_json::from_slice(&std::fs::read(d.out.join("vm11.error.json")).unwrap()).unwrap();
    assert_eq!(detail["error"]["kind"], "checksum");
    // None run twice, none lost.
    let logs = format!("{}\n{}", a.log(), b.log());
    for (name, _) in &docs {
        let n = logs.matches(&format!("claimed {name} as job")).count();
        assert_eq!(n, 1, "{name} claimed {n} times:\n{logs}");
    }
    assert_eq!(records(&d, "done").len(), 15);
    assert_eq!(records(&d, "failed").len(), 5);
    assert!(records(&d, "jobs").is_empty());
    assert!(files_with_ext(&d.queue, ".json").is_empty(), "nothing left in the queue");
    for x in [&mut a, &mut b] {
        x.signal(libc::SIGTERM);
        assert_eq!(x.wait(Duration::from_secs(20)), Some(0));
    }
}

#[test]
fn a_manifest_written_in_three_chunks_runs_once() {
    let d = dirs();
    let p = disk(&d, "chunky", 4 << 20);
    let text = serde_json::to_string_pretty(&manifest("chunky", &p)).unwrap();
    let conf = "POLL_INTERVAL=1\nSETTLE_SECONDS=5\n";
    let daemon = Daemon::start(&d, "a", conf, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let third = text.len() / 3;
    let mut f = std::fs::File::create(d.queue.join("chunky.json")).unwrap();
    for chunk in [&text[..third], &text[third..2 * third], &text[2 * third..]] {
        f.write_all(chunk.as_bytes()).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(1200));
    }
    drop(f);
    until(Duration::from_secs(60), "chunky.qcow2", || d.out.join("chunky.qcow2").is_file());
    std::thread::sleep(Duration::from_secs(1));
    assert!(!d.out.join("chunky.error").exists(), "{}", daemon.log());
    assert_eq!(daemon.log().matches("claimed chunky.json").count(), 1, "{}", daemon.log());
    assert_eq!(records(&d, "done").len(), 1);
    assert!(records(&d, "failed").is_empty());
    let check = Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", "qcow2"])
        .arg(&p)
        .arg(d.out.join("chunky.qcow2"))
        .status()
        .unwrap();
    assert!(check.success(), "the output holds the disk's data");
}

/// A disk big enough that compressing it takes seconds.
fn big_disk(d: &Dirs, name: &str, mib: u64) -> PathBuf {
    let p = d.exports.join(format!("{name}.raw"));
    let mut f = std::fs::File::create(&p).unwrap();
    for i in 0..mib {
        f.write_all(&noise(1 << 20, i + 1)).unwrap();
    }
    p
}

#[test]
fn kill_9_mid_conversion_then_restart_completes_and_nothing_partial_shows() {
    let d = dirs();
    let p = big_disk(&d, "big", 384);
    let mut m = manifest("big", &p);
    m["pipeline"]["convert"] = json!({"compress": true, "compress_level": 9});
    let conf = "POLL_INTERVAL=1\n";
    let mut first = Daemon::start(&d, "first", conf, &[]);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(d.queue.join("big.json"), m.to_string()).unwrap();
    let temp = d.out.join(".big.qcow2.hyper2kvm-part");
    until(Duration::from_secs(60), "the conversion to start", || {
        std::fs::metadata(&temp).is_ok_and(|m| m.len() > 0)
    });
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    assert!(!d.out.join("big.qcow2").exists());
    assert_eq!(records(&d, "jobs").len(), 1, "the claimed job is still on record");
    let second = Daemon::start(&d, "second", conf, &[]);
    // Watch the final name the whole time: when it appears, everything else is there.
    let t = Instant::now();
    loop {
        if d.out.join("big.qcow2").exists() {
            assert!(d.out.join("big.report.json").is_file(), "report before the disk");
            assert!(d.out.join("big.xml").is_file(), "domain before the disk");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(300), "no result:\n{}", second.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(second.log().contains("was interrupted"), "{}", second.log());
    assert_eq!(records(&d, "interrupted").len(), 1);
    until(Duration::from_secs(10), "the record filed", || records(&d, "done").len() == 1);
    let same = Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", "qcow2"])
        .arg(&p)
        .arg(d.out.join("big.qcow2"))
        .status()
        .unwrap();
    assert!(same.success(), "the restarted job wrote the whole disk");
    assert!(!temp.exists(), "no temporary file left");
}

#[test]
fn sigterm_requeues_what_cannot_finish_and_waits_for_what_can() {
    let d = dirs();
    let p = big_disk(&d, "slow", 384);
    let mut m = manifest("slow", &p);
    m["pipeline"]["convert"] = json!({"compress": true, "compress_level": 9});
    let temp = d.out.join(".slow.qcow2.hyper2kvm-part");
    // A stop timeout of 0: the running job is cancelled and its manifest requeued at once.
    let mut daemon =
        Daemon::start_wrapped(&d, "a", "POLL_INTERVAL=1\n", &[], &[], &["--stop-timeout=0"]);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(d.queue.join("slow.json"), m.to_string()).unwrap();
    until(Duration::from_secs(60), "the conversion to start", || temp.exists());
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait(Duration::from_secs(30)), Some(0), "{}", daemon.log());
    let text = daemon.log();
    assert!(text.contains("stop timeout: cancelling 1 job(s)"), "{text}");
    assert!(text.contains("requeued: cancelled at stop"), "{text}");
    assert!(d.queue.join("slow.json").is_file(), "the manifest is back in the queue");
    assert!(!d.out.join("slow.qcow2").exists() && !temp.exists(), "nothing partial left");
    assert_eq!(records(&d, "interrupted").len(), 1);
    // A long stop timeout: the next daemon takes the requeued manifest, and SIGTERM waits for
    // the job to finish.
    let mut daemon =
        Daemon::start_wrapped(&d, "b", "POLL_INTERVAL=1\n", &[], &[], &["--stop-timeout=300"]);
    until(Duration::from_secs(60), "the rerun to start", || temp.exists());
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait(Duration::from_secs(300)), Some(0), "{}", daemon.log());
    assert!(daemon.log().contains("stopping: no new jobs; 1 running"), "{}", daemon.log());
    assert!(d.out.join("slow.qcow2").is_file(), "the job finished before the daemon stopped");
    assert_eq!(records(&d, "done").len(), 1);
}

#[test]
fn out_of_space_fails_that_job_clearly_and_the_next_one_runs() {
    let d = dirs();
    let big = big_disk(&d, "huge", 48);
    let small = disk(&d, "small", 2 << 20);
    // OUTPUT_DIR is a 24 MiB tmpfs in the daemon's own mount namespace (no root needed: an
    // unprivileged user namespace); the test reads it through /proc/PID/root.
    let out = d.out.display().to_string();
    let script = format!("mount -t tmpfs -o size=24m tmpfs '{out}' && exec \"$@\"");
    let conf = "POLL_INTERVAL=1\nRETRY_LIMIT=1\nRETRY_BACKOFF=1\nQEMU_CONVERT_OPTIONS=\"-O raw\"\n";
    let wrapper = ["unshare", "-rm", "sh", "-c", script.as_str(), "sh"];
    let daemon = Daemon::start_wrapped(&d, "a", conf, &[], &wrapper, &[]);
    let log = daemon.log.clone();
    let inside = PathBuf::from(format!("/proc/{}/root{out}", daemon.child.id()));
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(d.queue.join("huge.json"), manifest("huge", &big).to_string()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(d.queue.join("small.json"), manifest("small", &small).to_string()).unwrap();
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    until(Duration::from_secs(120), "huge.error and small.raw", || {
        inside.join("huge.error").is_file() && inside.join("small.raw").is_file()
    });
    let e = std::fs::read_to_string(inside.join("huge.error")).unwrap();
    assert!(e.contains("No space left on device"), "{e}");
    assert!(text().contains("retrying in 1 s"), "one retry first:\n{}", text());
    assert!(!inside.join("huge.raw").exists(), "no partial disk");
    assert!(!d.out.join("small.raw").exists(), "the tmpfs was the daemon's own");
}

#[test]
fn untrusted_paths_and_oversized_manifests_are_refused() {
    let d = dirs();
    let p = disk(&d, "ok", 1 << 20);
    let outside = d.root.join("elsewhere");
    let secret = d.root.join("secret.raw");
    raw_with_data(&secret, 1 << 20);
    std::os::unix::fs::symlink(&secret, d.exports.join("link.raw")).unwrap();
    let conf = format!("POLL_INTERVAL=1\nALLOWED_INPUT_DIRS={}\n", d.exports.display());
    let daemon = Daemon::start(&d, "a", &conf, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    std::os::unix::fs::symlink("/etc/hostname", d.queue.join("evil.json")).unwrap();
    let mut m = manifest("escape1", &p);
    m["output"] = json!({"directory": outside});
    std::fs::write(d.queue.join("escape1.json"), m.to_string()).unwrap();
    let mut m = manifest("escape2", &p);
    m["output"] = json!({"directory": "../../elsewhere"});
    std::fs::write(d.queue.join("escape2.json"), m.to_string()).unwrap();
    let mut m = manifest("sneaky", &p);
    m["disks"][0]["local_path"] = json!(d.exports.join("link.raw"));
    m["disks"][0]["checksum"] = json!(format!("sha256:{}", sha256_hex(&secret)));
    std::fs::write(d.queue.join("sneaky.json"), m.to_string()).unwrap();
    let f = std::fs::File::create(d.queue.join("huge.json")).unwrap();
    f.set_len(100 << 20).unwrap();
    drop(f);
    let mut m = manifest("inside", &p);
    m["output"] = json!({"directory": "sub"});
    std::fs::write(d.queue.join("inside.json"), m.to_string()).unwrap();
    // output.directory is HyperSDK's export directory: ignored, results go to OUTPUT_DIR.
    until(Duration::from_secs(60), "three errors and three disks", || {
        files_with_ext(&d.out, ".error").len() >= 3
            && ["escape1", "escape2", "inside"]
                .iter()
                .all(|n| d.out.join(format!("{n}.qcow2")).is_file())
    });
    let e = |n: &str| std::fs::read_to_string(d.out.join(format!("{n}.error"))).unwrap();
    assert!(e("evil").contains("is a symbolic link"), "{}", e("evil"));
    assert!(e("sneaky").contains("outside ALLOWED_INPUT_DIRS"), "{}", e("sneaky"));
    assert!(e("huge").contains("more than the"), "{}", e("huge"));
    for n in ["evil", "sneaky", "huge"] {
        assert!(e(n).contains(&format!("{}.json", n)), "names the file: {}", e(n));
    }
    assert!(!d.out.join("sub").exists(), "{}", daemon.log());
    assert!(daemon.log().contains("output.directory ../../elsewhere ignored"), "{}", daemon.log());
    assert!(!outside.exists(), "nothing written outside OUTPUT_DIR");
    assert_eq!(std::fs::read_to_string("/etc/hostname").unwrap_or_default(), hostname);
    assert!(files_with_ext(&d.queue, ".json").is_empty(), "{}", daemon.log());
}

#[test]
fn systemd_hears_ready_status_watchdog_and_stopping() {
    let d = dirs();
    let sock_path = d.root.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let p = disk(&d, "web01", 1 << 20);
    let env = [("NOTIFY_SOCKET", sock_path.to_str().unwrap()), ("WATCHDOG_USEC", "1000000")];
    let mut daemon = Daemon::start(&d, "a", "POLL_INTERVAL=1\n", &env);
    let mut got: Vec<String> = Vec::new();
    let recv = |got: &mut Vec<String>| {
        let mut buf = [0u8; 4096];
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    };
    let t = Instant::now();
    while !got.iter().any(|m| m == "READY=1") {
        assert!(t.elapsed() < Duration::from_secs(10), "no READY=1: {got:?}\n{}", daemon.log());
        recv(&mut got);
    }
    std::fs::write(d.queue.join("web01.json"), manifest("web01", &p).to_string()).unwrap();
    let t = Instant::now();
    while !got.iter().any(|m| m.starts_with("STATUS=") && m.contains("done 1")) {
        assert!(t.elapsed() < Duration::from_secs(60), "no STATUS with done 1: {got:?}");
        recv(&mut got);
    }
    assert!(
        got.iter()
            .any(|m| m.starts_with("STATUS=") && m.contains("running 1") && m.contains("web01")),
        "a STATUS names the running job: {got:?}"
    );
    let t = Instant::now();
    while !got.iter().any(|m| m == "WATCHDOG=1") {
        assert!(t.elapsed() < Duration::from_secs(5), "no WATCHDOG=1: {got:?}");
        recv(&mut got);
    }
    let status = Command::new(env!("CARGO_BIN_EXE_hyper2kvm"))
        .args(["status", "--json", "--state-dir"])
        .arg(d.root.join("state-a"))
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0));
    let s: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["counts"]["done"], 1);
    assert_eq!(s["alive"], true);
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait(Duration::from_secs(20)), Some(0));
    while let Ok(n) = {
        let mut buf = [0u8; 4096];
        sock.recv(&mut buf).map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
    } {
        got.push(n);
    }
    assert!(got.iter().any(|m| m == "STOPPING=1"), "{got:?}");
    assert_eq!(got.iter().position(|m| m == "READY=1"), Some(0), "READY=1 first: {got:?}");
    let after = Command::new(env!("CARGO_BIN_EXE_hyper2kvm"))
        .args(["status", "--state-dir"])
        .arg(d.root.join("state-a"))
        .output()
        .unwrap();
    assert_eq!(after.status.code(), Some(3), "a stopped daemon is reported as not running");
}

#[test]
fn bad_configuration_is_refused_at_start_and_on_reload() {
    let d = dirs();
    let mut bad = Daemon::start(&d, "bad", "POLL_INTERVAL=5\nWATCHDIR=/x\n", &[]);
    assert_eq!(bad.wait(Duration::from_secs(10)), Some(2));
    assert!(bad.log().contains("bad.conf:2: WATCHDIR: unknown key"), "{}", bad.log());
    let mut env_bad = Daemon::start(&d, "env", "", &[("MAX_CONCURRENT", "many")]);
    assert_eq!(env_bad.wait(Duration::from_secs(10)), Some(2));
    assert!(env_bad.log().contains("environment: MAX_CONCURRENT: \"many\""), "{}", env_bad.log());

    let mut good = Daemon::start(&d, "good", "POLL_INTERVAL=1\n", &[]);
    until(Duration::from_secs(10), "start", || good.log().contains("watching"));
    std::fs::write(d.root.join("good.conf"), "COMPRESS_LEVEL=99\n").unwrap();
    good.signal(libc::SIGHUP);
    until(Duration::from_secs(10), "reload refused", || good.log().contains("reload refused"));
    assert!(good.log().contains("COMPRESS_LEVEL: 99 is out of range"), "{}", good.log());
    std::fs::write(d.root.join("good.conf"), "POLL_INTERVAL=2\n").unwrap();
    good.signal(libc::SIGHUP);
    until(Duration::from_secs(10), "reloaded", || {
        good.log().contains("reloaded the configuration")
    });
    let p = disk(&d, "after", 1 << 20);
    std::fs::write(d.queue.join("after.json"), manifest("after", &p).to_string()).unwrap();
    until(Duration::from_secs(60), "still serving", || d.out.join("after.qcow2").is_file());
    good.signal(libc::SIGTERM);
    assert_eq!(good.wait(Duration::from_secs(20)), Some(0));
}

/// HyperSDK always names the queue file `artifact-manifest.json` and overwrites it for each
/// export, and polls `{vm}.qcow2` before `{vm}.error` without clearing either: five VMs
/// dropped under that one name (each written after the previous one was claimed) give five
/// results; a stale `web01.qcow2` and `web01.error` of an earlier run are moved aside when the
/// new `web01` job is claimed, so HyperSDK's poll sees only the new result. The manifest's
/// `output.directory` (HyperSDK's export directory) is not where the daemon writes.
#[test]
fn one_queue_file_name_reused_for_five_vms_and_stale_results_moved_aside() {
    let d = dirs();
    // An earlier run of web01 left a disk and an error (a failure after a success).
    std::fs::write(d.out.join("web01.qcow2"), b"stale disk").unwrap();
    std::fs::write(d.out.join("web01.error"), b"stale error\n").unwrap();
    std::fs::write(d.out.join("web01-disk-1.qcow2"), b"stale data disk").unwrap();
    let daemon = Daemon::start(&d, "a", FAST, &[]);
    let queue_file = d.queue.join("artifact-manifest.json");
    let vms = ["web01", "db01", "app01", "cache01", "mail01"];
    for vm in vms {
        let p = disk(&d, vm, 2 << 20);
        let mut m = manifest(vm, &p);
        m["output"] = json!({"directory": d.exports});
        // Written in place, not atomically, as HyperSDK's os.WriteFile does.
        std::fs::write(&queue_file, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        until(Duration::from_secs(30), &format!("{vm}'s manifest claimed"), || {
            !queue_file.exists()
        });
    }
    // (The move happens right after the claim; HyperSDK starts polling seconds later.)
    until(Duration::from_secs(10), "the stale results moved", || {
        daemon.log().contains("earlier results of web01 moved aside")
    });
    // HyperSDK's poll for each VM: `.qcow2` first, then `.error`.
    for vm in vms {
        until(Duration::from_secs(90), &format!("{vm}'s result"), || {
            d.out.join(format!("{vm}.qcow2")).is_file()
                || d.out.join(format!("{vm}.error")).is_file()
        });
        assert!(!d.out.join(format!("{vm}.error")).exists(), "{vm} failed:\n{}", daemon.log());
        let disk = d.out.join(format!("{vm}.qcow2"));
        sh(Command::new("qemu-img")
            .args(["compare", "-q", "-f", "raw", "-F", "qcow2"])
            .arg(d.exports.join(format!("{vm}.raw")))
            .arg(&disk));
    }
    assert!(
        !d.exports
            .read_dir()
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().ends_with(".qcow2") })
    );
    // The stale files are kept, aside, never deleted.
    let aside: Vec<PathBuf> = std::fs::read_dir(d.out.join(".hyper2kvm/superseded"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].file_name().unwrap().to_string_lossy().starts_with("web01-"));
    assert_eq!(std::fs::read(aside[0].join("web01.qcow2")).unwrap(), b"stale disk");
    assert_eq!(std::fs::read(aside[0].join("web01.error")).unwrap(), b"stale error\n");
    assert_eq!(std::fs::read(aside[0].join("web01-disk-1.qcow2")).unwrap(), b"stale data disk");
    assert!(daemon.log().contains("earlier results of web01 moved aside"), "{}", daemon.log());
    assert_eq!(records(&d, "done").len(), 5, "{}", daemon.log());
}

/// A workflow manifest (contract §3b) for one raw disk; the guest fixes off (the disks hold
/// data, not an OS). Keys sorted, as the REST API's map round-trip leaves them.
fn workflow_pipeline(disk: &Path, out: &Path, compress: bool) -> Value {
    json!({
        "convert": {"compress": compress, "output_format": "qcow2", "output_path": out},
        "fix": {"fstab": {"enabled": false, "mode": "stabilize-all"}, "grub": false,
                "initramfs": {"enabled": false, "regenerate": false},
                "network": {"enabled": false, "fix_level": "basic"}},
        "inspect": {"detect_os": true, "enabled": true},
        "load": {"source_path": disk, "source_type": "raw"},
        "validate": {"boot_test": false, "enabled": true}
    })
}

/// Files of a workflow state directory's date folder (or of `processing/`).
fn wf_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|e| {
            if e.path().is_dir() {
                std::fs::read_dir(e.path())
                    .unwrap()
                    .flatten()
                    .map(|f| f.file_name().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            } else {
                vec![e.file_name().to_string_lossy().into_owned()]
            }
        })
        .collect();
    v.sort();
    v
}

/// The workflow directories: a single and a batch workflow manifest end in
/// `processed/<date>/` with their reports; one naming a vCenter inventory path and one that is
/// not JSON end in `failed/<date>/` with `.error.json`, and the worker keeps serving; `kill -9`
/// during a job, restart: the job runs again, once, and ends processed.
#[test]
fn workflow_directories_processed_failed_and_kill_9() {
    let d = dirs();
    let wf = d.root.join("manifest-workflow");
    let inbox = wf.join("to_be_processed");
    let conf = format!("{FAST}WORKFLOW_DIR={}\n", wf.display());
    let daemon = Daemon::start(&d, "a", &conf, &[]);
    until(Duration::from_secs(10), "the workflow directories", || inbox.is_dir());
    let single = disk(&d, "wf-single", 2 << 20);
    let (b1, b2) = (disk(&d, "wf-b1", 2 << 20), disk(&d, "wf-b2", 3 << 20));
    let out = d.root.join("wf-out");
    let write = |name: &str, body: &str| {
        let tmp = d.root.join(format!(".{name}"));
        std::fs::write(&tmp, body).unwrap();
        std::fs::rename(&tmp, inbox.join(name)).unwrap();
    };
    write(
        "web01-20261204-101500.json",
        &json!({"pipeline": workflow_pipeline(&single, &out.join("web01.qcow2"), false), "version": "1.0"})
            .to_string(),
    );
    write(
        "pair-20261204-101501.json",
        &json!({"batch": {"vms": [
            {"name": "b1", "pipeline": workflow_pipeline(&b1, &out, true)},
            {"name": "b2", "pipeline": workflow_pipeline(&b2, &out, false)}]}, "version": "1.0"})
        .to_string(),
    );
    let mut vc = workflow_pipeline(&single, &out, false);
    vc["load"] = json!({"source_type": "vcenter", "source_path": "/DC1/vm/Prod/web02"});
    write("web02-20261204-101502.json", &json!({"version": "1.0", "pipeline": vc}).to_string());
    write("junk-20261204-101503.json", "this is not a workflow manifest {");
    let processed = wf.join("processed");
    let failed = wf.join("failed");
    until(Duration::from_secs(60), "two processed and two failed", || {
        wf_files(&processed).len() == 4 && wf_files(&failed).len() == 4
    });
    assert_eq!(
        wf_files(&processed),
        [
            "pair-20261204-101501.json",
            "pair-20261204-101501.json.report.json",
            "web01-20261204-101500.json",
            "web01-20261204-101500.json.report.json"
        ]
    );
    let date_dir = std::fs::read_dir(&processed).unwrap().next().unwrap().unwrap().path();
    let date = date_dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(date.len() == 10 && date.as_bytes()[4] == b'-', "{date}");
    let report: Value = serde_json::from_slice(
        &std::fs::read(date_dir.join("pair-20261204-101501.json.report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["status"], "processed");
    assert_eq!(report["result"]["vms"].as_array().unwrap().len(), 2, "{report}");
    for (name, src) in [("web01", &single), ("b1", &b1), ("b2", &b2)] {
        sh(Command::new("qemu-img")
            .args(["compare", "-q", "-f", "raw", "-F", "qcow2"])
            .arg(src)
            .arg(out.join(format!("{name}.qcow2"))));
    }
    let fail_dir = std::fs::read_dir(&failed).unwrap().next().unwrap().unwrap().path();
    for (name, why) in [
        ("web02-20261204-101502.json", "\"vcenter\" is not a local file"),
        ("junk-20261204-101503.json", "is not a JSON document"),
    ] {
        let e: Value = serde_json::from_slice(
            &std::fs::read(fail_dir.join(format!("{name}.error.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(e["status"], "failed");
        assert_eq!(e["original_name"], name);
        for k in ["job_id", "failed_at", "exception"] {
            assert!(e[k].as_str().is_some_and(|v| !v.is_empty()), "{k}: {e}");
        }
        assert!(e["error"].as_str().unwrap().contains(why), "{e}");
    }
    // Still serving.
    write(
        "again-20261204-101600.json",
        &json!({"pipeline": workflow_pipeline(&single, &out.join("again.qcow2"), false), "version": "1.0"})
            .to_string(),
    );
    until(Duration::from_secs(30), "the next one processed", || wf_files(&processed).len() == 6);
    assert!(wf_files(&wf.join("processing")).is_empty());
    drop(daemon);

    // Two workers on one directory: each of eight files runs exactly once.
    let (one, two) = (Daemon::start(&d, "one", &conf, &[]), Daemon::start(&d, "two", &conf, &[]));
    let names: Vec<String> = (0..8).map(|i| format!("race{i}-20261204-1017{i:02}.json")).collect();
    for (i, n) in names.iter().enumerate() {
        let p = workflow_pipeline(&single, &out.join(format!("race{i}.qcow2")), false);
        write(n, &json!({"version": "1.0", "pipeline": p}).to_string());
    }
    until(Duration::from_secs(120), "eight more processed", || wf_files(&processed).len() == 22);
    let logs = one.log() + &two.log();
    for n in &names {
        assert_eq!(logs.matches(&format!("workflow {n}: claimed")).count(), 1, "{n}: {logs}");
    }
    assert!(wf_files(&failed).len() == 4 && wf_files(&inbox).is_empty());
    drop((one, two));

    // kill -9 in the middle of a slow job; a new daemon runs it again, once.
    let big = big_disk(&d, "wf-big", 384);
    let mut p = workflow_pipeline(&big, &out.join("big.qcow2"), true);
    p["convert"]["compress"] = json!(true);
    let mut first = Daemon::start(&d, "first", &conf, &[]);
    write("big-20261204-102000.json", &json!({"version": "1.0", "pipeline": p}).to_string());
    let temp = out.join(".big.qcow2.hyper2kvm-part");
    until(Duration::from_secs(60), "the workflow conversion to start", || {
        std::fs::metadata(&temp).is_ok_and(|m| m.len() > 0)
    });
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    assert_eq!(
        wf_files(&wf.join("processing")),
        ["big-20261204-102000.json", "big-20261204-102000.json.meta.json"]
    );
    let second = Daemon::start(&d, "second", &conf, &[]);
    until(Duration::from_secs(300), "the big job processed", || {
        wf_files(&processed).iter().any(|n| n == "big-20261204-102000.json.report.json")
    });
    assert!(second.log().contains("its worker died; it runs again"), "{}", second.log());
    assert_eq!(second.log().matches("workflow big-20261204-102000.json: claimed").count(), 1);
    sh(Command::new("qemu-img")
        .args(["compare", "-q", "-f", "raw", "-F", "qcow2"])
        .arg(&big)
        .arg(out.join("big.qcow2")));
    assert!(wf_files(&wf.join("processing")).is_empty());
    assert!(wf_files(&inbox).is_empty());
}
