//! KubeVirt output (`--target kubevirt`, `output.target`) for guests the other suites do not
//! cover: the YAML written for them must pass the published Kubernetes, KubeVirt and CDI
//! schemas and `kubectl create --dry-run=client` (see `tests/kubernetes/validate.py`).

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::process::Command;

use support::windows::{Release, standin};

fn hyper2kvm() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hyper2kvm"));
    c.env("LIBGUESTFS_BACKEND", "direct").env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg");
    c
}

fn assert_has(text: &str, want: &[&str], what: &str) {
    for w in want {
        assert!(text.contains(w), "{what}: missing {w} in:\n{text}");
    }
}

/// A UEFI secure-boot Windows (the Server 2022 stand-in, GPT with its EFI system partition) from
/// a manifest that says `efi` and `secureboot`, written for KubeVirt (`output.target`): the VM
/// boots EFI with secure boot and SMM, and the YAML passes the published schemas and kubectl.
/// Inspection and fixes are off: the firmware comes from the manifest, and the Windows
/// preparation is what the tests above check.
#[test]
fn a_uefi_secure_boot_manifest_becomes_a_kubevirt_vm_with_smm() {
    let t = support::scratch();
    let disk = standin(Release::Server2022);
    let manifest = serde_json::json!({
        "manifest_version": "1.0",
        "source": {"provider": "vsphere", "vm_id": "vm-9", "vm_name": "Win2022 SB"},
        "vm": {"cpu": 4, "mem_gb": 8, "firmware": "efi", "secureboot": true, "os_hint": "windows"},
        "disks": [{
            "id": "disk-0", "source_format": "raw", "local_path": disk, "disk_type": "boot",
            "bytes": std::fs::metadata(&disk).unwrap().len()
        }],
        "nics": [{"id": "nic-0", "mac": "00:50:56:0a:0b:0c", "network": "VM Network"}],
        "pipeline": {"inspect": {"enabled": false}, "fix": {"enabled": false}},
        "output": {"directory": t.path().join("out"), "target": "kubevirt", "namespace": "windows"}
    });
    let m = t.path().join("sb.json");
    std::fs::write(&m, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let o = hyper2kvm().arg(&m).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let yaml = t.path().join("out/Win2022_SB.kubevirt.yaml");
    assert!(stdout.contains(&format!("Output: {}", yaml.display())), "{stdout}");
    support::kubernetes_valid(&[&yaml]);
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert_has(
        &text,
        &[
            "secureBoot: true",
            "name: win2022-sb",
            "hyper2kvm.io/source-name: Win2022_SB",
            "macAddress: 00:50:56:0a:0b:0c",
            "guest: 8192Mi",
            "namespace: windows",
        ],
        "kubevirt.yaml",
    );
    let vm: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text.split("\n---\n").next().unwrap()).unwrap();
    let domain = &vm["spec"]["template"]["spec"]["domain"];
    assert_eq!(domain["features"]["smm"]["enabled"], serde_yaml_ng::Value::Bool(true), "{text}");
    assert_eq!(
        domain["firmware"]["bootloader"]["efi"]["secureBoot"],
        serde_yaml_ng::Value::Bool(true),
        "{text}"
    );
}
