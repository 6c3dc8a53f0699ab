//! Guests set up the way real exported guests are, which our first tests did not make
//! (tests/guests/debian.sh: GRUB installed by the guest's own grub-install, grub.cfg written by
//! its own update-grub, systemd's absolute `.wants/` links, open-vm-tools):
//! - `grub-nouuid`: `GRUB_DISABLE_LINUX_UUID=true`, so update-grub writes `root=/dev/sda1`
//!   (and writes it again when the fixer runs it in the appliance);
//! - `netplan`: netplan.io with `match: {macaddress: …}` and `set-name: ens192`;
//! - `nm`: a NetworkManager keyfile with `interface-name=ens192` and `mac-address=`.
//!
//! For each: (a) unconverted, it does not boot on virtio-blk (and `inspect` says so, with the
//! reason); (b) `hyper2kvm convert` (with `--backup`) makes it boot on virtio-blk + virtio-net
//! to its own marker line with its root on /dev/vda1 and ens192 up with its static address;
//! (c) a vSphere-shaped manifest as HyperSDK writes it (every stage on, `fix.backup`,
//! `fstab_mode: stabilize-all`, `compress`) does the same.
//!
//! Then the verifier: the `bios` guest broken on purpose in each way the verifier checks, in
//! ways the fixers cannot repair; each conversion fails with exit 1, a precise message, and no
//! output under a final name. Boots run under TCG with a bound; tests named `boot_*`.

#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "../../tests/support/boot.rs"]
mod boot;
#[path = "../../tests/support/guests.rs"]
mod guests;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use boot::{Bus, boot, tail};
use guests::{debian as guest, facts, hyper2kvm};
use support::*;

const MARKER: &str = "HYPER2KVM-BOOT-OK";
/// What initramfs-tools and dracut print when they give up on the root, and a kernel panic.
/// dracut declares its timeout (its root device never appeared; it then only runs timeout
/// scripts, for degraded arrays) after two thirds of its `rd.retry` loop (240 rounds meant as
/// half seconds, about 4 minutes under TCG), and only later enters its emergency shell.
const GIVE_UP: &[&str] = &[
    "Gave up waiting for root",
    "ALERT!",
    "Kernel panic",
    "Could not boot",
    "dracut-initqueue: starting timeout scripts",
    "Entering emergency mode",
    // OVMF's own, when no boot option loads (it then offers its shell).
    "No bootable option or device was found",
    "UEFI Interactive Shell",
];

/// Files under a final name in `dir` (not hidden, not partial).
fn published(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect()
}

/// (a) The unconverted guest gives up on its root on virtio (or never reaches its marker);
/// `inspect --json` and `convert --dry-run` say it will not boot, and why.
fn unconverted_fails(variant: &str, bus: Bus, reason: &str) {
    let (vmdk, _, _) = guest(variant);
    let macs = facts(&vmdk, "macs").join(",");
    let r = boot(&vmdk, "vmdk", bus, &macs, MARKER, GIVE_UP, Duration::from_secs(360));
    assert!(
        r.marker.is_none(),
        "{variant} booted on virtio unconverted:\n{}",
        tail(&r.console, 20)
    );
    assert!(
        GIVE_UP.iter().any(|g| r.console.contains(g)),
        "{variant}: expected the initramfs to give up on its root:\n{}",
        tail(&r.console, 20)
    );
    eprintln!("corpus: {variant} before: no marker, gave up after {:.0} s", r.seconds);
    // Our own OS inspection and libguestfs's inspect_os, in the same session, must agree on
    // every variant (root, mount points, distribution, version, host name, tools, …).
    let o = guests::inspect_compared(&vmdk);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let verdict = &v["inputs"][0]["result"]["boot_verdict"];
    assert_eq!(verdict["will_boot"], false, "{verdict}");
    let checks = verdict["checks"].as_array().unwrap();
    assert!(
        checks.iter().any(|c| c["ok"] == false && c["detail"].as_str().unwrap().contains(reason)),
        "{variant}: no failed check says {reason:?}: {verdict}"
    );
    // A dry run prints the same verdict (as `inspect` without `--json` does) beside its plan,
    // and writes nothing.
    let t = scratch();
    let out = t.path().join("out");
    let o = hyper2kvm()
        .arg("convert")
        .arg(&vmdk)
        .arg("-o")
        .arg(&out)
        .arg("--dry-run")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("boots on KVM as it is (virtio-blk): no, because"), "{text}");
    assert!(text.lines().any(|l| l.contains("failed check") && l.contains(reason)), "{text}");
    assert!(published(&out).is_empty(), "a dry run publishes nothing");
}

/// Boots a converted boot disk and checks its marker line says what the builder expects
/// (root device, each NIC up with its address, active swap).
fn boots_converted(variant: &str, disk: &Path, vmdk: &Path, how: &str) {
    let macs = facts(vmdk, "macs").join(",");
    let bus = if variant.starts_with("uefi") { Bus::VirtioUefi } else { Bus::Virtio };
    let r = boot(disk, "qcow2", bus, &macs, MARKER, GIVE_UP, Duration::from_secs(300));
    let line = r.marker.unwrap_or_else(|| {
        panic!("{variant} ({how}) did not reach its marker:\n{}", tail(&r.console, 30))
    });
    for want in facts(vmdk, "expect") {
        assert!(
            line.split_whitespace().any(|w| w.starts_with(&want)),
            "{variant} ({how}): expected {want} in {line}"
        );
    }
    eprintln!("corpus: {variant} after {how}: marker after {:.0} s: {line}", r.seconds);
}

/// Every backup the fixers left, with whether it is a symbolic link, read back from the disk.
fn backups(disk: &Path) -> String {
    let out = Command::new("guestfish")
        .env("LIBGUESTFS_BACKEND", "direct")
        .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
        .args(["--ro", "-a"])
        .arg(disk)
        .args(["-i", "sh", "find /etc -name '*.hyper2kvm.bak' -printf '%y %p -> %l\\n'"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (b) `hyper2kvm convert --backup`: boots, the verdict is yes, the systemd links' backups
/// are links.
fn converted_boots(variant: &str) {
    let (vmdk, _, _) = guest(variant);
    let before = sha256_hex(&vmdk);
    let t = scratch();
    let out = t.path().join("out");
    let o = hyper2kvm()
        .arg("convert")
        .arg(&vmdk)
        .arg("-o")
        .arg(&out)
        .args(["--json", "--backup"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", tail(&String::from_utf8_lossy(&o.stderr), 30));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let verdict = &v["report"]["boot_verdict"];
    assert_eq!(verdict["will_boot"], true, "{verdict}");
    for check in ["bootloader", "kernel", "initramfs", "root", "drivers", "fstab", "network"] {
        assert!(
            verdict["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["check"] == check && c["ok"] == true),
            "{variant}: no passed {check} check: {verdict}"
        );
    }
    // The domain carries the MACs the guest's configuration is written for.
    let xml = std::fs::read_to_string(v["report"]["domain"]["xml"].as_str().unwrap()).unwrap();
    for mac in facts(&vmdk, "macs") {
        assert!(xml.contains(&format!("<mac address=\"{mac}\"/>")), "{xml}");
    }
    assert_eq!(sha256_hex(&vmdk), before, "the source is never written");
    let disk = PathBuf::from(v["report"]["outputs"][0]["path"].as_str().unwrap());
    // open-vm-tools' unit link (absolute, as systemctl enable writes it; /usr/lib/… on merged
    // /usr), removed with --backup, is kept as a link to the same target.
    let baks = backups(&disk);
    assert!(
        baks.lines().any(|l| l.starts_with("l ")
            && l.contains("multi-user.target.wants/open-vm-tools.service.hyper2kvm.bak -> /")
            && l.ends_with("/systemd/system/open-vm-tools.service")),
        "{variant}: backups: {baks}"
    );
    boots_converted(variant, &disk, &vmdk, "convert");
}

/// (c) A manifest as HyperSDK's vSphere exporter writes it, in direct mode.
fn manifest_boots(variant: &str) {
    let (vmdk, _, _) = guest(variant);
    let t = scratch();
    let export = t.path().join("export");
    std::fs::create_dir(&export).unwrap();
    let name = format!("vm-{variant}");
    // HyperSDK writes the MACs as vSphere reports them (upper case, `-`).
    let nics: Vec<serde_json::Value> = facts(&vmdk, "macs")
        .iter()
        .enumerate()
        .map(|(i, mac)| serde_json::json!({"id": format!("nic-{i}"), "mac": mac.to_uppercase().replace(':', "-"), "network": "VM Network"}))
        .collect();
    let manifest = serde_json::json!({
        "manifest_version": "1.0",
        "source": {"provider": "vsphere", "vm_id": "vm-42", "vm_name": name, "datacenter": "DC1"},
        "vm": {"cpu": 2, "mem_gb": 1, "firmware": "bios", "os_hint": "linux"},
        "disks": [{"id": "disk-0", "source_format": "vmdk", "bytes": std::fs::metadata(&vmdk).unwrap().len(),
                   "local_path": vmdk, "checksum": format!("sha256:{}", sha256_hex(&vmdk)),
                   "boot_order_hint": 0, "disk_type": "boot"}],
        "nics": nics,
        "metadata": {"hypersdk_version": "0.9.0", "job_id": "vm-42"},
        "pipeline": {
            "inspect": {"enabled": true},
            "fix": {"enabled": true, "backup": true, "fstab_mode": "stabilize-all",
                    "update_grub": true, "regen_initramfs": true, "remove_vmware_tools": true},
            "convert": {"enabled": true, "compress": true},
            "validate": {"enabled": true}
        },
        "options": {"report": {"enabled": true, "path": "report.json"}}
    });
    let path = export.join("artifact-manifest.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let o = hyper2kvm().arg(&path).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", tail(&String::from_utf8_lossy(&o.stderr), 30));
    let out = export.join("output");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["pipeline"]["success"], true, "{r}");
    assert_eq!(r["boot_verdict"]["will_boot"], true, "{}", r["boot_verdict"]);
    let disk = out.join(format!("{name}.qcow2"));
    boots_converted(variant, &disk, &vmdk, "manifest");
}

/// A variant's tests: before (unconverted on virtio, with the reason `inspect` must give),
/// after `convert`, and (with `manifest`) after a vSphere manifest.
macro_rules! variant {
    ($m:ident, $name:literal, $reason:literal) => {
        mod $m {
            #[test]
            fn boot_unconverted_does_not_boot() {
                super::unconverted_fails($name, super::Bus::Virtio, $reason);
            }
            #[test]
            fn boot_after_convert() {
                super::converted_boots($name);
            }
        }
    };
    ($m:ident, $name:literal, $reason:literal, manifest) => {
        mod $m {
            #[test]
            fn boot_unconverted_does_not_boot() {
                super::unconverted_fails($name, super::Bus::Virtio, $reason);
            }
            #[test]
            fn boot_after_convert() {
                super::converted_boots($name);
            }
            #[test]
            fn boot_after_vsphere_manifest() {
                super::manifest_boots($name);
            }
        }
    };
}

variant!(
    grub_nouuid,
    "grub-nouuid",
    "boots with root=/dev/sda1: /dev/sda1 will not exist on virtio-blk",
    manifest
);
variant!(netplan, "netplan", "lacks virtio_blk", manifest);
variant!(networkmanager, "nm", "configures ens192, but no interface will have that name", manifest);
variant!(
    dracut,
    "dracut",
    "ifcfg-ens192 (ifcfg) configures ens192, but no interface will have that name"
);
variant!(
    sepboot,
    "sepboot",
    "/etc/fstab mounts /boot from /dev/sda1: /dev/sda1 will not exist on virtio-blk"
);
variant!(xfs, "xfs", "lacks virtio_blk");
variant!(btrfs, "btrfs", "lacks virtio_blk");
variant!(swap, "swap", "resumes from resume=/dev/sda2: /dev/sda2 will not exist on virtio-blk");
variant!(twonic, "twonic", "configures ens224, but no interface will have that name", manifest);
variant!(bullseye, "bullseye", "lacks virtio_blk");
variant!(trixie, "trixie", "lacks virtio_blk");

/// Debian's own UEFI install (shim and GRUB in `\EFI\debian\`, the `grub.cfg` stub that
/// `configfile`s `/boot/grub/grub.cfg`, no `\EFI\BOOT\BOOTX64.EFI`): booted with OVMF and
/// a new variable store, as a new domain is.
mod uefi_shim {
    #[test]
    fn boot_unconverted_does_not_boot() {
        super::unconverted_fails(
            "uefi-shim",
            super::Bus::VirtioUefi,
            "has no \\EFI\\BOOT\\BOOTX64.EFI",
        );
    }
    #[test]
    fn boot_after_convert() {
        super::converted_boots("uefi-shim");
    }
}

// The guests `linux_guest` converts (bios, uefi, lvm): before, unconverted.

#[test]
fn boot_uefi_unconverted_does_not_boot() {
    unconverted_fails("uefi", Bus::VirtioUefi, "lacks virtio_blk");
}

#[test]
fn boot_lvm_unconverted_does_not_boot() {
    unconverted_fails("lvm", Bus::Virtio, "lacks virtio_blk");
}

// The verifier's refusals.

/// A throw-away overlay of the `bios` guest, changed by a guestfish script (the cached guest
/// itself is only read).
fn broken(t: &Path, script: &str) -> PathBuf {
    let (vmdk, _, _) = guest("bios");
    let overlay = t.join("broken.qcow2");
    sh(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "vmdk", "-b"])
        .arg(&vmdk)
        .arg(&overlay));
    let mut fish = Command::new("guestfish");
    fish.arg("-a").arg(&overlay);
    let out = guestfish(fish, &format!("run\nmount /dev/sda1 /\n{script}\numount-all\n"));
    assert!(out.status.success(), "guestfish: {}", String::from_utf8_lossy(&out.stderr));
    overlay
}

/// `hyper2kvm convert` must fail with exit 1 naming each of `expect`, publishing nothing.
fn refused(input: &Path, out: &Path, expect: &[&str]) {
    let o = hyper2kvm().arg("convert").arg(input).arg("-o").arg(out).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the converted guest would not boot"), "{stderr}");
    for e in expect {
        assert!(stderr.contains(e), "expected {e:?} in:\n{stderr}");
    }
    assert!(String::from_utf8_lossy(&o.stdout).trim().is_empty(), "no Output: lines");
    assert!(published(out).is_empty(), "nothing under a final name: {:?}", published(out));
}

#[test]
fn verifier_refuses_root_on_a_missing_device() {
    let t = scratch();
    let disk =
        broken(t.path(), "command \"sed -i s|root=/dev/sda1|root=/dev/sdz9| /boot/grub/grub.cfg\"");
    refused(
        &disk,
        &t.path().join("out"),
        &[
            "default entry \"Debian GNU/Linux, with Linux",
            "in /boot/grub/grub.cfg boots with root=/dev/vdz9: /dev/vdz9 will not exist",
        ],
    );
}

#[test]
fn verifier_refuses_an_initramfs_without_the_bus_driver() {
    let t = scratch();
    let (_, _, kernel) = guest("bios");
    // GRUB loads an older copy of the image: the fixers give the kernel's own initramfs the
    // drivers, but not the file the boot loader reads.
    let disk = broken(
        t.path(),
        &format!(
            "cp /boot/initrd.img-{kernel} /boot/initrd.vmware\ncommand \"sed -i s|initrd.img-{kernel}|initrd.vmware| /boot/grub/grub.cfg\""
        ),
    );
    refused(&disk, &t.path().join("out"), &["/boot/initrd.vmware lacks virtio_blk, virtio_pci"]);
}

#[test]
fn verifier_refuses_a_missing_kernel() {
    let t = scratch();
    let (_, _, kernel) = guest("bios");
    let disk = broken(
        t.path(),
        &format!("command \"sed -i s|vmlinuz-{kernel}|vmlinuz-9.9.9-gone| /boot/grub/grub.cfg\""),
    );
    refused(
        &disk,
        &t.path().join("out"),
        &["boots kernel /boot/vmlinuz-9.9.9-gone, which is missing"],
    );
}

#[test]
fn verifier_refuses_an_fstab_entry_to_a_missing_device() {
    let t = scratch();
    let disk = broken(
        t.path(),
        "write-append /etc/fstab \"UUID=0bad0bad-0000-4000-8000-000000000001 /srv ext4 defaults 0 2\\n\"",
    );
    refused(
        &disk,
        &t.path().join("out"),
        &[
            "/etc/fstab mounts /srv from UUID=0bad0bad-0000-4000-8000-000000000001: no device on the converted disks has UUID",
        ],
    );
}

/// An ifupdown option left without a value: our reading of the file still finds ens192, but
/// the guest's own `ifup` would refuse the whole file at boot.
#[test]
fn verifier_refuses_an_interfaces_file_its_ifup_rejects() {
    let t = scratch();
    let disk = broken(t.path(), "write-append /etc/network/interfaces \"    mtu\\n\"");
    refused(
        &disk,
        &t.path().join("out"),
        &[
            "the guest's ifup --no-act --all (ifupdown) rejects its configuration",
            "option with empty value",
        ],
    );
}

/// The source (a manifest's `nics`) names the VMware MAC; a netplan file left in the guest is
/// pinned to another (netplan would rename and configure only a NIC with that MAC). Run as HyperSDK does, in direct mode: exit 1, the report says why, no
/// disk or domain published.
#[test]
fn verifier_refuses_a_nic_config_pinned_to_a_foreign_mac() {
    let t = scratch();
    let (_, mac, _) = guest("bios");
    let disk = broken(
        t.path(),
        "mkdir-p /etc/netplan\nwrite /etc/netplan/60-uplink.yaml \"network:\\n  version: 2\\n  ethernets:\\n    uplink:\\n      match:\\n        macaddress: 52:54:00:de:ad:01\\n      set-name: uplink0\\n      addresses: [192.0.2.9/24]\\n\"",
    );
    let export = t.path().join("export");
    std::fs::create_dir(&export).unwrap();
    let manifest = serde_json::json!({
        "manifest_version": "1.0",
        "source": {"provider": "vsphere", "vm_name": "pinned"},
        "vm": {"cpu": 1, "mem_gb": 1},
        "disks": [{"id": "disk-0", "source_format": "qcow2", "bytes": 0, "local_path": disk, "disk_type": "boot"}],
        "nics": [{"id": "nic-0", "mac": mac}]
    });
    let path = export.join("artifact-manifest.json");
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let o = hyper2kvm().arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let expect = format!(
        "/etc/netplan/60-uplink.yaml (netplan) is pinned to MAC 52:54:00:de:ad:01, which no NIC of the converted guest has ({mac})"
    );
    assert!(stderr.contains(&expect), "expected {expect:?} in:\n{stderr}");
    let out = export.join("output");
    let left: Vec<String> = published(&out).into_iter().filter(|n| n != "report.json").collect();
    assert!(left.is_empty(), "nothing but the report under a final name: {left:?}");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["pipeline"]["success"], false);
    assert!(r["errors"][0].as_str().unwrap().contains(&expect), "{r}");
}
