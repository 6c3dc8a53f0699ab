//! What the daemon tells the world, against real servers this test starts on 127.0.0.1: the
//! Prometheus endpoint scraped over HTTP after good, bad and retried jobs; webhooks received by
//! a Python HTTPS server with a CA made here (trusted through `SSL_CERT_FILE`, as the system's
//! store is read) that refuses the first delivery, and by a plain HTTP one; mail received by
//! aiosmtpd (from the project's .venv).

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Setup {
    t: tempfile::TempDir,
    queue: PathBuf,
    out: PathBuf,
}

fn setup() -> Setup {
    let t = scratch();
    let (queue, out) = (t.path().join("queue"), t.path().join("output"));
    for d in [&queue, &out, &t.path().join("exports")] {
        std::fs::create_dir_all(d).unwrap();
    }
    Setup { t, queue, out }
}

impl Setup {
    fn root(&self) -> &Path {
        self.t.path()
    }

    /// A raw disk with `mib` MiB of data and a manifest for it (guest stages off).
    fn job(&self, vm: &str, mib: u64, good_checksum: bool) -> String {
        let p = self.root().join("exports").join(format!("{vm}.raw"));
        let mut f = std::fs::File::create(&p).unwrap();
        for i in 0..mib {
            f.write_all(&noise(1 << 20, i + 7)).unwrap();
        }
        let sum = if good_checksum { sha256_hex(&p) } else { "0".repeat(64) };
        json!({
            "manifest_version": "1.0",
            "source": {"provider": "vsphere", "vm_name": vm},
            "vm": {"cpu": 1, "mem_gb": 1},
            "disks": [{"id": "disk-0", "source_format": "raw", "bytes": mib << 20,
                       "local_path": p, "checksum": format!("sha256:{sum}")}],
            "pipeline": {"inspect": {"enabled": false}, "fix": {"enabled": false}}
        })
        .to_string()
    }

    /// Starts the daemon with `conf`, inside `wrapper` when given.
    fn daemon(&self, conf: &str, env: &[(&str, &str)], wrapper: &[&str]) -> (Proc, PathBuf) {
        let conf_path = self.root().join("d.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = self.root().join("d.log");
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
            .arg(format!("--watch-dir={}", self.queue.display()))
            .arg(format!("--output-dir={}", self.out.display()))
            .arg("--log-level=debug")
            .arg(format!("--config={}", conf_path.display()))
            .arg(format!("--state-dir={}", self.root().join("state").display()))
            .env_remove("NOTIFY_SOCKET")
            .env("TEMP_DIR", self.root().join("tmp"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            c.env(k, v);
        }
        (Proc(c.spawn().unwrap()), log)
    }
}

fn until(limit: Duration, what: &str, log: &Path, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        assert!(t.elapsed() < limit, "timed out after {limit:?} waiting for {what}:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A port free right now on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET path` over plain HTTP/1.1: (status, body).
fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

/// The value of one sample line (`name{labels} value`) in a Prometheus exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} not in:\n{text}"))
}

#[test]
fn metrics_count_good_bad_and_retried_jobs_and_healthz_answers() {
    let s = setup();
    let port = free_port();
    // OUTPUT_DIR is a 24 MiB tmpfs of the daemon's own (an unprivileged user and mount
    // namespace): the 40 MiB job runs out of space, is retried once, then fails.
    let out = s.out.display().to_string();
    let script = format!("mount -t tmpfs -o size=24m tmpfs '{out}' && exec \"$@\"");
    let wrapper = ["unshare", "-rm", "sh", "-c", script.as_str(), "sh"];
    let conf = format!(
        "POLL_INTERVAL=1\nRETRY_LIMIT=1\nRETRY_BACKOFF=1\nQEMU_CONVERT_OPTIONS=\"-O raw\"\n\
         METRICS_LISTEN=127.0.0.1:{port}\n"
    );
    let (d, log) = s.daemon(&conf, &[], &wrapper);
    until(Duration::from_secs(20), "the metrics endpoint", &log, || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let (code, body) = http_get(port, "/healthz");
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let (_, before) = http_get(port, "/metrics");
    assert_eq!(sample(&before, "hyper2kvm_jobs_running"), 0.0);
    for (vm, mib, ok) in [("good", 2, true), ("bad", 1, false), ("huge", 40, true)] {
        std::fs::write(s.queue.join(format!("{vm}.json")), s.job(vm, mib, ok)).unwrap();
    }
    let inside = PathBuf::from(format!("/proc/{}/root{out}", d.0.id()));
    until(Duration::from_secs(180), "good.raw, bad.error, huge.error", &log, || {
        ["good.raw", "bad.error", "huge.error"].iter().all(|f| inside.join(f).is_file())
    });
    let mut text = String::new();
    until(Duration::from_secs(10), "four attempts counted", &log, || {
        text = http_get(port, "/metrics").1;
        text.contains("hyper2kvm_job_duration_seconds_count 4")
    });
    assert_eq!(sample(&text, "hyper2kvm_jobs_total{result=\"success\"}"), 1.0, "{text}");
    assert_eq!(sample(&text, "hyper2kvm_jobs_total{result=\"failed\"}"), 2.0, "{text}");
    assert_eq!(sample(&text, "hyper2kvm_jobs_total{result=\"retried\"}"), 1.0, "{text}");
    assert_eq!(sample(&text, "hyper2kvm_jobs_running"), 0.0);
    assert_eq!(sample(&text, "hyper2kvm_queue_depth"), 0.0);
    assert!(sample(&text, "hyper2kvm_job_duration_seconds_sum") > 0.0);
    assert!(text.contains("# TYPE hyper2kvm_job_duration_seconds histogram"), "{text}");
    // The good job's convert stage and its 2 MiB; the bad one stopped at verify.
    assert!(sample(&text, "hyper2kvm_stage_duration_seconds_count{stage=\"convert\"}") >= 1.0);
    assert!(sample(&text, "hyper2kvm_stage_duration_seconds_count{stage=\"verify\"}") >= 2.0);
    assert!(sample(&text, "hyper2kvm_converted_bytes_total") >= f64::from(2u32 << 20), "{text}");
    assert_eq!(http_get(port, "/nothing").0, 404);
    assert_eq!(http_get(port, "/healthz").0, 200, "still alive after the jobs");
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with openssl: (ca, cert, key).
fn test_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let ossl = |args: &[&str]| {
        let o = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    let words = |s: String| s.split(' ').map(String::from).collect::<Vec<_>>();
    let mut ca = words(format!("req -x509 {ec} -keyout ca.key -out ca.pem -days 2"));
    ca.extend(
        ["-subj", "/CN=hyper2kvm test CA", "-addext", "basicConstraints=critical,CA:TRUE"]
            .map(String::from),
    );
    ossl(&ca.iter().map(String::as_str).collect::<Vec<_>>());
    let srv = words(format!("req {ec} -keyout srv.key -out srv.csr -subj /CN=127.0.0.1"));
    ossl(&srv.iter().map(String::as_str).collect::<Vec<_>>());
    std::fs::write(
        p("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ossl(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    (p("ca.pem"), p("srv.pem"), p("srv.key"))
}

/// Starts hook_server.py; (process, port, file of received requests).
fn hook_server(dir: &Path, fail_first: u32, tls: Option<(&Path, &Path)>) -> (Proc, u16, PathBuf) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/hook_server.py");
    let got = dir.join(format!("hooks-{}.jsonl", tls.is_some()));
    let mut c = Command::new("python3");
    c.arg(script).arg(&got).arg(fail_first.to_string());
    if let Some((cert, key)) = tls {
        c.arg(cert).arg(key);
    }
    let mut child = c.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (Proc(child), line.trim().parse().unwrap(), got)
}

fn received(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn https_webhook_is_retried_after_a_503_and_mail_reaches_a_real_smtp_server() {
    let s = setup();
    let (ca, cert, key) = test_ca(s.root());
    let (_hooks, hport, got) = hook_server(s.root(), 1, Some((&cert, &key)));
    let smtp = free_port();
    let maildir = s.root().join("maildir");
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let _smtpd = Proc(
        Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{smtp}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let conf = format!(
        "POLL_INTERVAL=1\nQEMU_CONVERT_OPTIONS=\"-O qcow2\"\nWEBHOOK_URL=https://127.0.0.1:{hport}/hook\n\
         WEBHOOK_RETRIES=2\nNOTIFY_EMAIL=\"ops@example.com, Migration Team <team@example.com>\"\n\
         SMTP_HOST=127.0.0.1\nSMTP_PORT={smtp}\nSMTP_FROM=hyper2kvm@example.com\n"
    );
    let ca = ca.display().to_string();
    let (_d, log) = s.daemon(&conf, &[("SSL_CERT_FILE", ca.as_str())], &[]);
    std::fs::write(s.queue.join("web.json"), s.job("web", 2, true)).unwrap();
    std::fs::write(s.queue.join("db.json"), s.job("db", 1, false)).unwrap();
    // 2 jobs: the first delivery answered 503, then 2 delivered.
    until(Duration::from_secs(120), "three webhook requests", &log, || {
        received(&got).iter().filter(|r| r["status"] == 204).count() == 2
    });
    let hooks = received(&got);
    assert_eq!(hooks.len(), 3, "{hooks:?}");
    assert_eq!(hooks[0]["status"], 503);
    assert!(
        hooks[1..].iter().any(|h| h["body"] == hooks[0]["body"]),
        "the refused delivery is sent again: {hooks:?}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("answered 503 Service Unavailable (try 1 of 3)"), "{text}");
    let mut events: Vec<Value> = hooks[1..]
        .iter()
        .map(|r| {
            assert_eq!(r["path"], "/hook");
            assert_eq!(r["content_type"], "application/json");
            serde_json::from_str(r["body"].as_str().unwrap()).unwrap()
        })
        .collect();
    events.sort_by_key(|e| e["vm_name"].as_str().unwrap().to_string());
    assert_eq!(events[0]["vm_name"], "db");
    assert_eq!(events[0]["event"], "job.failed");
    assert_eq!(events[0]["error"]["kind"], "checksum");
    assert_eq!(events[1]["vm_name"], "web");
    assert_eq!(events[1]["event"], "job.succeeded");
    assert!(events[1]["outputs"].to_string().contains("web.qcow2"), "{}", events[1]);
    // One mail per job, to both recipients.
    let new = maildir.join("new");
    until(Duration::from_secs(60), "two mails", &log, || {
        std::fs::read_dir(&new).map(|d| d.count()).unwrap_or(0) == 2
    });
    let mails: Vec<String> = std::fs::read_dir(&new)
        .unwrap()
        // Undo quoted-printable's soft line breaks (long lines are wrapped at 76 characters).
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .replace("=\r\n", "")
                .replace("=\n", "")
        })
        .collect();
    let web = mails.iter().find(|m| m.contains("Subject: hyper2kvm: web succeeded")).unwrap();
    assert!(web.contains("From: hyper2kvm@example.com"), "{web}");
    assert!(web.contains("ops@example.com") && web.contains("team@example.com"), "{web}");
    assert!(web.contains("web.qcow2"), "lists the outputs: {web}");
    let db = mails.iter().find(|m| m.contains("Subject: hyper2kvm: db failed")).unwrap();
    assert!(db.contains("the manifest says 0000"), "says why: {db}");
}

#[test]
fn plain_http_webhook_and_an_untrusted_https_one() {
    let s = setup();
    let (_plain, port, got) = hook_server(s.root(), 0, None);
    let conf = format!(
        "POLL_INTERVAL=1\nQEMU_CONVERT_OPTIONS=\"-O qcow2\"\nWEBHOOK_URL=http://127.0.0.1:{port}/h\n"
    );
    let (d, log) = s.daemon(&conf, &[], &[]);
    std::fs::write(s.queue.join("one.json"), s.job("one", 1, true)).unwrap();
    until(Duration::from_secs(60), "the http webhook", &log, || received(&got).len() == 1);
    let e: Value = serde_json::from_str(received(&got)[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!((e["event"].as_str(), e["vm_name"].as_str()), (Some("job.succeeded"), Some("one")));
    drop(d);
    // A server whose CA is not trusted: the delivery fails with the TLS reason, logged with the
    // job id, and is not retried forever.
    let (_ca, cert, key) = test_ca(s.root());
    let (_tls, tport, tgot) = hook_server(s.root(), 0, Some((&cert, &key)));
    let conf = format!(
        "POLL_INTERVAL=1\nQEMU_CONVERT_OPTIONS=\"-O qcow2\"\nWEBHOOK_URL=https://127.0.0.1:{tport}/h\n\
         WEBHOOK_RETRIES=1\n"
    );
    let (_d2, log2) = s.daemon(&conf, &[], &[]);
    std::fs::write(s.queue.join("two.json"), s.job("two", 1, true)).unwrap();
    until(Duration::from_secs(60), "the delivery to give up", &log2, || {
        std::fs::read_to_string(&log2).unwrap_or_default().contains("not delivered")
    });
    let text = std::fs::read_to_string(&log2).unwrap();
    let line = text.lines().find(|l| l.contains("not delivered")).unwrap();
    assert!(line.contains("webhook https://127.0.0.1") && line.contains("] webhook"), "{line}");
    assert!(line.to_lowercase().contains("certificate"), "says why: {line}");
    assert!(received(&tgot).is_empty(), "nothing was accepted over an untrusted connection");
}
