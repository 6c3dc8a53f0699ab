//! Direct mode, `hyper2kvm MANIFEST`, on manifests shaped like HyperSDK's vSphere export with
//! two stream-optimized VMDKs (disks with data but no operating system: the guest-side stages
//! run and report that; the Linux guest's own manifest run is in linux_guest.rs).

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::*;

fn hyper2kvm() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hyper2kvm"));
    c.env("LIBGUESTFS_BACKEND", "direct").env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg");
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An export directory: two VMDKs and the manifest HyperSDK would write for them.
fn export(dir: &Path) -> Value {
    let mut disks = Vec::new();
    for (i, size) in [(0, 24u64 << 20), (1, 16 << 20)] {
        let raw = dir.join(format!("d{i}.raw"));
        raw_with_data(&raw, size);
        let vmdk = dir.join(format!("web01-{i}.vmdk"));
        qemu_from_raw(&raw, &vmdk, "vmdk", Some("subformat=streamOptimized"));
        std::fs::remove_file(&raw).unwrap();
        disks.push(json!({
            "id": format!("disk-{i}"), "source_format": "vmdk", "bytes": size,
            "local_path": format!("web01-{i}.vmdk"),
            "checksum": format!("sha256:{}", sha256_hex(&vmdk)),
            "boot_order_hint": i, "disk_type": if i == 0 { "boot" } else { "data" }
        }));
    }
    json!({
        "manifest_version": "1.0",
        "source": {"provider": "vsphere", "vm_id": "vm-42", "vm_name": "web01", "export_method": "ovftool"},
        "vm": {"cpu": 2, "mem_gb": 2, "firmware": "bios", "os_hint": "linux"},
        "disks": disks,
        "nics": [{"id": "nic-0", "mac": "00:50:56:ab:cd:ef", "network": "VM Network"}],
        "metadata": {"hypersdk_version": "0.9.0", "job_id": "vm-42"},
        "pipeline": {
            "inspect": {"enabled": true}, "fix": {"enabled": true, "fstab_mode": "stabilize-all"},
            "convert": {"enabled": true, "compress": true}, "validate": {"enabled": true, "check_image_integrity": true}
        },
        "options": {"report": {"enabled": true, "path": "report.json"}}
    })
}

fn write(dir: &Path, m: &Value) -> PathBuf {
    let p = dir.join("artifact-manifest.json");
    std::fs::write(&p, serde_json::to_vec_pretty(m).unwrap()).unwrap();
    p
}

/// Every file under `dir` with its size and modification time.
fn listing(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (e.path(), m.len(), m.modified().unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn vsphere_shaped_manifest_runs_every_stage() {
    let t = scratch();
    let mut m = export(t.path());
    // The KubeVirt target too: its YAML goes beside the domain.
    m["output"] = json!({"target": "kubevirt", "namespace": "migrated"});
    let m = write(t.path(), &m);
    let o = hyper2kvm().arg(&m).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = t.path().join("output");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let expected: Vec<String> =
        ["web01.qcow2", "web01-disk-1.qcow2", "web01.xml", "web01.kubevirt.yaml", "report.json"]
            .iter()
            .map(|f| format!("Output: {}", out.canonicalize().unwrap().join(f).display()))
            .collect();
    let got: Vec<String> = lines
        .iter()
        .map(|l| {
            let p = PathBuf::from(l.trim_start_matches("Output: "));
            format!("Output: {}", p.canonicalize().unwrap().display())
        })
        .collect();
    assert_eq!(got, expected, "{stdout}");
    // Both disks hold their source's data.
    for (i, f) in [(0, "web01.qcow2"), (1, "web01-disk-1.qcow2")] {
        sh(Command::new("qemu-img")
            .args(["compare", "-q", "-f", "vmdk", "-F", "qcow2"])
            .arg(t.path().join(format!("web01-{i}.vmdk")))
            .arg(out.join(f)));
    }
    // The domain: both disks in order, the NIC's MAC.
    let xml = std::fs::read_to_string(out.join("web01.xml")).unwrap();
    let a = xml.find("web01.qcow2").unwrap();
    let b = xml.find("web01-disk-1.qcow2").unwrap();
    assert!(a < b, "boot disk first:\n{xml}");
    assert!(xml.contains("<mac address=\"00:50:56:ab:cd:ef\"/>"), "{xml}");
    // The KubeVirt objects: valid against the published schemas and kubectl; both disks in
    // boot order, each with its DataVolume sized from the virtual size; the NIC's MAC.
    let yaml_path = out.join("web01.kubevirt.yaml");
    let checked = kubernetes_valid(&[&yaml_path]);
    assert!(checked.contains("3 object(s)"), "{checked}");
    let yaml = std::fs::read_to_string(&yaml_path).unwrap();
    for want in [
        "kind: VirtualMachine",
        "namespace: migrated",
        "macAddress: 00:50:56:ab:cd:ef",
        "name: web01-disk-0",
        "name: web01-disk-1",
        "hyper2kvm.io/disk-file: web01-disk-1.qcow2",
        "bios: {}",
        "storage: 24Mi",
        "storage: 16Mi",
    ] {
        assert!(yaml.contains(want), "{want} in\n{yaml}");
    }
    assert!(yaml.find("bootOrder: 1").unwrap() < yaml.find("bootOrder: 2").unwrap(), "{yaml}");
    // The report: every section.
    let r: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["version"], "1.0");
    assert_eq!(r["pipeline"]["success"], true);
    let stages: Vec<&str> = r["pipeline"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["load", "verify", "inspect", "fix", "convert", "validate", "output"],
        "every stage once, in the order they ran (the guest is fixed before the copy)"
    );
    // Inspection is a stage of its own, timed apart from the fixes (it starts an appliance).
    let stage = |name: &str| {
        r["pipeline"]["stages"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()
    };
    assert_eq!(stage("inspect")["status"], "success");
    let inspect_s = stage("inspect")["duration_seconds"].as_f64().unwrap();
    assert!(inspect_s > 1.0, "an appliance was started in the inspect stage: {inspect_s} s");
    assert!(stage("fix")["duration_seconds"].as_f64().unwrap() < inspect_s);
    // Both disks have checksums: they are verified in the conversion's own read of each
    // source (a mismatch is tested in every_class_of_bad_manifest_is_refused_with_its_path).
    let verify =
        r["pipeline"]["stages"].as_array().unwrap().iter().find(|s| s["name"] == "verify").unwrap();
    assert_eq!(verify["status"], "skipped");
    assert!(verify["details"]["reason"].as_str().unwrap().contains("convert stage's own read"));
    // The outputs' SHA-256s, computed after the fixes changed them.
    let arts = r["artifacts"].as_array().unwrap();
    assert_disk_sums(arts, 2);
    assert!(arts.iter().any(|a| a["kind"] == "domain"));
    assert!(r["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(r["input_manifest"].as_str().unwrap().ends_with("artifact-manifest.json"));
    assert!(r["summary"].as_str().unwrap().contains("2 disk(s)"), "{}", r["summary"]);
    assert!(r["errors"].as_array().unwrap().is_empty());
    // No OS on these disks: said, not failed.
    assert!(r["warnings"].to_string().contains("no operating system"), "{}", r["warnings"]);
}

#[test]
fn no_pipeline_runs_everything_and_disabled_stages_are_skipped() {
    let t = scratch();
    let mut m = export(t.path());
    m.as_object_mut().unwrap().remove("pipeline");
    m["disks"][0].as_object_mut().unwrap().remove("checksum");
    m["disks"][1].as_object_mut().unwrap().remove("checksum");
    m["pipeline"] = json!({"fix": {"enabled": false}, "inspect": {"enabled": false}});
    let p = write(t.path(), &m);
    let o = hyper2kvm().arg("run").arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: Value =
        serde_json::from_slice(&std::fs::read(t.path().join("output/report.json")).unwrap())
            .unwrap();
    let status = |name: &str| {
        let stages = r["pipeline"]["stages"].as_array().unwrap();
        stages.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("{name} in {stages:?}"))
            ["status"]
            .clone()
    };
    assert_eq!(status("fix"), "skipped");
    assert_eq!(status("verify"), "skipped", "no checksums");
    assert_eq!(status("convert"), "success");
    assert_eq!(status("validate"), "success");
    // No fixes: each output is hashed as soon as it is converted; the sums are the files'.
    assert_disk_sums(r["artifacts"].as_array().unwrap(), 2);
}

/// Every disk artifact's SHA-256 is its file's (`n` disks).
fn assert_disk_sums(arts: &[Value], n: usize) {
    let disks: Vec<&Value> = arts.iter().filter(|a| a["kind"] == "disk").collect();
    assert_eq!(disks.len(), n, "{arts:?}");
    for d in disks {
        let path = Path::new(d["path"].as_str().unwrap());
        assert_eq!(d["sha256"], sha256_hex(path), "{}", path.display());
    }
}

#[test]
fn dry_run_leaves_the_output_directory_untouched() {
    let t = scratch();
    let mut m = export(t.path());
    m["output"] = json!({"directory": "out"});
    let p = write(t.path(), &m);
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "x").unwrap();
    let before = listing(&out);
    let o = hyper2kvm().arg(&p).arg("--dry-run").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("Would write: ") && stdout.contains("web01.qcow2"), "{stdout}");
    assert_eq!(listing(&out), before);
}

/// The paths after `prefix` on stdout's lines, as written (absolute).
fn paths_after(stdout: &[u8], prefix: &str) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(prefix).map(str::to_string))
        .collect()
}

#[test]
fn dry_run_names_exactly_the_files_the_run_writes_uefi_variables_included() {
    for firmware in ["efi", "bios"] {
        let t = scratch();
        let mut m = export(t.path());
        m["vm"]["firmware"] = json!(firmware);
        m["pipeline"]["inspect"]["enabled"] = json!(false);
        m["pipeline"]["fix"]["enabled"] = json!(false);
        let p = write(t.path(), &m);
        let dry = hyper2kvm().arg(&p).arg("--dry-run").output().unwrap();
        assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
        let planned = paths_after(&dry.stdout, "Would write: ");
        let names: Vec<&str> = planned.iter().map(|p| p.rsplit('/').next().unwrap()).collect();
        let mut want = vec!["web01.qcow2", "web01-disk-1.qcow2", "web01.xml"];
        if firmware == "efi" {
            want.push("web01_VARS.fd");
        }
        want.push("report.json");
        assert_eq!(names, want, "{firmware}");
        assert!(!t.path().join("output").exists(), "a dry run writes nothing");
        let run = hyper2kvm().arg(&p).output().unwrap();
        assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
        assert_eq!(
            paths_after(&run.stdout, "Output: "),
            planned,
            "{firmware}: the plan is the run"
        );
    }
}

#[test]
fn every_class_of_bad_manifest_is_refused_with_its_path() {
    let t = scratch();
    let good = export(t.path());
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    let mut v = good.clone();
    v.as_object_mut().unwrap().remove("manifest_version");
    cases.push(("missing version", v, "manifest_version: is required"));
    let mut v = good.clone();
    v["manifest_version"] = json!("2.0");
    cases.push(("wrong version", v, "manifest_version: must be \"1.0\""));
    let mut v = good.clone();
    v["disks"] = json!([]);
    cases.push(("no disks", v, "disks: must list at least one disk"));
    let mut v = good.clone();
    v["disks"][1]["id"] = json!("disk-0");
    cases.push(("duplicate ids", v, "disks[1].id: \"disk-0\" is used by another disk"));
    let mut v = good.clone();
    v["disks"][0]["id"] = json!("disk 0!");
    cases.push(("bad id", v, "disks[0].id:"));
    let mut v = good.clone();
    v["disks"][0]["source_format"] = json!("iso");
    cases.push(("unknown format", v, "disks[0].source_format:"));
    let mut v = good.clone();
    v["disks"][1]["local_path"] = json!("missing.vmdk");
    cases.push(("missing local_path", v, "disks[1].local_path:"));
    let mut v = good.clone();
    v["disks"][0]["checksum"] = json!("sha256:XYZ");
    cases.push(("malformed checksum", v, "disks[0].checksum: not of the form"));
    let mut v = good.clone();
    v["vm"]["cpu"] = json!(0);
    cases.push(("cpu 0", v, "vm.cpu:"));
    let mut v = good.clone();
    v["nics"][0]["mac"] = json!("00:50:56:ab:cd");
    cases.push(("bad MAC", v, "nics[0].mac:"));
    let mut v = good.clone();
    v["pipeline"]["convert"]["compress_level"] = json!(12);
    cases.push(("compress_level 12", v, "pipeline.convert.compress_level: 12 is out of range"));
    let mut v = good.clone();
    v["disks"][1]["checksum"] = json!(format!("sha256:{}", "0".repeat(64)));
    cases.push(("checksum mismatch", v, "disks[1] (disk-1, "));
    for (what, doc, needle) in cases {
        let p = write(t.path(), &doc);
        let o = hyper2kvm().arg(&p).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains("artifact-manifest.json"), "{what}: names the file: {err}");
        assert!(err.contains(needle), "{what}: wanted {needle:?} in {err}");
        assert!(!t.path().join("output/web01.qcow2").exists(), "{what}: no output");
    }
    // Documents that are not manifests at all.
    let p = t.path().join("artifact-manifest.json");
    for (what, bytes, needle) in [
        ("truncated", br#"{"manifest_version": "1.0", "disks": [{"#.to_vec(), "not valid JSON"),
        ("array", b"[1, 2, 3]".to_vec(), "(document): must be an object"),
    ] {
        std::fs::write(&p, bytes).unwrap();
        let o = hyper2kvm().arg(&p).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{what}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{what}: {}", stderr(&o));
    }
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(100 << 20).unwrap();
    let o = hyper2kvm().arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("more than the"), "{}", stderr(&o));
    assert!(!t.path().join("output").exists(), "nothing written for any bad manifest");
}

/// The spans of a `--log-format=json` line, by name: `job`, `stage`, `disk`.
fn span<'a>(line: &'a Value, name: &str) -> Option<&'a Value> {
    line["spans"].as_array()?.iter().find(|s| s["name"] == name)
}

#[test]
fn json_log_lines_carry_the_job_and_stage_spans() {
    let t = scratch();
    let mut m = export(t.path());
    m["pipeline"]["inspect"]["enabled"] = json!(false);
    m["pipeline"]["fix"]["enabled"] = json!(false);
    let p = write(t.path(), &m);
    // -vv: the engine's own debug lines (qemu-img's command line) come too.
    let o = hyper2kvm().arg(&p).args(["--log-format=json", "-vv"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("Output: "), "stdout is unchanged");
    let lines: Vec<Value> = stderr(&o)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object: {l}: {e}"))
        })
        .collect();
    assert!(lines.len() > 10, "{lines:?}");
    // Every stage event is inside the job's span, with the job's id and VM name, and inside
    // its stage's span.
    let events: Vec<&Value> = lines.iter().filter(|l| l["fields"]["event"].is_string()).collect();
    let started: Vec<&str> = events
        .iter()
        .filter(|l| l["fields"]["event"] == "started")
        .map(|l| l["fields"]["stage"].as_str().unwrap())
        .collect();
    assert_eq!(started, ["load", "verify", "inspect", "fix", "convert", "validate", "output"]);
    for e in &events {
        let job = span(e, "job").unwrap_or_else(|| panic!("no job span: {e}"));
        assert_eq!(job["job_id"], "artifact-manifest.json", "{e}");
        assert_eq!(job["vm_name"], "web01", "{e}");
        assert_eq!(span(e, "stage").unwrap()["stage"], e["fields"]["stage"], "{e}");
    }
    let finished = events
        .iter()
        .find(|l| l["fields"]["event"] == "finished" && l["fields"]["stage"] == "convert")
        .unwrap();
    assert_eq!(finished["fields"]["status"], "Success");
    assert!(finished["fields"]["seconds"].as_f64().unwrap() > 0.0);
    // qemu-img's exact command line, at debug, inside job, stage and the disk's span.
    let cmd = lines
        .iter()
        .find(|l| {
            l["level"] == "DEBUG"
                && l["fields"]["message"].as_str().unwrap_or("").contains("qemu-img convert")
        })
        .unwrap_or_else(|| panic!("no qemu-img command line in {lines:?}"));
    assert_eq!(span(cmd, "stage").unwrap()["stage"], "convert", "{cmd}");
    assert!(span(cmd, "disk").unwrap()["disk"].as_str().unwrap().starts_with("web01"), "{cmd}");
    assert_eq!(span(cmd, "job").unwrap()["vm_name"], "web01");
}
