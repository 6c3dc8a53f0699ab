//! Direct mode with manifests written byte for byte as HyperSDK's Go writer writes them
//! (`json.MarshalIndent` of its structs: struct field order, `omitempty` — so the boot disk's
//! `boot_order_hint: 0` and a 768 MiB VM's `mem_gb` are absent —, `\u003c` escapes, Go's
//! nanosecond timestamps with a local offset, no trailing newline; see
//! `tests/support/gojson.rs`), run and read as HyperSDK does: `hyper2kvm <abs manifest> -v`
//! from its own working directory, stdout and stderr merged, the first line beginning
//! `Output:` or `Wrote:` taken and its second field used as the disk it defines in libvirt.
//! The disks hold data but no operating system (the guest stages report that); the boot
//! disk's content is told apart from the data disk's by a pattern written into each.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/gojson.rs"]
mod gojson;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use gojson::{Go, go_time, marshal_indent, obj, s};
use support::*;

/// One exported disk: the file and what the manifest says of it.
struct Disk {
    path: PathBuf,
    format: &'static str,
    checksum: bool,
    hint: i64,
    disk_type: Option<&'static str>,
}

/// A raw disk of `size` bytes with `pattern` at 1 MiB, converted to `format`.
fn make_disk(
    dir: &Path,
    name: &str,
    format: &str,
    opts: Option<&str>,
    size: u64,
    pattern: u8,
) -> PathBuf {
    let raw = dir.join(format!("{name}.raw"));
    raw_with_data(&raw, size);
    qemu_write(&raw, "raw", pattern, 1 << 20, 64 << 10);
    let out = dir.join(name);
    qemu_from_raw(&raw, &out, format, opts);
    std::fs::remove_file(&raw).unwrap();
    out
}

/// What the VM section says (HyperSDK drops zero values: `cpu`/`mem_gb` 0 are absent).
struct Vm {
    name: &'static str,
    cpu: i64,
    mem_gb: i64,
    firmware: &'static str,
    os_hint: &'static str,
    datacenter: &'static str,
    macs: Vec<&'static str>,
}

/// The manifest HyperSDK's vSphere exporter writes for `disks`.
fn manifest(vm: &Vm, disks: &[Disk], output_dir: Option<&str>) -> String {
    let mut vm_fields = Vec::new();
    if vm.cpu != 0 {
        vm_fields.push(("cpu", Go::Int(vm.cpu)));
    }
    if vm.mem_gb != 0 {
        vm_fields.push(("mem_gb", Go::Int(vm.mem_gb)));
    }
    vm_fields.push(("firmware", s(vm.firmware)));
    vm_fields.push(("os_hint", s(vm.os_hint)));
    let disks = disks
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut f = vec![
                ("id", s(format!("disk-{i}"))),
                ("source_format", s(d.format)),
                // HyperSDK writes the exported file's size, not the virtual size.
                ("bytes", Go::Int(std::fs::metadata(&d.path).unwrap().len() as i64)),
                ("local_path", s(d.path.to_str().unwrap())),
            ];
            if d.checksum {
                f.push(("checksum", s(format!("sha256:{}", sha256_hex(&d.path)))));
            }
            if d.hint != 0 {
                f.push(("boot_order_hint", Go::Int(d.hint)));
            }
            if let Some(t) = d.disk_type {
                f.push(("disk_type", s(t)));
            }
            obj(f)
        })
        .collect();
    let nics = vm
        .macs
        .iter()
        .enumerate()
        .map(|(i, m)| {
            obj(vec![("id", s(format!("nic-{i}"))), ("mac", s(*m)), ("network", s("VM Network"))])
        })
        .collect();
    let mut top = vec![
        ("manifest_version", s("1.0")),
        (
            "source",
            obj(vec![
                ("provider", s("vsphere")),
                ("vm_id", s("vm-1042")),
                ("vm_name", s(vm.name)),
                ("datacenter", s(vm.datacenter)),
                ("export_timestamp", s(go_time())),
                ("export_method", s("govc-export")),
            ]),
        ),
        ("vm", obj(vm_fields)),
        ("disks", Go::Arr(disks)),
        ("nics", Go::Arr(nics)),
        ("notes", Go::Arr(vec![s("exported <2 disks> & 1 NIC by hyperexport")])),
        (
            "metadata",
            obj(vec![
                ("hypersdk_version", s("0.9.0")),
                ("job_id", s("vm-1042")),
                ("created_at", s(go_time())),
                ("tags", obj(vec![("owner", s("ops&infra"))])),
            ]),
        ),
        (
            "pipeline",
            obj(vec![
                (
                    "inspect",
                    obj(vec![("enabled", Go::Bool(true)), ("collect_guest_info", Go::Bool(true))]),
                ),
                (
                    "fix",
                    obj(vec![
                        ("enabled", Go::Bool(true)),
                        ("backup", Go::Bool(true)),
                        ("update_grub", Go::Bool(true)),
                        ("regen_initramfs", Go::Bool(true)),
                        ("fstab_mode", s("stabilize-all")),
                        ("remove_vmware_tools", Go::Bool(true)),
                    ]),
                ),
                ("convert", obj(vec![("enabled", Go::Bool(true)), ("compress", Go::Bool(true))])),
                (
                    "validate",
                    obj(vec![
                        ("enabled", Go::Bool(true)),
                        ("check_image_integrity", Go::Bool(true)),
                    ]),
                ),
            ]),
        ),
    ];
    if let Some(d) = output_dir {
        top.push(("output", obj(vec![("directory", s(d))])));
    }
    top.push((
        "options",
        obj(vec![("report", obj(vec![("enabled", Go::Bool(true)), ("path", s("report.json"))]))]),
    ));
    marshal_indent(&obj(top))
}

/// Runs `hyper2kvm ARGS` from `cwd` with stdout and stderr merged, as HyperSDK does.
fn run_merged(cwd: &Path, args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new("sh")
        .arg("-c")
        .arg("exec \"$0\" \"$@\" 2>&1")
        .arg(env!("CARGO_BIN_EXE_hyper2kvm"))
        .args(args)
        .current_dir(cwd)
        .env("LIBGUESTFS_BACKEND", "direct")
        .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
        .output()
        .unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned())
}

/// HyperSDK's parser: the first line starting with `Output:` or `Wrote:`, its second field.
fn hypersdk_output(merged: &str) -> Option<PathBuf> {
    merged
        .lines()
        .find(|l| l.starts_with("Output:") || l.starts_with("Wrote:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(PathBuf::from)
}

/// The export directory of a two-disk vSphere VM: disk-0 (`disk_type: boot`, no hint, as
/// omitempty leaves it) and disk-1 (`boot_order_hint: 1`).
fn two_disk_export(t: &Path, checksums: bool) -> (PathBuf, Vec<Disk>) {
    let export = t.join("export");
    std::fs::create_dir(&export).unwrap();
    let opts = Some("subformat=streamOptimized");
    let d0 = make_disk(&export, "web01.vmdk", "vmdk", opts, 24 << 20, 0xb0);
    let d1 = make_disk(&export, "web01_1.vmdk", "vmdk", opts, 16 << 20, 0xd1);
    let disks = vec![
        Disk { path: d0, format: "vmdk", checksum: checksums, hint: 0, disk_type: Some("boot") },
        Disk { path: d1, format: "vmdk", checksum: checksums, hint: 1, disk_type: None },
    ];
    (export, disks)
}

fn web01() -> Vm {
    Vm {
        name: "web01",
        cpu: 2,
        mem_gb: 4,
        firmware: "bios",
        os_hint: "ubuntu",
        datacenter: "https://administrator%40vsphere.local:S3cr3t-pw@vc01.example.com/sdk/DC1",
        macs: vec!["00:50:56:9a:12:34"],
    }
}

/// The boot disk's output holds disk-0's data (the pattern written at 1 MiB), not disk-1's.
fn holds(output: &Path, source: &Path) {
    sh(Command::new("qemu-img")
        .args(["compare", "-q", "-f"])
        .arg(if source.extension().unwrap() == "vhd" { "vpc" } else { "vmdk" })
        .args(["-F", "qcow2"])
        .arg(source)
        .arg(output));
}

#[test]
fn two_disk_vsphere_manifest_with_checksums_boots_disk_0() {
    let t = scratch();
    let (export, disks) = two_disk_export(t.path(), true);
    let text = manifest(&web01(), &disks, None);
    assert!(text.contains("\\u003c2 disks\\u003e \\u0026 1 NIC") && !text.ends_with('\n'));
    assert!(!text.contains("boot_order_hint\": 0"), "omitempty drops the boot disk's hint");
    let path = export.join("artifact-manifest.json");
    std::fs::write(&path, &text).unwrap();
    let elsewhere = t.path().join("hypersdk-cwd");
    std::fs::create_dir(&elsewhere).unwrap();
    let (code, merged) = run_merged(&elsewhere, &[path.to_str().unwrap(), "-v"]);
    assert_eq!(code, Some(0), "{merged}");
    let out = export.join("output");
    // The line HyperSDK reads names the boot disk, absolutely, and it holds disk-0's data.
    let first = hypersdk_output(&merged).unwrap();
    assert_eq!(first, out.join("web01.qcow2"), "{merged}");
    holds(&first, &disks[0].path);
    holds(&out.join("web01-disk-1.qcow2"), &disks[1].path);
    for l in merged.lines().filter(|l| l.starts_with("Output:")) {
        let p = Path::new(l.split_whitespace().nth(1).unwrap());
        assert!(p.is_absolute() && p.exists(), "{l}");
    }
    // The domain boots disk-0: it is the first disk, with boot order 1.
    let xml = std::fs::read_to_string(out.join("web01.xml")).unwrap();
    let (a, b) = (xml.find("web01.qcow2").unwrap(), xml.find("web01-disk-1.qcow2").unwrap());
    assert!(a < b, "{xml}");
    // The report's first artifact is the boot disk.
    let report = std::fs::read_to_string(out.join("report.json")).unwrap();
    let r: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(r["artifacts"][0]["path"], out.join("web01.qcow2").to_str().unwrap());
    assert_eq!(r["pipeline"]["success"], true);
    // Liberal where HyperSDK's writer is: warnings, not errors.
    assert!(merged.contains("disks[0].bytes: the manifest says"), "{merged}");
    assert!(merged.contains("vm.os_hint: \"ubuntu\" is not one of"), "{merged}");
    // The vCenter credentials are never printed or written.
    for text in [&merged, &report, &xml] {
        assert!(!text.contains("S3cr3t"), "credentials leaked:\n{text}");
    }
    assert!(merged.contains("source.datacenter: a URL with credentials"), "{merged}");
}

#[test]
fn two_disk_vsphere_manifest_without_checksums_by_the_manifest_flag() {
    let t = scratch();
    let (export, disks) = two_disk_export(t.path(), false);
    std::fs::write(export.join("artifact-manifest.json"), manifest(&web01(), &disks, None))
        .unwrap();
    // The form HyperSDK's vSphere converter uses, with a relative path from the export dir.
    let (code, merged) =
        run_merged(&export, &["--manifest", "artifact-manifest.json", "--verbose"]);
    assert_eq!(code, Some(0), "{merged}");
    let first = hypersdk_output(&merged).unwrap();
    assert_eq!(first, export.join("output").join("web01.qcow2"), "{merged}");
    holds(&first, &disks[0].path);
    assert!(merged.contains("stage: verify Skipped"), "no checksum, no verify: {merged}");
}

/// A UEFI VM's export in `export` (its firmware written `efi`, as HyperSDK's vSphere code
/// does): the manifest and the boot disk.
fn uefi_export(export: &Path) -> (String, PathBuf) {
    std::fs::create_dir(export).unwrap();
    let d0 =
        make_disk(export, "app.vmdk", "vmdk", Some("subformat=streamOptimized"), 16 << 20, 0xe1);
    let disks = [Disk {
        path: d0.clone(),
        format: "vmdk",
        checksum: true,
        hint: 0,
        disk_type: Some("boot"),
    }];
    let vm = Vm { name: "app", firmware: "efi", os_hint: "linux", datacenter: "DC1", ..web01() };
    (manifest(&vm, &disks, None), d0)
}

/// A Hyper-V pair's export in `export` (dashed MACs; a 768 MiB VM, so `mem_gb` is absent):
/// the manifest, the boot disk and the data disk.
fn vhd_export(export: &Path) -> (String, PathBuf, PathBuf) {
    std::fs::create_dir(export).unwrap();
    let d0 = make_disk(export, "hv-0.vhd", "vpc", None, 20 << 20, 0x10);
    let d1 = make_disk(export, "hv-1.vhd", "vpc", None, 12 << 20, 0x11);
    let disks = [
        Disk { path: d0.clone(), format: "vhd", checksum: true, hint: 0, disk_type: Some("boot") },
        Disk { path: d1.clone(), format: "vhd", checksum: true, hint: 1, disk_type: Some("data") },
    ];
    // A 768 MiB VM: mem_gb is 0 in HyperSDK's integer GiB, so omitempty leaves it out.
    let vm = Vm {
        name: "hv01",
        cpu: 1,
        mem_gb: 0,
        firmware: "bios",
        os_hint: "windows",
        datacenter: "",
        macs: vec!["00-15-5D-0A-0B-0C", "00-15-5D-0A-0B-0D"],
    };
    (manifest(&vm, &disks, None), d0, d1)
}

#[test]
fn uefi_vm_written_as_efi_gets_uefi_firmware() {
    let t = scratch();
    let export = t.path().join("export");
    let (text, _) = uefi_export(&export);
    let path = export.join("artifact-manifest.json");
    std::fs::write(&path, text).unwrap();
    let (code, merged) = run_merged(t.path(), &[path.to_str().unwrap(), "-v"]);
    assert_eq!(code, Some(0), "{merged}");
    assert!(merged.contains("vm.firmware: \"efi\" taken as \"uefi\""), "{merged}");
    let out = export.join("output");
    assert_eq!(hypersdk_output(&merged).unwrap(), out.join("app.qcow2"));
    let xml = std::fs::read_to_string(out.join("app.xml")).unwrap();
    assert!(xml.contains("<loader") && xml.contains("<nvram"), "UEFI firmware:\n{xml}");
}

#[test]
fn vhd_pair_with_dashed_macs_and_no_mem_gb() {
    let t = scratch();
    let export = t.path().join("export");
    let (text, d0, _) = vhd_export(&export);
    let path = export.join("artifact-manifest.json");
    std::fs::write(&path, text).unwrap();
    let (code, merged) = run_merged(t.path(), &[path.to_str().unwrap(), "-v"]);
    assert_eq!(code, Some(0), "{merged}");
    let out = export.join("output");
    let first = hypersdk_output(&merged).unwrap();
    assert_eq!(first, out.join("hv01.qcow2"), "{merged}");
    holds(&first, &d0);
    let xml = std::fs::read_to_string(out.join("hv01.xml")).unwrap();
    for mac in ["00:15:5d:0a:0b:0c", "00:15:5d:0a:0b:0d"] {
        assert!(xml.contains(&format!("<mac address=\"{mac}\"/>")), "{xml}");
    }
    assert!(xml.contains("<memory unit=\"MiB\">2048</memory>"), "the default memory:\n{xml}");
}

#[test]
fn an_output_directory_with_whitespace_is_refused_in_direct_mode() {
    let t = scratch();
    let export = t.path().join("export");
    std::fs::create_dir(&export).unwrap();
    let d0 = make_disk(&export, "w.vmdk", "vmdk", None, 8 << 20, 0x42);
    let disks =
        [Disk { path: d0, format: "vmdk", checksum: false, hint: 0, disk_type: Some("boot") }];
    let path = export.join("artifact-manifest.json");
    std::fs::write(&path, manifest(&web01(), &disks, Some("converted vms"))).unwrap();
    let (code, merged) = run_merged(t.path(), &[path.to_str().unwrap(), "-v"]);
    assert_eq!(code, Some(2), "{merged}");
    assert!(
        merged.contains("converted vms: the output directory's path holds whitespace"),
        "{merged}"
    );
    assert!(hypersdk_output(&merged).is_none(), "{merged}");
    assert!(!export.join("converted vms").exists(), "nothing is written");
}

#[test]
fn version_is_one_line() {
    let t = scratch();
    let (code, merged) = run_merged(t.path(), &["--version"]);
    assert_eq!(code, Some(0));
    let v = merged.trim();
    assert!(v.starts_with("hyper2kvm ") && !v.contains('\n'), "{v:?}");
    assert_eq!(v.split_whitespace().nth(1), Some(env!("CARGO_PKG_VERSION")));
}

/// The same four manifests through `hyper2kvm daemon`, as HyperSDK's daemon mode hands them
/// over: each written in place as `artifact-manifest.json` in the queue (after the previous
/// one was claimed), then `OUTPUT_DIR/{vm}.qcow2` polled before `{vm}.error`.
#[test]
fn the_same_manifests_through_the_daemon() {
    let t = scratch();
    let (queue, out) = (t.path().join("queue"), t.path().join("output"));
    for d in [&queue, &out] {
        std::fs::create_dir(d).unwrap();
    }
    // (vm, its manifest, the boot disk's source, the data disk's source)
    let mut jobs: Vec<(&str, String, PathBuf, Option<PathBuf>)> = Vec::new();
    for (vm, checksums) in [("web01", true), ("web02", false)] {
        let dir = t.path().join(vm);
        std::fs::create_dir(&dir).unwrap();
        let (_, disks) = two_disk_export(&dir, checksums);
        let text = manifest(&Vm { name: vm, ..web01() }, &disks, None);
        jobs.push((vm, text, disks[0].path.clone(), Some(disks[1].path.clone())));
    }
    let (text, d0) = uefi_export(&t.path().join("app"));
    jobs.push(("app", text, d0, None));
    let (text, h0, h1) = vhd_export(&t.path().join("hv"));
    jobs.push(("hv01", text, h0, Some(h1)));

    let conf = t.path().join("daemon.conf");
    std::fs::write(&conf, "MAX_CONCURRENT=2\nPOLL_INTERVAL=1\nSETTLE_SECONDS=2\n").unwrap();
    let log = t.path().join("daemon.log");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_hyper2kvm"))
        .arg("daemon")
        .arg(format!("--watch-dir={}", queue.display()))
        .arg(format!("--output-dir={}", out.display()))
        .arg(format!("--config={}", conf.display()))
        .arg(format!("--state-dir={}", t.path().join("state").display()))
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env("TEMP_DIR", t.path().join("tmp"))
        .env("LIBGUESTFS_BACKEND", "direct")
        .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let wait = |what: &str, secs: u64, f: &dyn Fn() -> bool| {
        let start = std::time::Instant::now();
        while !f() {
            assert!(
                start.elapsed().as_secs() < secs,
                "timed out waiting for {what}:\n{}",
                log_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let queue_file = queue.join("artifact-manifest.json");
    for (vm, text, _, _) in &jobs {
        std::fs::write(&queue_file, text).unwrap();
        wait(&format!("{vm}'s manifest claimed"), 60, &|| !queue_file.exists());
    }
    for (vm, _, boot, data) in &jobs {
        let (disk, error) = (out.join(format!("{vm}.qcow2")), out.join(format!("{vm}.error")));
        wait(&format!("{vm}'s result"), 400, &|| disk.is_file() || error.is_file());
        assert!(!error.exists(), "{vm} failed:\n{}", log_text());
        holds(&disk, boot);
        if let Some(data) = data {
            holds(&out.join(format!("{vm}-disk-1.qcow2")), data);
        }
        let xml = std::fs::read_to_string(out.join(format!("{vm}.xml"))).unwrap();
        if data.is_some() {
            let boot_at = xml.find(&format!("{vm}.qcow2")).unwrap();
            let data_at = xml.find(&format!("{vm}-disk-1.qcow2")).unwrap();
            assert!(boot_at < data_at, "the boot disk comes first:\n{xml}");
        }
        match *vm {
            "app" => assert!(xml.contains("<loader") && xml.contains("<nvram"), "UEFI:\n{xml}"),
            "hv01" => {
                for mac in ["00:15:5d:0a:0b:0c", "00:15:5d:0a:0b:0d"] {
                    assert!(xml.contains(&format!("<mac address=\"{mac}\"/>")), "{xml}");
                }
                assert!(xml.contains("<memory unit=\"MiB\">2048</memory>"), "{xml}");
            }
            _ => assert!(xml.contains("<mac address=\"00:50:56:9a:12:34\"/>"), "{xml}"),
        }
        assert!(!xml.contains("S3cr3t"));
    }
    assert!(!log_text().contains("S3cr3t"), "credentials leaked into the daemon's log");
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(daemon.id() as i32, libc::SIGTERM);
    }
    let _ = daemon.wait();
}
