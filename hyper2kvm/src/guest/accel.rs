//! Choosing how the libguestfs appliance (and our boot tests) run: KVM when it works, TCG
//! when it does not.
//!
//! `/dev/kvm` existing is not proof that KVM can run a Linux guest (on some nested hosts the
//! guest hangs), so in `Auto` mode a bounded probe boots the host's kernel under KVM for a few
//! seconds and watches its serial output. `HYPER2KVM_ACCEL=kvm|tcg`, or libguestfs's own
//! `LIBGUESTFS_BACKEND_SETTINGS=force_tcg`, decides without probing.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Hardware acceleration for the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualisation.
    Kvm,
    /// Software emulation (slow, always works).
    Tcg,
}

/// How to choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccelChoice {
    /// From the environment, else a bounded KVM probe.
    #[default]
    Auto,
    /// Always this one.
    Force(Accel),
}

/// How long the KVM probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

/// What the environment says, if anything.
fn from_env() -> Option<Accel> {
    match std::env::var("HYPER2KVM_ACCEL").ok().as_deref() {
        Some("kvm") => return Some(Accel::Kvm),
        Some("tcg") => return Some(Accel::Tcg),
        _ => {}
    }
    let settings = std::env::var("LIBGUESTFS_BACKEND_SETTINGS").unwrap_or_default();
    settings.split(':').any(|s| s == "force_tcg").then_some(Accel::Tcg)
}

/// The host kernel the probe boots (libguestfs needs one in /boot too).
fn host_kernel() -> Option<PathBuf> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
        .collect();
    kernels.sort();
    kernels.pop()
}

/// Boots the host kernel under KVM with no root and reports whether it got far enough to
/// print that it is freeing init memory (the point where hung guests never arrive).
fn kvm_boots() -> bool {
    let Some(kernel) = host_kernel() else { return false };
    let child = Command::new("qemu-system-x86_64")
        .args(["-machine", "accel=kvm", "-cpu", "host", "-m", "256", "-nodefaults", "-nographic"])
        .args(["-no-reboot", "-serial", "stdio", "-kernel"])
        .arg(&kernel)
        .args(["-append", "console=ttyS0 panic=-1 quiet loglevel=6"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    let Some(mut out) = child.stdout.take() else { return false };
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&text).contains("Freeing unused kernel") {
                return true;
            }
        }
        false
    });
    let started = Instant::now();
    while !reader.is_finished() && started.elapsed() < PROBE_TIMEOUT {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap_or(false)
}

/// Decides once per process.
pub fn choose(choice: AccelChoice) -> Accel {
    static AUTO: OnceLock<Accel> = OnceLock::new();
    match choice {
        AccelChoice::Force(a) => a,
        AccelChoice::Auto => *AUTO.get_or_init(|| {
            if let Some(a) = from_env() {
                return a;
            }
            let kvm = std::fs::metadata("/dev/kvm").is_ok() && kvm_boots();
            if kvm { Accel::Kvm } else { Accel::Tcg }
        }),
    }
}
