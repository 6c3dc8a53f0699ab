//! Windows guests, on stand-ins: no real Windows can be installed or booted on this machine, so
//! `tests/support/windows.rs` builds disks from the real formats (NTFS made by libguestfs, real
//! registry hives, a PE32+/PE32 `cmd.exe`) carrying what a Windows Server 2019, Server 2022 or
//! Windows 10 install has. These tests cover what exists of issue 8 so far: inspection.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::process::Command;

use serde_json::Value;
use support::windows::{Release, State, standin, standin_in};

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
    let (_, _, _, build, itype, edition, _, _, _) = r.facts();
    let w = &g["windows"];
    assert_eq!(w["systemroot"], "/Windows", "{r:?}: {w}");
    assert_eq!(w["current_control_set"], "ControlSet001");
    assert_eq!(w["release"]["major"], major);
    assert_eq!(w["release"]["minor"], minor);
    assert_eq!(w["release"]["build"], build);
    assert_eq!(w["release"]["server"], itype == "Server");
    assert_eq!(w["edition"], edition);
    assert_eq!(w["installation_type"], itype);
    assert_eq!(w["vmware_tools"][0]["name"], "VMware Tools");
    assert_eq!(w["vmware_tools"][0]["product_code"], "{9D2A5B3C-6E4F-4A11-8C1A-0E5A4C3B2D10}");
    let services: Vec<&str> =
        w["vmware_services"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(services, ["VMTools", "vmci", "vm3dmp", "vmmouse", "vmhgfs", "vsock"], "{r:?}");
    assert_eq!(
        (w["hibernated"].as_bool(), w["fast_startup"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(w["bitlocker"], false);
    if !uefi {
        // MountedDevices names C: by the MBR signature and partition offset.
        assert_eq!(w["drive_letters"]["C"], "/dev/sda1", "{r:?}: {w}");
    }
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
fn inspection_of_windows_7() {
    check_inspection(Release::Windows7);
}

#[test]
fn inspection_of_windows_10_32_bit() {
    check_inspection(Release::Windows10x86);
}

/// Converting a stand-in left in `state` is refused with a message containing `want`, exit 2,
/// nothing written and the source unchanged.
fn check_refused(state: State, want: &str) {
    let disk = standin_in(Release::Windows10, state);
    let before = support::sha256_hex(&disk);
    let t = support::scratch();
    let out = t.path().join("out");
    let o = hyper2kvm().arg("convert").arg(&disk).arg("-o").arg(&out).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{state:?}: {err}");
    assert!(err.contains(want), "{state:?}: {err}");
    assert!(err.contains(&disk.display().to_string()), "names the input: {err}");
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{state:?}: nothing written, found {left:?}");
    assert_eq!(support::sha256_hex(&disk), before, "the source is untouched");
}

#[test]
fn a_hibernated_windows_is_refused() {
    check_refused(State::Hibernated, "the Windows volume is hibernated");
}

#[test]
fn a_windows_left_by_fast_startup_is_refused() {
    check_refused(State::FastStartup, "Fast Startup");
}

/// Converts the stand-in of `r` with a virtio-win tree holding `entries`; the command's output.
fn convert_with_drivers(
    r: Release,
    entries: &[(&str, &str, &str)],
    t: &tempfile::TempDir,
) -> std::process::Output {
    let tree = t.path().join("virtio-win");
    support::windows::virtio_win_tree(&tree, entries);
    let disk = standin(r);
    let before = support::sha256_hex(&disk);
    let o = hyper2kvm()
        .arg("convert")
        .arg(&disk)
        .arg("-o")
        .arg(t.path().join("out"))
        .arg("--json")
        .arg("--virtio-win")
        .arg(&tree)
        .output()
        .unwrap();
    assert_eq!(support::sha256_hex(&disk), before, "the source is untouched");
    o
}

/// Reads `/Windows/System32/config/SYSTEM` and viostor.sys out of a converted disk.
fn read_back(disk: &std::path::Path, dir: &std::path::Path) -> (String, String) {
    let hive = dir.join("SYSTEM.out");
    let out = Command::new("guestfish")
        .env("LIBGUESTFS_BACKEND", "direct")
        .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
        .args(["--ro", "-a"])
        .arg(disk)
        .args(["-m", "/dev/sda1", "download", "/Windows/System32/config/SYSTEM"])
        .arg(&hive)
        .args([":", "cat", "/Windows/System32/drivers/viostor.sys"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (support::regf::export(&hive, "SYSTEM"), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn viostor_is_injected_into_windows_7_with_the_critical_device_database() {
    let t = support::scratch();
    let o = convert_with_drivers(Release::Windows7, &[("viostor", "w7", "amd64")], &t);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let changes = report["report"]["changes"].as_array().unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c["file"] == "HKLM\\SYSTEM\\ControlSet001\\Services\\viostor\\Start"
                && c["new"] == "dword:0"),
        "{changes:?}"
    );
    let disk = t.path().join("out").join(format!(
        "{}.qcow2",
        report["report"]["outputs"][0]["path"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".qcow2")
    ));
    let (system, sys) = read_back(&disk, t.path());
    assert_eq!(sys.trim(), "viostor w7 amd64 sys", "the driver file came from the tree");
    for want in [
        "[SYSTEM\\ControlSet001\\Services\\viostor]",
        "\"Type\"=dword:00000001",
        "\"Start\"=dword:00000000",
        "\"ErrorControl\"=dword:00000001",
        "\"Group\"=str(1):\"SCSI miniport\"",
        "\"ImagePath\"=str(2):\"system32\\drivers\\viostor.sys\"",
        "[SYSTEM\\ControlSet001\\Control\\CriticalDeviceDatabase\\pci#ven_1af4&dev_1001&subsys_00021af4&rev_00]",
        "[SYSTEM\\ControlSet001\\Control\\CriticalDeviceDatabase\\pci#ven_1af4&dev_1042&subsys_11001af4&rev_01]",
        "\"ClassGUID\"=str(1):\"{4D36E97B-E325-11CE-BFC1-08002BE10318}\"",
        "\"Service\"=str(1):\"viostor\"",
    ] {
        assert!(system.contains(want), "missing {want} in:\n{system}");
    }
    assert!(system.contains("\"ComputerName\"=str(1):\"WIN7-PC\""), "the rest of the hive is kept");
}

#[test]
fn viostor_for_windows_10_comes_from_the_nearest_directory_and_32_bit_needs_x86_drivers() {
    let t = support::scratch();
    let o = convert_with_drivers(Release::Windows10, &[("viostor", "w8.1", "amd64")], &t);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let disk = std::path::PathBuf::from(report["report"]["outputs"][0]["path"].as_str().unwrap());
    let (system, sys) = read_back(&disk, t.path());
    assert_eq!(sys.trim(), "viostor w8.1 amd64 sys", "w10 falls back to w8.1");
    assert!(system.contains("[SYSTEM\\ControlSet001\\Services\\viostor]"), "{system}");
    assert!(!system.contains("CriticalDeviceDatabase"), "not for Windows 8 and later");
    let warnings = report["report"]["warnings"].to_string();
    assert!(warnings.contains("not done yet"), "the missing parts are said: {warnings}");

    let t = support::scratch();
    let o = convert_with_drivers(Release::Windows10x86, &[("viostor", "w10", "amd64")], &t);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no viostor driver for w10 (x86)"), "{err}");
    let left: Vec<_> = std::fs::read_dir(t.path().join("out"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing written: {left:?}");
}
