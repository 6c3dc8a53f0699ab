//! A real Debian 12 guest set up as on VMware (tests/guests/debian.sh: initramfs without
//! virtio_blk, fstab and root= on /dev/sda1, ifupdown on ens192 pinned to the VMware MAC,
//! open-vm-tools) is inspected, converted and booted under TCG:
//! (a) unconverted on virtio-blk it does not reach its boot marker;
//! (b) converted by `hyper2kvm convert` it boots on virtio-blk and virtio-net to the marker,
//!     with its root on /dev/vda1 and ens192 up with its static address;
//! (c) the JSON output lists each change; (d) the source VMDK is unchanged.
//! The guest is built once per machine and cached in /var/tmp (see the script).
//! Boot tests are named `boot_*` so they can be chosen: `cargo nextest run -E 'test(/boot_/)'`.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/boot.rs"]
mod boot;
#[path = "../../tests/support/guests.rs"]
mod guests;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use boot::{Bus, boot, tail};
use guests::hyper2kvm;
use support::*;

const MARKER: &str = "HYPER2KVM-BOOT-OK";
const GIVE_UP: &[&str] = &["Gave up waiting for root", "ALERT!", "Kernel panic"];

/// The cached guest of `variant`: its VMDK and MAC.
fn guest(variant: &str) -> (PathBuf, String) {
    let (vmdk, mac, _) = guests::debian(variant);
    (vmdk, mac)
}

/// `hyper2kvm convert INPUT -o OUT --json EXTRA...`, which must succeed; returns its JSON.
fn convert_json(
    input: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> serde_json::Value {
    let mut c = hyper2kvm();
    c.arg("convert").arg(input).arg("-o").arg(out).arg("--json").args(extra);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", tail(&String::from_utf8_lossy(&o.stderr), 30));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The output's path, from a convert JSON document.
fn first_output(v: &serde_json::Value) -> PathBuf {
    PathBuf::from(v["report"]["outputs"][0]["path"].as_str().unwrap())
}

#[test]
fn boot_unconverted_guest_fails_on_virtio() {
    let (vmdk, mac) = guest("bios");
    // The guest itself is sound: on the IDE controller its initramfs knows, it boots.
    let ide = boot(&vmdk, "vmdk", Bus::Ide, &mac, MARKER, GIVE_UP, Duration::from_secs(240));
    let line = ide.marker.unwrap_or_else(|| {
        panic!("the unconverted guest must boot on IDE:\n{}", tail(&ide.console, 20))
    });
    assert!(line.contains("root=/dev/sda1"), "{line} after {:.0} s", ide.seconds);
    let r = boot(&vmdk, "vmdk", Bus::Virtio, &mac, MARKER, GIVE_UP, Duration::from_secs(240));
    assert!(
        r.marker.is_none(),
        "the unconverted guest must not boot from virtio-blk, yet:\n{}",
        tail(&r.console, 20)
    );
    assert!(
        GIVE_UP.iter().any(|g| r.console.contains(g)),
        "expected the initramfs to give up on its root:\n{}",
        tail(&r.console, 20)
    );
}

#[test]
fn inspect_reports_the_vmware_guest() {
    let (vmdk, _) = guest("bios");
    let o = guests::inspect_compared(&vmdk);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let g = &v["inputs"][0]["result"]["guest"];
    assert_eq!(g["os_type"], "linux");
    assert_eq!(g["distro"], "debian");
    assert!(g["version"].as_str().unwrap().starts_with("12."), "{g}");
    assert_eq!(g["arch"], "x86_64");
    assert_eq!(g["hostname"], "vmware-debian");
    assert_eq!(g["package_format"], "deb");
    assert_eq!(g["bootloader"], "grub2");
    assert_eq!(g["firmware"], "bios");
    assert_eq!(g["accel"], "tcg");
    assert_eq!(g["network"], serde_json::json!(["ifupdown"]));
    assert_eq!(g["hypervisor_tools"], serde_json::json!(["open-vm-tools"]));
    let k = &g["kernels"][0];
    assert_eq!(k["virtio_capable"], true);
    assert_eq!(
        k["initramfs_has_virtio_blk"], false,
        "the VMware-style initramfs lacks virtio_blk: {k}"
    );
}

/// A manifest-style `configuration` section, applied with the fixes: a user with a group the
/// guest lacks, a hostname with a domain and a hosts entry, a systemd-networkd file.
const CONFIGURATION: &str = r#"{
  "users": {"create": [{"name": "ops", "uid": 1500, "shell": "/bin/bash",
    "password": "$6$hyper2kvm$9zmnpQ0JcLBHvxOf1o3GQnwu3rBcZDFY1Ot3XmfSbPtlVTqrUdGsPyNrKNFwQH2a7tAOUkD0IO7KCd2dDdR6/.",
    "groups": ["sudo", "nosuchgroup"], "ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHyper2kvmTestKeyOnly ops@test"]}]},
  "services": {"enable": ["systemd-networkd"]},
  "hostname": {"hostname": "kvm-debian", "domain": "example.test",
    "hosts": [{"ip": "192.0.2.10", "hostname": "db db.example.test"}]},
  "network": {"systemd_networkd": [{"filename": "50-hyper2kvm-test.network",
    "content": "[Match]\nName=hyper2kvm-none\n\n[Network]\nDHCP=no\n"}]}
}"#;

#[test]
fn boot_converted_guest_on_virtio() {
    let (vmdk, mac) = guest("bios");
    let before = sha256_hex(&vmdk);
    let t = scratch();
    let out = t.path().join("out");
    let conf = t.path().join("configuration.json");
    std::fs::write(&conf, CONFIGURATION).unwrap();
    let v = convert_json(&vmdk, &out, &["--configuration", conf.to_str().unwrap(), "--boot-test"]);
    // hyper2kvm's own boot test (the domain's devices, TCG here) saw the login prompt.
    let bt = &v["report"]["boot_test"];
    assert_eq!(bt["passed"], true, "{bt}");
    assert!(bt["line"].as_str().unwrap().contains("kvm-debian login:"), "{bt}");
    assert_eq!(bt["accel"], "tcg");

    // (c) every change is listed, with the file and the old and new lines.
    let changes = v["report"]["changes"].as_array().unwrap();
    let has = |fixer: &str, action: &str, file: &str| {
        changes.iter().any(|c| {
            c["fixer"] == fixer
                && c["action"] == action
                && c["file"].as_str().unwrap().contains(file)
        })
    };
    let fstab = changes.iter().find(|c| c["fixer"] == "fstab").expect("fstab change");
    assert_eq!(fstab["old"], "/dev/sda1 / ext4 errors=remount-ro 0 1");
    assert!(fstab["new"].as_str().unwrap().starts_with("UUID="), "{fstab}");
    assert!(has("bootloader", "edit", "/boot/grub/grub.cfg"));
    assert!(has("network", "delete", "70-persistent-net.rules"));
    assert!(has("network", "create", "10-hyper2kvm-ens192.link"));
    assert!(has("tools", "delete", "open-vm-tools.service"));
    // The drivers are appended to the image (no update-initramfs run); the tool's
    // configuration names them for the guest's own later rebuilds.
    assert!(has("initramfs", "edit", "/boot/initrd.img-"));
    assert!(has("initramfs", "create", "/etc/initramfs-tools/modules"));
    assert!(!has("initramfs", "run", "update-initramfs"));
    assert_eq!(v["report"]["guest"]["distro"], "debian");
    // The configuration section, each step recorded; the password hash never shows.
    assert!(has("configuration", "create", "/etc/hostname"));
    assert!(has("configuration", "create", "/etc/hosts"));
    assert!(has("configuration", "run", "useradd -m -u 1500 -s /bin/bash -G sudo -p (hash) ops"));
    assert!(has("configuration", "skip", "group nosuchgroup"));
    assert!(has("configuration", "create", "/home/ops/.ssh/authorized_keys"));
    assert!(has("configuration", "create", "/etc/systemd/network/50-hyper2kvm-test.network"));
    assert!(has("configuration", "run", "systemctl enable systemd-networkd.service"));
    assert!(!v.to_string().contains("$6$hyper2kvm$"), "the hash leaked into the report");
    // Debian's qemu-guest-agent unit (when installed) is started by udev; this guest lacks it.
    assert!(has("tools", "skip", "qemu-guest-agent.service"));

    // (d) the source is untouched.
    assert_eq!(sha256_hex(&vmdk), before);

    // (b) it boots on virtio-blk and virtio-net, and its network configuration applies.
    let qcow2 = first_output(&v);
    let r = boot(&qcow2, "qcow2", Bus::Virtio, &mac, MARKER, GIVE_UP, Duration::from_secs(240));
    let line = r.marker.unwrap_or_else(|| {
        panic!("converted guest did not reach the marker:\n{}", tail(&r.console, 30))
    });
    assert!(line.contains("root=/dev/vda1"), "{line}");
    assert!(line.contains("net=ens192:up:10.0.2.15/24"), "{line}");
    assert!(line.contains("host=kvm-debian "), "{line}");
    assert!(line.contains("users=ops,"), "{line}");
    assert!(line.contains("networkd=active"), "{line}");
}

/// A guest whose root held 1 GiB of random data, written and deleted (tests/guests/deleted.sh):
/// with the free blocks discarded after the fixes (the default) its output holds about that
/// gigabyte less than with `--no-trim`, the source is unchanged, and the trimmed guest boots
/// (a discard of a block in use would break it).
#[test]
fn boot_trimmed_guest_whose_deleted_gigabyte_became_holes() {
    use std::os::unix::fs::MetadataExt;
    let (vmdk, mac) = guests::deleted("bios");
    let before = sha256_hex(&vmdk);
    let t = scratch();
    let trimmed = first_output(&convert_json(&vmdk, &t.path().join("trim"), &[]));
    let kept = first_output(&convert_json(&vmdk, &t.path().join("keep"), &["--no-trim"]));
    let allocated = |p: &PathBuf| std::fs::metadata(p).unwrap().blocks() * 512;
    let (a, b) = (allocated(&trimmed), allocated(&kept));
    eprintln!("allocated: trimmed {} MiB, --no-trim {} MiB", a >> 20, b >> 20);
    assert!(b > a + (900 << 20), "trimming freed only {} MiB", (b - a.min(b)) >> 20);
    assert_eq!(sha256_hex(&vmdk), before, "the source is never written");
    let r = boot(&trimmed, "qcow2", Bus::Virtio, &mac, MARKER, GIVE_UP, Duration::from_secs(240));
    let line = r.marker.unwrap_or_else(|| {
        panic!("the trimmed guest did not reach the marker:\n{}", tail(&r.console, 30))
    });
    assert!(line.contains("root=/dev/vda1"), "{line}");
}

/// `--boot-test` on the unconverted guest (`--no-fix`): it fails with the console's tail in
/// the error, exit status 1, and no output is renamed into place.
#[test]
fn boot_test_fails_on_the_unconverted_guest() {
    let (vmdk, _) = guest("bios");
    let t = scratch();
    let out = t.path().join("out");
    let o = hyper2kvm()
        .arg("convert")
        .arg(&vmdk)
        .arg("-o")
        .arg(&out)
        .args(["--no-fix", "--boot-test", "--boot-timeout", "240"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("boot test: the guest failed to boot"), "{stderr}");
    assert!(stderr.contains("last console lines:"), "{stderr}");
    assert!(
        GIVE_UP.iter().any(|g| stderr.contains(g)),
        "the console tail is in the error: {stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "nothing may be left under a final name: {left:?}");
    assert!(String::from_utf8_lossy(&o.stdout).trim().is_empty(), "no Output: lines");
}

#[test]
fn disks_without_an_os_give_a_clear_result() {
    let t = scratch();
    let blank = t.path().join("blank.qcow2");
    qemu_create(&blank, "qcow2", None, "64M");
    // A data disk: an ext4 filesystem with files but no operating system.
    let tree = t.path().join("tree");
    std::fs::create_dir_all(tree.join("projects")).unwrap();
    std::fs::write(tree.join("projects/readme.txt"), "data").unwrap();
    let data = t.path().join("data.img");
    sh(Command::new("truncate").args(["-s", "64M"]).arg(&data));
    sh(Command::new("mkfs.ext4").args(["-q", "-F", "-d"]).arg(&tree).arg(&data));
    // A corrupted filesystem: an ext4 whose superblock is zeroed.
    let broken = t.path().join("broken.img");
    std::fs::copy(&data, &broken).unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&broken).unwrap();
        f.write_all_at(&[0u8; 2048], 0).unwrap();
    }
    for disk in [&blank, &data, &broken] {
        let o = hyper2kvm().args(["inspect", "--json"]).arg(disk).output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}: {}",
            disk.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(v["inputs"][0]["result"]["guest"].is_null(), "{}: {v}", disk.display());
        let human = hyper2kvm().arg("inspect").arg(disk).output().unwrap();
        assert!(String::from_utf8_lossy(&human.stdout).contains("no operating system found"));
    }
}

#[test]
fn boot_guest_whose_initramfs_has_virtio_skips_the_rebuild() {
    let (vmdk, mac) = guest("virtio");
    let t = scratch();
    let out = t.path().join("out");
    let v = convert_json(&vmdk, &out, &[]);
    let changes = v["report"]["changes"].as_array().unwrap();
    let initramfs: Vec<&serde_json::Value> =
        changes.iter().filter(|c| c["fixer"] == "initramfs").collect();
    assert_eq!(initramfs.len(), 1, "{initramfs:?}");
    assert_eq!(initramfs[0]["action"], "skip");
    assert_eq!(initramfs[0]["new"], "the initramfs already holds virtio_blk");
    assert_eq!(v["report"]["guest"]["kernels"][0]["initramfs_has_virtio_blk"], true);
    let qcow2 = first_output(&v);
    let r = boot(&qcow2, "qcow2", Bus::Virtio, &mac, MARKER, GIVE_UP, Duration::from_secs(240));
    let line =
        r.marker.unwrap_or_else(|| panic!("did not reach the marker:\n{}", tail(&r.console, 30)));
    assert!(
        line.contains("root=/dev/vda1") && line.contains("net=ens192:up:10.0.2.15/24"),
        "{line}"
    );
}

#[test]
fn dry_run_plans_without_writing() {
    let (vmdk, _) = guest("bios");
    let before = sha256_hex(&vmdk);
    let t = scratch();
    let out = t.path().join("out");
    let o = hyper2kvm()
        .arg("convert")
        .arg(&vmdk)
        .arg("-o")
        .arg(&out)
        .args(["--dry-run", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", tail(&String::from_utf8_lossy(&o.stderr), 30));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    let plan = v["plan"]["planned_changes"].as_array().unwrap();
    assert!(
        plan.iter()
            .any(|c| c["fixer"] == "fstab" && c["old"] == "/dev/sda1 / ext4 errors=remount-ro 0 1")
    );
    assert!(plan.iter().any(|c| c["fixer"] == "initramfs"
        && c["action"] == "edit"
        && c["new"].as_str().unwrap().contains("virtio_blk")));
    assert!(!out.exists(), "a dry run writes nothing");
    assert_eq!(sha256_hex(&vmdk), before);
}

#[test]
fn boot_uefi_guest_converted_with_ovmf() {
    let (vmdk, mac) = guest("uefi");
    let t = scratch();
    let out = t.path().join("out");
    let v = convert_json(&vmdk, &out, &[]);
    let g = &v["report"]["guest"];
    assert_eq!(g["firmware"], "uefi", "GPT with an ESP and no BIOS boot partition: {g}");
    assert_eq!(g["partition_table"], "gpt");
    assert_eq!(g["mountpoints"]["/boot/efi"], "/dev/sda1");
    let changes = v["report"]["changes"].as_array().unwrap();
    let fstab: Vec<&serde_json::Value> = changes.iter().filter(|c| c["fixer"] == "fstab").collect();
    assert_eq!(fstab.len(), 2, "root and ESP lines: {fstab:?}");
    assert!(fstab.iter().all(|c| c["new"].as_str().unwrap().starts_with("UUID=")));
    let qcow2 = first_output(&v);
    let r = boot(&qcow2, "qcow2", Bus::VirtioUefi, &mac, MARKER, GIVE_UP, Duration::from_secs(300));
    let line = r.marker.unwrap_or_else(|| {
        panic!("UEFI guest did not reach the marker:\n{}", tail(&r.console, 30))
    });
    assert!(
        line.contains("root=/dev/vda2") && line.contains("net=ens192:up:10.0.2.15/24"),
        "{line}"
    );
}

/// Also the guest-tool rebuild path (`--rebuild-initramfs`), which non-Debian guests take.
#[test]
fn boot_lvm_root_guest_converted() {
    let (vmdk, mac) = guest("lvm");
    let t = scratch();
    let out = t.path().join("out");
    let v = convert_json(&vmdk, &out, &["--rebuild-initramfs"]);
    let g = &v["report"]["guest"];
    assert_eq!(g["storage"], serde_json::json!(["lvm"]), "{g}");
    let changes = v["report"]["changes"].as_array().unwrap();
    // The root is named by device mapper, which virtio does not change: fstab stays as it is.
    assert!(!changes.iter().any(|c| c["fixer"] == "fstab" && c["action"] == "edit"), "{changes:?}");
    let modules = changes
        .iter()
        .find(|c| c["fixer"] == "initramfs" && c["action"] == "create")
        .expect("modules list");
    assert!(modules["new"].as_str().unwrap().contains("dm_mod"));
    // Asked to: the guest's own tool rebuilt the image (the path other distributions take).
    assert!(changes.iter().any(|c| c["fixer"] == "initramfs"
        && c["action"] == "run"
        && c["file"].as_str().unwrap().starts_with("update-initramfs")));
    let qcow2 = first_output(&v);
    let r = boot(&qcow2, "qcow2", Bus::Virtio, &mac, MARKER, GIVE_UP, Duration::from_secs(300));
    let line = r
        .marker
        .unwrap_or_else(|| panic!("LVM guest did not reach the marker:\n{}", tail(&r.console, 30)));
    assert!(
        line.contains("root=/dev/mapper/vg0-root") && line.contains("net=ens192:up:10.0.2.15/24"),
        "{line}"
    );
}

/// Issue 5's end-to-end case: a manifest shaped like HyperSDK's vSphere export — the Debian
/// guest as `disk-0` (boot) and a data disk `disk-1`, checksums, one NIC, every stage on — run
/// in direct mode; the converted boot disk boots on virtio and every report section is filled.
#[test]
fn boot_guest_from_a_vsphere_manifest() {
    let (vmdk, mac) = guest("bios");
    let t = scratch();
    let export = t.path().join("export");
    std::fs::create_dir(&export).unwrap();
    let data_raw = t.path().join("data.raw");
    raw_with_data(&data_raw, 16 << 20);
    let data = export.join("web01-1.vmdk");
    qemu_from_raw(&data_raw, &data, "vmdk", Some("subformat=streamOptimized"));
    let manifest = serde_json::json!({
        "manifest_version": "1.0",
        "source": {"provider": "vsphere", "vm_id": "vm-7", "vm_name": "web01"},
        "vm": {"cpu": 2, "mem_gb": 1, "firmware": "bios", "os_hint": "linux"},
        "disks": [
            {"id": "disk-0", "source_format": "vmdk", "bytes": 0, "local_path": vmdk,
             "checksum": format!("sha256:{}", sha256_hex(&vmdk)), "boot_order_hint": 0, "disk_type": "boot"},
            {"id": "disk-1", "source_format": "vmdk", "bytes": 16 << 20, "local_path": "web01-1.vmdk",
             "checksum": format!("sha256:{}", sha256_hex(&data)), "boot_order_hint": 1, "disk_type": "data"}
        ],
        "nics": [{"id": "nic-0", "mac": mac, "network": "VM Network"}],
        "metadata": {"hypersdk_version": "0.9.0", "job_id": "vm-7"},
        "pipeline": {"inspect": {"enabled": true},
                     "fix": {"enabled": true, "fstab_mode": "stabilize-all", "print_fstab": true},
                     "convert": {"enabled": true, "compress": true}, "validate": {"enabled": true}},
        "options": {"report": {"enabled": true, "path": "report.json"}}
    });
    let path = export.join("artifact-manifest.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let before = sha256_hex(&vmdk);
    let o = hyper2kvm().arg(&path).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", tail(&String::from_utf8_lossy(&o.stderr), 30));
    let out = export.join("output");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["pipeline"]["success"], true);
    assert_eq!(r["guest"]["distro"], "debian", "{}", r["guest"]);
    assert_eq!(r["guest"]["firmware"], "bios");
    let changes = r["changes"].as_array().unwrap();
    assert!(changes.iter().any(|c| c["fixer"] == "fstab"), "{changes:?}");
    assert!(changes.iter().any(|c| c["fixer"] == "initramfs" && c["action"] == "edit"));
    assert_eq!(r["artifacts"].as_array().unwrap().len(), 4, "{}", r["artifacts"]);
    // print_fstab: before and after, in the report and on stderr.
    assert!(r["fstab"]["before"].as_str().unwrap().contains("/dev/sda1 / ext4"), "{}", r["fstab"]);
    assert!(r["fstab"]["after"].as_str().unwrap().contains("UUID="), "{}", r["fstab"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("fstab after the fixes:"));
    assert_eq!(sha256_hex(&vmdk), before, "the source is never written");
    let xml = std::fs::read_to_string(out.join("web01.xml")).unwrap();
    assert!(xml.find("web01.qcow2").unwrap() < xml.find("web01-disk-1.qcow2").unwrap());
    assert!(xml.contains(&format!("<mac address=\"{mac}\"/>")), "{xml}");
    let boot_disk = out.join("web01.qcow2");
    let b = boot(&boot_disk, "qcow2", Bus::Virtio, &mac, MARKER, GIVE_UP, Duration::from_secs(240));
    let line = b.marker.unwrap_or_else(|| panic!("did not boot:\n{}", tail(&b.console, 30)));
    assert!(
        line.contains("root=/dev/vda1") && line.contains("net=ens192:up:10.0.2.15/24"),
        "{line}"
    );
}
