//! Windows guests, on stand-ins: no real Windows can be installed or booted on this machine, so
//! `tests/support/windows.rs` builds disks from the real formats (NTFS made by libguestfs, real
//! registry hives, a PE32+/PE32 `cmd.exe`) carrying what a Windows Server 2019, Server 2022,
//! Windows 10 or Windows 7 install has, and virtio-win trees (and an ISO made by genisoimage) in
//! the real layout with placeholder driver files. The tests inspect them, convert them, and read
//! the converted disks back with guestfish and `hivexregedit --export`: every registry key and
//! value, the copied files, the first-boot script, and the domain XML.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
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
    let f = r.facts();
    let (product, major, minor, host, amd64, uefi) =
        (f.product, f.major, f.minor, f.host, f.amd64, f.uefi);
    let g = inspect(r);
    assert_eq!(g["os_type"], "windows", "{r:?}: {g}");
    assert_eq!(g["product_name"], product, "{r:?}");
    assert_eq!(g["version"], format!("{major}.{minor}"), "{r:?}");
    assert_eq!(g["arch"], if amd64 { "x86_64" } else { "i386" }, "{r:?}");
    assert_eq!(g["hostname"], host, "{r:?}");
    assert_eq!(g["firmware"], if uefi { "uefi" } else { "bios" }, "{r:?}");
    let (build, itype, edition) = (f.build, f.installation_type, f.edition);
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
fn a_bitlocker_encrypted_windows_is_refused() {
    check_refused(State::BitLocker, "BitLocker-encrypted");
}

#[test]
fn a_windows_left_by_fast_startup_is_refused() {
    check_refused(State::FastStartup, "Fast Startup");
}

/// The drivers a full virtio-win tree has for `os` on amd64.
fn full_tree(os: &'static str) -> Vec<(&'static str, &'static str, &'static str)> {
    ["viostor", "vioscsi", "NetKVM", "Balloon", "viorng", "vioserial", "pvpanic", "fwcfg"]
        .into_iter()
        .map(|d| (d, os, "amd64"))
        .collect()
}

/// Converts `disk` into `out` with `args` added; the exit code, the report (or `Null`) and
/// stderr. The source must be left untouched.
fn convert(disk: &Path, out: &Path, args: &[&str]) -> (Option<i32>, Value, String) {
    let before = support::sha256_hex(disk);
    let o = hyper2kvm()
        .env_remove("VIRTIO_WIN")
        .arg("convert")
        .arg(disk)
        .arg("-o")
        .arg(out)
        .args(["--json", "--domain-type", "qemu"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(support::sha256_hex(disk), before, "the source is untouched");
    let report = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.code(), report, String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Nothing but an empty (or missing) directory at `out`.
fn assert_nothing_written(out: &Path) {
    let left: Vec<_> = std::fs::read_dir(out)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing written: {left:?}");
}

/// What a converted Windows disk holds, read back with guestfish.
struct ReadBack {
    system: String,
    software: String,
    /// `ls /Windows/Drivers/VirtIO`, sorted.
    virtio_files: Vec<String>,
    /// The text of `System32/drivers/<name>.sys` for viostor and vioscsi (empty when absent).
    viostor: String,
    vioscsi: String,
    /// `C:\hyper2kvm\firstboot.cmd` (empty when absent) and `ls C:\hyper2kvm`.
    firstboot: String,
    hyper2kvm_dir: Vec<String>,
    /// `ls /Windows/System32/config`.
    config_dir: Vec<String>,
}

fn read_back(disk: &Path, uefi: bool, dir: &Path) -> ReadBack {
    let part = if uefi { "/dev/sda2" } else { "/dev/sda1" };
    let f = |n: &str| dir.join(n);
    let mut script = format!(
        "download /Windows/System32/config/SYSTEM {}\n\
         download /Windows/System32/config/SOFTWARE {}\n\
         -download /Windows/System32/drivers/viostor.sys {}\n\
         -download /Windows/System32/drivers/vioscsi.sys {}\n\
         -download /hyper2kvm/firstboot.cmd {}\n\
         echo ==virtio\n-ls /Windows/Drivers/VirtIO\necho ==hyper2kvm\n-ls /hyper2kvm\n\
         echo ==config\nls /Windows/System32/config\n",
        f("SYSTEM").display(),
        f("SOFTWARE").display(),
        f("viostor.sys").display(),
        f("vioscsi.sys").display(),
        f("firstboot.cmd").display()
    );
    script.push_str("echo ==end\n");
    for n in ["viostor.sys", "vioscsi.sys", "firstboot.cmd"] {
        let _ = std::fs::remove_file(f(n));
    }
    let mut cmd = Command::new("guestfish");
    cmd.args(["--ro", "-a"]).arg(disk).args(["-m", part]);
    let out = support::guestfish(cmd, &script);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() || stdout.contains("==end"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let section = |from: &str, to: &str| -> Vec<String> {
        let a = stdout.find(from).map(|i| i + from.len()).unwrap_or(0);
        let b = stdout.find(to).unwrap_or(stdout.len());
        let mut v: Vec<String> = stdout[a..b]
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    let text = |n: &str| std::fs::read_to_string(f(n)).unwrap_or_default();
    ReadBack {
        system: support::regf::export(&f("SYSTEM"), "SYSTEM"),
        software: support::regf::export(&f("SOFTWARE"), "SOFTWARE"),
        virtio_files: section("==virtio", "==hyper2kvm"),
        viostor: text("viostor.sys"),
        vioscsi: text("vioscsi.sys"),
        firstboot: text("firstboot.cmd"),
        hyper2kvm_dir: section("==hyper2kvm", "==config"),
        config_dir: section("==config", "==end"),
    }
}

fn boot_disk(report: &Value) -> PathBuf {
    PathBuf::from(report["report"]["outputs"][0]["path"].as_str().unwrap())
}

fn domain_xml(report: &Value) -> String {
    std::fs::read_to_string(report["report"]["domain"]["xml"].as_str().unwrap()).unwrap()
}

/// Every line of `want` is in `text`.
fn assert_has(text: &str, want: &[&str], what: &str) {
    for w in want {
        assert!(text.contains(w), "{what}: missing {w} in:\n{text}");
    }
}

/// The value `name` of `key` in a `hivexregedit --export` text (`"Start"=dword:00000004` gives
/// `dword:00000004`); `None` when the key or value is missing.
fn reg_value<'a>(export: &'a str, key: &str, name: &str) -> Option<&'a str> {
    let header = format!("[{key}]");
    let mut lines = export.lines().skip_while(|l| *l != header).skip(1);
    let prefix = format!("\"{name}\"=");
    lines.by_ref().take_while(|l| !l.starts_with('[')).find_map(|l| l.strip_prefix(prefix.as_str()))
}

/// Each (key, value name, data) is in the export; keys ending in `*` match a name prefix
/// (the driver package's hash), `""` as the name only checks the key exists.
fn assert_values(export: &str, want: &[(&str, &str, &str)], what: &str) {
    for (key, name, data) in want {
        let key = match key.split_once('*') {
            Some((pre, post)) => export
                .lines()
                .filter_map(|l| l.strip_prefix('[').and_then(|l| l.strip_suffix(']')))
                .find(|k| k.starts_with(pre) && k.ends_with(post) && !k[pre.len()..].contains('\\'))
                .or_else(|| {
                    export
                        .lines()
                        .filter_map(|l| l.strip_prefix('[').and_then(|l| l.strip_suffix(']')))
                        .find(|k| k.starts_with(pre) && k.ends_with(post))
                })
                .unwrap_or_else(|| panic!("{what}: no key {key} in:\n{export}"))
                .to_string(),
            None => key.to_string(),
        };
        if name.is_empty() {
            assert!(export.contains(&format!("[{key}]")), "{what}: no key {key} in:\n{export}");
            continue;
        }
        assert_eq!(
            reg_value(export, &key, name),
            Some(*data),
            "{what}: {key} {name} in:\n{export}"
        );
    }
}

const SVC: &str = "SYSTEM\\ControlSet001\\Services";

/// The virtio-blk boot driver for Windows 8 and later: service, driver-database entries.
fn viostor_driver_database() -> Vec<(String, &'static str, &'static str)> {
    let pkg = "SYSTEM\\DriverDatabase\\DriverPackages\\viostor.inf_amd64_";
    let mut v: Vec<(String, &str, &str)> = vec![
        (format!("{SVC}\\viostor"), "Type", "dword:00000001"),
        (format!("{SVC}\\viostor"), "Start", "dword:00000000"),
        (format!("{SVC}\\viostor"), "ErrorControl", "dword:00000001"),
        (format!("{SVC}\\viostor"), "Group", "str(1):\"SCSI miniport\""),
        (format!("{SVC}\\viostor"), "ImagePath", "str(2):\"system32\\drivers\\viostor.sys\""),
        ("SYSTEM\\DriverDatabase\\DriverInfFiles\\viostor.inf".into(), "Active", ""),
        (
            "SYSTEM\\DriverDatabase\\DeviceIds\\PCI\\VEN_1AF4&DEV_1001".into(),
            "viostor.inf",
            "hex(3):01,ff,00,00",
        ),
        (
            "SYSTEM\\DriverDatabase\\DeviceIds\\PCI\\VEN_1AF4&DEV_1042".into(),
            "viostor.inf",
            "hex(3):01,ff,00,00",
        ),
        (
            "SYSTEM\\DriverDatabase\\DeviceIds\\PCI\\VEN_1AF4&DEV_1001&SUBSYS_00021AF4&REV_00"
                .into(),
            "viostor.inf",
            "hex(3):01,ff,00,00",
        ),
        (format!("{pkg}*"), "InfName", "str(1):\"viostor.inf\""),
        (format!("{pkg}*"), "OemPath", "str(1):\"%SystemRoot%\\Drivers\\VirtIO\""),
        (format!("{pkg}*\\Configurations\\rhelscsi_inst"), "Service", "str(1):\"viostor\""),
        (
            format!("{pkg}*\\Descriptors\\PCI\\VEN_1AF4&DEV_1001&SUBSYS_00021AF4&REV_00"),
            "Configuration",
            "str(1):\"rhelscsi_inst\"",
        ),
        (
            format!("{pkg}*\\Descriptors\\PCI\\VEN_1AF4&DEV_1042&SUBSYS_11001AF4&REV_01"),
            "Configuration",
            "str(1):\"rhelscsi_inst\"",
        ),
    ];
    v.retain(|(_, _, d)| !d.is_empty());
    v.push(("SYSTEM\\DriverDatabase\\DriverInfFiles\\viostor.inf".into(), "", ""));
    v
}

fn check_driver_database(system: &str) {
    let want = viostor_driver_database();
    let refs: Vec<(&str, &str, &str)> = want.iter().map(|(k, n, d)| (k.as_str(), *n, *d)).collect();
    assert_values(system, &refs, "SYSTEM driver database");
    // The package name is <inf>_<arch>_<16 hex digits>, and the inf file names it.
    let active = reg_value(system, "SYSTEM\\DriverDatabase\\DriverInfFiles\\viostor.inf", "Active")
        .unwrap()
        .trim_start_matches("str(1):\"")
        .trim_end_matches('"');
    let hash = active.strip_prefix("viostor.inf_amd64_").unwrap();
    assert!(hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()), "{active}");
    assert!(system.contains(&format!("[SYSTEM\\DriverDatabase\\DriverPackages\\{active}]")));
}

/// VMware's services disabled (others untouched), the first-boot service registered.
fn check_services(system: &str, firstboot: bool) {
    for s in ["VMTools", "vmci", "vm3dmp", "vmmouse", "vmhgfs", "vsock"] {
        assert_eq!(
            reg_value(system, &format!("{SVC}\\{s}"), "Start"),
            Some("dword:00000004"),
            "{s}"
        );
    }
    assert_eq!(reg_value(system, &format!("{SVC}\\LSI_SAS"), "Start"), Some("dword:00000002"));
    let fb = format!("{SVC}\\hyper2kvm-firstboot");
    if !firstboot {
        assert!(!system.contains(&fb));
        return;
    }
    assert_values(
        system,
        &[
            (&fb, "Type", "dword:00000010"),
            (&fb, "Start", "dword:00000002"),
            (&fb, "ObjectName", "str(1):\"LocalSystem\""),
            (
                &fb,
                "ImagePath",
                "str(2):\"%SystemRoot%\\System32\\cmd.exe /c start \\\"hyper2kvm\\\" /b %SystemRoot%\\System32\\cmd.exe /c %SystemDrive%\\hyper2kvm\\firstboot.cmd\"",
            ),
        ],
        "first-boot service",
    );
}

#[test]
fn server_2019_gets_the_drivers_registry_first_boot_and_a_virtio_domain_and_a_second_run_changes_nothing()
 {
    let t = support::scratch();
    let tree = t.path().join("virtio-win");
    support::windows::virtio_win_tree_with(&tree, &full_tree("2k19"), true);
    let disk = standin(Release::Server2019);
    let tree_arg = tree.display().to_string();
    let (code, report, err) =
        convert(&disk, &t.path().join("out"), &["--virtio-win", &tree_arg, "--target", "kubevirt"]);
    assert_eq!(code, Some(0), "{err}");
    let back = read_back(&boot_disk(&report), false, t.path());
    assert_eq!(back.viostor.trim(), "viostor 2k19 amd64 sys", "the boot driver, from 2k19");
    assert!(back.vioscsi.is_empty(), "vioscsi only for a virtio-scsi disk");
    check_driver_database(&back.system);
    assert!(!back.system.contains("CriticalDeviceDatabase"), "not for Windows 8 and later");
    assert!(back.system.contains("[SYSTEM\\DriverDatabase\\DriverInfFiles\\pvscsi.inf]"), "kept");
    check_services(&back.system, true);
    // Every driver of the tree (not .pdb) in %SystemRoot%\Drivers\VirtIO.
    let mut want: Vec<String> = Vec::new();
    for d in ["viostor", "netkvm", "balloon", "viorng", "vioserial", "pvpanic", "fwcfg"] {
        for ext in ["cat", "inf", "sys"] {
            want.push(format!("{d}.{ext}"));
        }
    }
    want.sort();
    assert_eq!(back.virtio_files, want);
    assert_eq!(
        reg_value(&back.software, "SOFTWARE\\Microsoft\\Windows\\CurrentVersion", "DevicePath"),
        Some("str(2):\"%SystemRoot%\\inf;%SystemRoot%\\Drivers\\VirtIO\""),
    );
    assert_eq!(back.hyper2kvm_dir, ["firstboot.cmd", "qemu-ga-x86_64.msi"]);
    assert_has(
        &back.firstboot,
        &[
            "set LOG=%SystemDrive%\\hyper2kvm\\firstboot.log",
            "pnputil -i -a \"%%f\"",
            "\"%SystemRoot%\\Drivers\\VirtIO\\*.inf\"",
            "msiexec.exe /i \"%SystemDrive%\\hyper2kvm\\qemu-ga-x86_64.msi\" /qn",
            "MsiExec.exe /X{9D2A5B3C-6E4F-4A11-8C1A-0E5A4C3B2D10} /qn",
            "if \"%RC%\"==\"3010\" set RC=0",
            "sc.exe delete hyper2kvm-firstboot",
        ],
        "firstboot.cmd",
    );
    let xml = domain_xml(&report);
    assert_has(
        &xml,
        &[
            "<target dev=\"vda\" bus=\"virtio\"/>",
            "<model type=\"virtio\"/>",
            "<clock offset=\"localtime\">",
            "<relaxed state=\"on\"/>",
            "<vapic state=\"on\"/>",
            "<spinlocks state=\"on\" retries=\"8191\"/>",
        ],
        "domain",
    );
    let changes = report["report"]["changes"].to_string();
    assert!(
        changes.contains("HKLM\\\\SYSTEM\\\\ControlSet001\\\\Services\\\\vmci\\\\Start"),
        "{changes}"
    );
    // The KubeVirt VM: valid (published schemas, kubectl), the Hyper-V enlightenments and
    // timers of a Windows guest, virtio disk; its local-time clock cannot be expressed, which
    // the report says.
    let yaml = PathBuf::from(report["report"]["domain"]["kubevirt"].as_str().unwrap());
    support::kubernetes_valid(&[&yaml]);
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert_has(
        &text,
        &[
            "spinlocks: 8191",
            "tickPolicy: catchup",
            "present: false",
            "bus: virtio",
            "type: tablet",
        ],
        "kubevirt.yaml",
    );
    let warnings = report["report"]["warnings"].to_string();
    assert!(warnings.contains("local time"), "{warnings}");

    // Converting the converted disk again changes nothing more: same hives, same files.
    let (code, again, err) =
        convert(&boot_disk(&report), &t.path().join("out2"), &["--virtio-win", &tree_arg]);
    assert_eq!(code, Some(0), "{err}");
    let dir2 = t.path().join("second");
    std::fs::create_dir(&dir2).unwrap();
    let back2 = read_back(&boot_disk(&again), false, &dir2);
    assert_eq!(back2.system, back.system, "SYSTEM after a second conversion");
    assert_eq!(back2.software, back.software, "SOFTWARE after a second conversion");
    assert_eq!(back2.virtio_files, back.virtio_files);
    assert_eq!(back2.firstboot, back.firstboot);
    let registry_changes = again["report"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["fixer"] == "windows-registry")
        .count();
    assert_eq!(registry_changes, 0, "no registry value changes the second time: {again}");
}

#[test]
fn server_2022_uefi_from_the_virtio_win_iso_gets_vioscsi_for_a_virtio_scsi_disk_and_a_utc_clock() {
    let t = support::scratch();
    let tree = t.path().join("virtio-win");
    support::windows::virtio_win_tree(&tree, &full_tree("2k22"));
    let iso = t.path().join("virtio-win.iso");
    support::windows::virtio_win_iso(&tree, &iso);
    std::fs::remove_dir_all(&tree).unwrap();
    let disk = standin(Release::Server2022);
    let iso_arg = iso.display().to_string();
    let (code, report, err) = convert(
        &disk,
        &t.path().join("out"),
        &["--virtio-win", &iso_arg, "--disk-bus", "virtio-scsi"],
    );
    assert_eq!(code, Some(0), "{err}");
    let back = read_back(&boot_disk(&report), true, t.path());
    assert_eq!(back.vioscsi.trim(), "vioscsi 2k22 amd64 sys", "read out of the ISO");
    assert_eq!(back.viostor.trim(), "viostor 2k22 amd64 sys");
    let ids = "SYSTEM\\DriverDatabase\\DeviceIds\\PCI";
    assert_values(
        &back.system,
        &[
            (
                "SYSTEM\\ControlSet001\\Services\\vioscsi",
                "ImagePath",
                "str(2):\"system32\\drivers\\vioscsi.sys\"",
            ),
            ("SYSTEM\\ControlSet001\\Services\\vioscsi", "Start", "dword:00000000"),
            (&format!("{ids}\\VEN_1AF4&DEV_1004"), "vioscsi.inf", "hex(3):01,ff,00,00"),
            (&format!("{ids}\\VEN_1AF4&DEV_1048"), "vioscsi.inf", "hex(3):01,ff,00,00"),
            (
                "SYSTEM\\DriverDatabase\\DriverPackages\\vioscsi.inf_amd64_*\\Configurations\\scsi_inst",
                "Service",
                "str(1):\"vioscsi\"",
            ),
        ],
        "SYSTEM",
    );
    check_driver_database(&back.system);
    assert!(back.virtio_files.contains(&"netkvm.sys".to_string()), "{:?}", back.virtio_files);
    assert!(!back.virtio_files.iter().any(|f| f.ends_with(".pdb")), "{:?}", back.virtio_files);
    let xml = domain_xml(&report);
    assert_has(
        &xml,
        &[
            "<target dev=\"sda\" bus=\"scsi\"/>",
            "model=\"virtio-scsi\"",
            "<clock offset=\"utc\">",
            "<loader readonly=\"yes\"",
            "<model type=\"virtio\"/>",
        ],
        "domain",
    );
    let left: Vec<String> = std::fs::read_dir(t.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!left.iter().any(|n| n.contains("virtio-win")), "the ISO scratch is removed: {left:?}");
}

#[test]
fn windows_7_gets_viostor_through_the_critical_device_database() {
    let t = support::scratch();
    let tree = t.path().join("virtio-win");
    support::windows::virtio_win_tree(&tree, &full_tree("w7"));
    let tree_arg = tree.display().to_string();
    let (code, report, err) =
        convert(&standin(Release::Windows7), &t.path().join("out"), &["--virtio-win", &tree_arg]);
    assert_eq!(code, Some(0), "{err}");
    let back = read_back(&boot_disk(&report), false, t.path());
    assert_eq!(back.viostor.trim(), "viostor w7 amd64 sys");
    let cdd = "SYSTEM\\ControlSet001\\Control\\CriticalDeviceDatabase";
    let (a, b) = (
        format!("{cdd}\\pci#ven_1af4&dev_1001&subsys_00021af4&rev_00"),
        format!("{cdd}\\pci#ven_1af4&dev_1042&subsys_11001af4&rev_01"),
    );
    let class = "str(1):\"{4D36E97B-E325-11CE-BFC1-08002BE10318}\"";
    assert_values(
        &back.system,
        &[
            (&format!("{SVC}\\viostor"), "Start", "dword:00000000"),
            (&format!("{SVC}\\viostor"), "Group", "str(1):\"SCSI miniport\""),
            (&format!("{SVC}\\viostor"), "ImagePath", "str(2):\"system32\\drivers\\viostor.sys\""),
            (&a, "Service", "str(1):\"viostor\""),
            (&a, "ClassGUID", class),
            (&b, "Service", "str(1):\"viostor\""),
            (&b, "ClassGUID", class),
            (
                "SYSTEM\\ControlSet001\\Control\\ComputerName\\ComputerName",
                "ComputerName",
                "str(1):\"WIN7-PC\"",
            ),
        ],
        "SYSTEM",
    );
    check_services(&back.system, true);
    assert!(!back.system.contains("DriverDatabase"), "Windows 7 has none");
}

#[test]
fn windows_10_takes_the_nearest_older_drivers_and_without_netkvm_gets_an_e1000() {
    let t = support::scratch();
    let tree = t.path().join("virtio-win");
    support::windows::virtio_win_tree(
        &tree,
        &[("viostor", "w8.1", "amd64"), ("Balloon", "w10", "amd64")],
    );
    let tree_arg = tree.display().to_string();
    let (code, report, err) =
        convert(&standin(Release::Windows10), &t.path().join("out"), &["--virtio-win", &tree_arg]);
    assert_eq!(code, Some(0), "{err}");
    let back = read_back(&boot_disk(&report), false, t.path());
    assert_eq!(back.viostor.trim(), "viostor w8.1 amd64 sys", "w10 falls back to w8.1");
    check_driver_database(&back.system);
    let xml = domain_xml(&report);
    assert_has(
        &xml,
        &["bus=\"virtio\"", "<model type=\"e1000\"/>", "<clock offset=\"localtime\">"],
        "domain",
    );
    let warnings = report["report"]["warnings"].to_string();
    assert!(warnings.contains("no NetKVM driver"), "{warnings}");
}

#[test]
fn a_32_bit_windows_with_only_amd64_drivers_is_refused_unless_allow_no_virtio() {
    let t = support::scratch();
    let tree = t.path().join("virtio-win");
    support::windows::virtio_win_tree(&tree, &full_tree("w10"));
    let tree_arg = tree.display().to_string();
    let disk = standin(Release::Windows10x86);
    let out = t.path().join("out");
    let (code, _, err) = convert(&disk, &out, &["--virtio-win", &tree_arg]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("no viostor driver for w10 (x86)") && err.contains("--allow-no-virtio"),
        "{err}"
    );
    assert!(err.contains(&disk.display().to_string()), "names the input: {err}");
    assert_nothing_written(&out);

    let (code, report, err) =
        convert(&disk, &out, &["--virtio-win", &tree_arg, "--allow-no-virtio"]);
    assert_eq!(code, Some(0), "{err}");
    let xml = domain_xml(&report);
    assert_has(&xml, &["<target dev=\"sda\" bus=\"sata\"/>", "<model type=\"e1000\"/>"], "domain");
    assert!(!xml.contains("bus=\"virtio\""), "{xml}");
    let back = read_back(&boot_disk(&report), false, t.path());
    assert!(back.viostor.is_empty() && back.virtio_files.is_empty(), "no drivers copied");
    check_services(&back.system, true);
    assert_has(
        &back.firstboot,
        &["MsiExec.exe /X{9D2A5B3C-6E4F-4A11-8C1A-0E5A4C3B2D10} /qn"],
        "firstboot",
    );
    assert!(!back.firstboot.contains("pnputil"), "{}", back.firstboot);
    assert!(report["report"]["warnings"].to_string().contains("--allow-no-virtio"));
}

#[test]
fn a_windows_with_no_virtio_drivers_available_is_refused() {
    let t = support::scratch();
    // A tree without any storage driver for the guest, and (where the machine has no
    // virtio-win installed) no tree at all.
    let tree = t.path().join("virtio-win");
    support::windows::virtio_win_tree(
        &tree,
        &[("viostor", "2k19", "amd64"), ("NetKVM", "w10", "amd64")],
    );
    let disk = standin(Release::Windows10);
    let out = t.path().join("out");
    let (code, _, err) = convert(&disk, &out, &["--virtio-win", &tree.display().to_string()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("has no viostor driver for w10 (amd64)"), "{err}");
    assert_nothing_written(&out);
    let installed = ["/usr/share/virtio-win/virtio-win.iso", "/usr/share/virtio-win"]
        .iter()
        .any(|p| Path::new(p).exists());
    if !installed {
        let (code, _, err) = convert(&disk, &out, &[]);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("no virtio-win drivers found"), "{err}");
        assert_nothing_written(&out);
    }
}

/// The manifest pipeline prepares a Windows guest the same way: `hyper2kvm MANIFEST` with the
/// drivers from `VIRTIO_WIN`, the hives backed up (`pipeline.fix.backup`), the changes in
/// the report.
#[test]
fn a_windows_manifest_runs_the_same_preparation_with_hive_backups() {
    let t = support::scratch();
    let tree = t.path().join("virtio-win");
    support::windows::virtio_win_tree(&tree, &full_tree("2k19"));
    let disk = standin(Release::Server2019);
    let before = support::sha256_hex(&disk);
    let manifest = serde_json::json!({
        "manifest_version": "1.0",
        "source": {"provider": "vsphere", "vm_id": "vm-7", "vm_name": "win2019", "export_method": "ovftool"},
        "vm": {"cpu": 2, "mem_gb": 4, "firmware": "bios", "os_hint": "windows"},
        "disks": [{
            "id": "disk-0", "source_format": "raw", "local_path": disk, "disk_type": "boot",
            "bytes": std::fs::metadata(&disk).unwrap().len()
        }],
        "nics": [{"id": "nic-0", "mac": "00:50:56:01:02:03", "network": "VM Network"}],
        "pipeline": {"fix": {"enabled": true, "backup": true}},
        "output": {"directory": t.path().join("out")}
    });
    let m = t.path().join("win2019.json");
    std::fs::write(&m, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let o = hyper2kvm().env("VIRTIO_WIN", &tree).arg(&m).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(support::sha256_hex(&disk), before, "the source is untouched");
    let out = t.path().join("out");
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["guest"]["os"], "windows", "{report}");
    let changes = report["changes"].to_string();
    assert!(changes.contains("Services\\\\viostor\\\\Start"), "{changes}");
    assert!(changes.contains("DevicePath"), "{changes}");
    let xml = std::fs::read_to_string(out.join("win2019.xml")).unwrap();
    assert_has(&xml, &["bus=\"virtio\"", "<mac address=\"00:50:56:01:02:03\"/>"], "domain");
    let back = read_back(&out.join("win2019.qcow2"), false, t.path());
    check_driver_database(&back.system);
    check_services(&back.system, true);
    for f in ["SYSTEM.hyper2kvm.bak", "SOFTWARE.hyper2kvm.bak"] {
        assert!(back.config_dir.contains(&f.to_string()), "{f}: {:?}", back.config_dir);
    }
}

/// `convert --dry-run` says which drivers a Windows guest would get, or that it would be
/// refused, and writes nothing (not even the ISO's scratch copy).
#[test]
fn a_dry_run_plans_the_windows_drivers_or_says_it_would_refuse() {
    let t = support::scratch();
    let tree = t.path().join("virtio-win");
    support::windows::virtio_win_tree(
        &tree,
        &[("viostor", "w10", "amd64"), ("NetKVM", "w10", "amd64")],
    );
    let iso = t.path().join("virtio-win.iso");
    support::windows::virtio_win_iso(&tree, &iso);
    let disk = standin(Release::Windows10);
    let out = t.path().join("out");
    let run = |args: &[&str]| {
        let o = hyper2kvm()
            .env_remove("VIRTIO_WIN")
            .arg("convert")
            .arg(&disk)
            .arg("-o")
            .arg(&out)
            .arg("--dry-run")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        assert_nothing_written(&out);
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let plan = run(&["--virtio-win", &iso.display().to_string()]);
    assert!(
        plan.contains("would install the virtio drivers viostor (w10), NetKVM (w10)"),
        "{plan}"
    );
    assert!(plan.contains("would disable VMTools, vmci"), "{plan}");
    let x86 = t.path().join("x86-only");
    support::windows::virtio_win_tree(&x86, &[("viostor", "w10", "x86")]);
    let plan = run(&["--virtio-win", &x86.display().to_string()]);
    assert!(plan.contains("would be refused: virtio-win at"), "{plan}");
    assert!(plan.contains("has no viostor driver for w10 (amd64)"), "{plan}");
}

/// Not a check of its own: `scripts/test-container.sh` runs it (`--run-ignored only`) with
/// `H2K_EXPORT_DIR` set to get a Windows input for the image it builds with virtio-win — the
/// Server 2019 stand-in as a VMware export carries it (a streamOptimized VMDK) and the
/// virtio-win ISO made from the full 2k19 tree with the guest agent — and then checks, on the
/// disk converted inside the container, what the Server 2019 test above checks here.
#[test]
#[ignore = "an input maker for scripts/test-container.sh"]
fn export_a_windows_guest_and_a_virtio_win_iso_for_the_container_test() {
    let dir = PathBuf::from(std::env::var_os("H2K_EXPORT_DIR").expect("set H2K_EXPORT_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let tree = dir.join("virtio-win-tree");
    let _ = std::fs::remove_dir_all(&tree);
    support::windows::virtio_win_tree_with(&tree, &full_tree("2k19"), true);
    support::windows::virtio_win_iso(&tree, &dir.join("virtio-win.iso"));
    std::fs::remove_dir_all(&tree).unwrap();
    let vmdk = dir.join("win2019-disk1.vmdk");
    let o = Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized"])
        .arg(standin(Release::Server2019))
        .arg(&vmdk)
        .output()
        .unwrap();
    assert!(o.status.success(), "qemu-img: {}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::metadata(dir.join("virtio-win.iso")).unwrap().len() > 0);
    assert!(std::fs::metadata(&vmdk).unwrap().len() > 0);
}
