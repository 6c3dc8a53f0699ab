//! Batch manifests in direct mode (`hyper2kvm BATCH.json`): several VM manifests, each in its
//! own export directory with real small disks, run by priority up to `parallel_limit` at once,
//! with `continue_on_error`, disabled VMs, merge-patch overrides and the batch report. The
//! guest-side stages are switched off by the batch's overrides (the disks hold data, not an
//! OS; the guest stages of a manifest run are covered in manifest.rs and linux_guest.rs).

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::*;

fn hyper2kvm() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hyper2kvm"));
    c.env("LIBGUESTFS_BACKEND", "direct").env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg");
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `root/NAME/manifest.json` with one 8 MiB VMDK, its checksum right unless `corrupt`.
fn vm(root: &Path, name: &str, corrupt: bool) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join("d.raw");
    raw_with_data(&raw, 8 << 20);
    let vmdk = dir.join(format!("{name}.vmdk"));
    qemu_from_raw(&raw, &vmdk, "vmdk", None);
    std::fs::remove_file(&raw).unwrap();
    let sum = if corrupt { "0".repeat(64) } else { sha256_hex(&vmdk) };
    let m = json!({
        "manifest_version": "1.0",
        "source": {"provider": "vsphere", "vm_name": name},
        "vm": {"cpu": 1, "mem_gb": 1},
        "disks": [{"id": "disk-0", "source_format": "vmdk", "bytes": 8 << 20,
                   "local_path": format!("{name}.vmdk"), "checksum": format!("sha256:{sum}")}],
        "nics": [{"mac": "00:50:56:00:00:01"}]
    });
    std::fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
}

/// The batch file in `root`, each VM's guest stages switched off by an override.
fn batch(root: &Path, meta: Value, vms: Value) -> PathBuf {
    let mut vms = vms;
    for v in vms.as_array_mut().unwrap() {
        let o = v.as_object_mut().unwrap().entry("overrides").or_insert(json!({}));
        o["pipeline"] = json!({"inspect": {"enabled": false}, "fix": {"enabled": false}});
    }
    let b = json!({"batch_version": "1.0", "batch_metadata": meta,
                   "shared_config": {"output_directory": "converted"}, "vms": vms});
    let p = root.join("batch.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&b).unwrap()).unwrap();
    p
}

fn report(root: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(root.join("converted/batch-report.json")).unwrap())
        .unwrap()
}

fn by_id<'a>(r: &'a Value, id: &str) -> &'a Value {
    r["vms"].as_array().unwrap().iter().find(|v| v["id"] == id).unwrap()
}

#[test]
fn a_failing_vm_does_not_stop_the_others_and_every_vm_is_reported() {
    let t = scratch();
    for (name, corrupt) in [("web01", false), ("db01", false), ("bad01", true), ("off01", false)] {
        vm(t.path(), name, corrupt);
    }
    let p = batch(
        t.path(),
        json!({"batch_id": "wave-1", "parallel_limit": 2}),
        json!([
            {"manifest": "web01/manifest.json", "id": "web01"},
            {"manifest": "db01/manifest.json", "id": "db01", "priority": 5,
             "overrides": {"output": {"format": "raw"}}},
            {"manifest": "bad01/manifest.json", "id": "bad01", "priority": 9},
            {"manifest": "off01/manifest.json", "id": "off01", "enabled": false}
        ]),
    );
    let o = hyper2kvm().arg(&p).output().unwrap();
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "one VM failed: exit 1\n{out}\n{err}");
    let conv = t.path().join("converted");
    for f in ["web01/web01.qcow2", "web01/web01.xml", "web01/report.json", "db01/db01.raw"] {
        assert!(conv.join(f).is_file(), "{f} missing\n{err}");
        assert!(out.contains(&format!("Output: {}", conv.join(f).display())), "{f}: {out}");
    }
    assert!(!conv.join("bad01/bad01.qcow2").exists(), "a failed VM leaves no disk");
    assert!(!conv.join("off01").exists(), "a disabled VM writes nothing");
    assert!(err.contains("[bad01]") && err.contains("the manifest says 0000"), "{err}");
    assert!(err.contains("[web01] stage: convert started"), "events carry the VM id: {err}");
    let r = report(t.path());
    assert_eq!(r["batch_id"], "wave-1");
    assert_eq!(r["success"], false);
    assert_eq!(by_id(&r, "web01")["status"], "success");
    assert_eq!(by_id(&r, "db01")["status"], "success");
    assert_eq!(by_id(&r, "bad01")["status"], "failed");
    assert_eq!(by_id(&r, "bad01")["error_kind"], "checksum");
    assert_eq!(by_id(&r, "off01")["status"], "skipped");
    assert_eq!(by_id(&r, "bad01")["start_sequence"], 0, "highest priority starts first");
    assert_eq!(by_id(&r, "web01")["start_sequence"], 2, "lowest priority starts last");
    assert_eq!(by_id(&r, "bad01")["report"], Value::Null, "bad input writes no report");
    assert!(walk(&conv.join("bad01")).is_empty(), "nor anything else");
    assert!(r["summary"].as_str().unwrap().contains("2 succeeded, 1 failed, 1 skipped"));
}

#[test]
fn without_continue_on_error_nothing_starts_after_a_failure() {
    let t = scratch();
    vm(t.path(), "bad01", true);
    vm(t.path(), "web01", false);
    vm(t.path(), "db01", false);
    let p = batch(
        t.path(),
        json!({"parallel_limit": 1, "continue_on_error": false}),
        json!([
            {"manifest": "web01/manifest.json", "priority": 1},
            {"manifest": "bad01/manifest.json", "id": "bad01", "priority": 2},
            {"manifest": "db01/manifest.json", "id": "db01"}
        ]),
    );
    let o = hyper2kvm().arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let r = report(t.path());
    assert_eq!(by_id(&r, "bad01")["status"], "failed");
    for id in ["web01-manifest", "db01"] {
        let v = by_id(&r, id);
        assert_eq!(v["status"], "not_run", "{v}");
        assert!(v["error"].as_str().unwrap().contains("continue_on_error is false"), "{v}");
    }
    assert_eq!(r["batch_id"], "batch", "the file stem when batch_id is absent");
    let disks: Vec<_> = walk(&t.path().join("converted"))
        .into_iter()
        .filter(|(p, _, _)| p.extension().is_some_and(|e| e == "qcow2"))
        .collect();
    assert!(disks.is_empty(), "{disks:?}");
}

#[test]
fn a_bad_batch_is_refused_whole_and_dry_run_writes_nothing() {
    let t = scratch();
    vm(t.path(), "web01", false);
    vm(t.path(), "db01", false);
    let p = batch(
        t.path(),
        json!({"parallel_limit": 0}),
        json!([
            {"manifest": "web01/manifest.json", "overrides": {"vm": {"cpu": 0}}},
            {"manifest": "db01/manifest.json", "id": "x y"},
            {"manifest": "none/manifest.json"}
        ]),
    );
    let before = walk(t.path());
    let o = hyper2kvm().arg(&p).output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for want in [
        "batch.json",
        "batch_metadata.parallel_limit: 0 is out of range",
        "vm.cpu: 0 is out of range",
        "vms[1].id: \"x y\" may only hold",
        "vms[2].manifest: ",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
    assert_eq!(walk(t.path()), before, "nothing written");

    let p = batch(
        t.path(),
        json!({}),
        json!([
            {"manifest": "web01/manifest.json"},
            {"manifest": "db01/manifest.json", "id": "db01", "priority": 3, "enabled": true},
            {"manifest": "none/manifest.json", "id": "gone", "enabled": false}
        ]),
    );
    let before = walk(t.path());
    let o = hyper2kvm().arg(&p).arg("--dry-run").output().unwrap();
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let conv = t.path().join("converted");
    let db = out.find(&format!("[db01] Would write: {}", conv.join("db01/db01.qcow2").display()));
    let web = out.find(&format!(
        "[web01-manifest] Would write: {}",
        conv.join("web01-manifest/web01.qcow2").display()
    ));
    assert!(db.is_some() && web.is_some() && db < web, "priority order:\n{out}");
    assert!(out.contains("[gone] Would skip"), "{out}");
    assert_eq!(walk(t.path()), before, "a dry run writes nothing");
}

/// Every file under `dir` with its size and modification time.
fn walk(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        if m.is_dir() {
            out.push((e.path(), 0, m.modified().unwrap()));
            out.extend(walk(&e.path()));
        } else {
            out.push((e.path(), m.len(), m.modified().unwrap()));
        }
    }
    out.sort();
    out
}
