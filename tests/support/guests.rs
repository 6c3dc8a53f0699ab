//! The Debian test guests of `tests/guests/debian.sh`, and the `hyper2kvm` executable as the
//! guest tests run it (libguestfs under TCG). Included by the daemon crate's guest tests,
//! beside `boot.rs`.

use std::path::PathBuf;
use std::process::Command;

use crate::boot::tail;

/// The cached guest of `variant` (built on first use): its VMDK, MAC and kernel version.
pub fn debian(variant: &str) -> (PathBuf, String, String) {
    let vmdk = build("debian.sh", variant);
    let read = |f: &str| {
        std::fs::read_to_string(vmdk.parent().unwrap().join(f)).unwrap().trim().to_string()
    };
    let (mac, kernel) = (read("mac"), read("kernel"));
    (vmdk, mac, kernel)
}

/// The cached guest of `tests/guests/deleted.sh`: `base` after 1 GiB was written to its root
/// and deleted (built on first use); its VMDK and MAC.
#[allow(dead_code)]
pub fn deleted(base: &str) -> (PathBuf, String) {
    let vmdk = build("deleted.sh", base);
    let mac = std::fs::read_to_string(vmdk.parent().unwrap().join("mac")).unwrap();
    (vmdk, mac.trim().to_string())
}

/// Runs a guest builder of tests/guests with its one argument; the VMDK it printed.
fn build(script: &str, arg: &str) -> PathBuf {
    let path = format!("{}/../tests/guests/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&path).arg(arg).output().unwrap();
    assert!(
        out.status.success(),
        "{script} {arg}: building the test guest failed:\n{}",
        tail(&String::from_utf8_lossy(&out.stderr), 40)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// What the builder wrote next to a cached guest's VMDK: `macs` (one per line) or `expect`
/// (the marker's `root=`, `net=`, `swap=` after a conversion to virtio, one per line).
#[allow(dead_code)]
pub fn facts(vmdk: &std::path::Path, file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(vmdk.parent().unwrap().join(file)).unwrap();
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

/// `hyper2kvm` with libguestfs on TCG: these machines' /dev/kvm cannot run a Linux guest.
pub fn hyper2kvm() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hyper2kvm"));
    c.env("LIBGUESTFS_BACKEND", "direct").env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg");
    c
}

/// `hyper2kvm inspect --json DISK` with our own OS inspection and libguestfs's compared in the
/// same session (`HYPER2KVM_INSPECTOR=compare`: any difference fails the command).
#[allow(dead_code)]
pub fn inspect_compared(disk: &std::path::Path) -> std::process::Output {
    hyper2kvm()
        .env("HYPER2KVM_INSPECTOR", "compare")
        .args(["inspect", "--json"])
        .arg(disk)
        .output()
        .unwrap()
}
