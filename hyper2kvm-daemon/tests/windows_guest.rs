//! Windows guests, on stand-ins: no real Windows can be installed or booted on this machine, so
//! `tests/support/windows.rs` builds disks from the real formats (NTFS made by libguestfs, real
//! registry hives, a PE32+/PE32 `cmd.exe`) carrying what a Windows Server 2019, Server 2022 or
//! Windows 10 install has. These tests cover what exists of issue 8 so far: inspection.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::process::Command;

use serde_json::Value;
use support::windows::{Release, standin};

fn hyper2kvm() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hyper2kvm"));
    c.env("LIBGUESTFS_BACKEND", "direct").env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg");
    c
}

fn inspect(r: Release) -> Value {
    let disk = standin(r);
    let before = support::sha256_hex(&disk);
    let o = hyper2kvm().args(["inspect", "--json"]).arg(&disk).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(support::sha256_hex(&disk), before, "inspection is read-only");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["inputs"][0]["result"]["guest"].clone()
}

/// Inspects the stand-in of `r` and checks what inspection must report for it.
fn check_inspection(r: Release) {
    let (product, major, minor, _, _, _, host, amd64, uefi) = r.facts();
    let g = inspect(r);
    assert_eq!(g["os_type"], "windows", "{r:?}: {g}");
    assert_eq!(g["product_name"], product, "{r:?}");
    assert_eq!(g["version"], format!("{major}.{minor}"), "{r:?}");
    assert_eq!(g["arch"], if amd64 { "x86_64" } else { "i386" }, "{r:?}");
    assert_eq!(g["hostname"], host, "{r:?}");
    assert_eq!(g["firmware"], if uefi { "uefi" } else { "bios" }, "{r:?}");
}

#[test]
fn inspection_of_windows_server_2019_bios() {
    check_inspection(Release::Server2019);
}

#[test]
fn inspection_of_windows_server_2022_uefi_gpt() {
    check_inspection(Release::Server2022);
}

#[test]
fn inspection_of_windows_10() {
    check_inspection(Release::Windows10);
}

#[test]
fn inspection_of_windows_10_32_bit() {
    check_inspection(Release::Windows10x86);
}
