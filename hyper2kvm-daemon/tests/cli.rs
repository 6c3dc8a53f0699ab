//! The `hyper2kvm` command on good input: `probe` and `convert` in human and JSON form.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::process::Command;

use support::*;

fn hyper2kvm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hyper2kvm"))
}

#[test]
fn convert_prints_output_lines_and_progress() {
    let t = scratch();
    let raw = t.path().join("src.raw");
    raw_with_data(&raw, 32 << 20);
    let vmdk = t.path().join("web.vmdk");
    qemu_from_raw(&raw, &vmdk, "vmdk", Some("subformat=streamOptimized"));
    let out = t.path().join("out");
    let o = hyper2kvm()
        .arg("convert")
        .arg(&vmdk)
        .arg("-o")
        .arg(&out)
        .args(["--compress=2", "--no-fix"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let expected = out.join("web.qcow2");
    let xml = out.canonicalize().unwrap().join("web.xml");
    assert_eq!(
        stdout.trim(),
        format!("Output: {}\nOutput: {}", expected.display(), xml.display()),
        "one line per artifact: the disk, then its libvirt domain"
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("progress: convert web.qcow2 100%"), "{stderr}");
    let info = sh(Command::new("qemu-img").args(["info", "--output=json"]).arg(&expected));
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["format-specific"]["data"]["compression-type"], "zstd");
    sh(Command::new("qemu-img")
        .args(["compare", "-q", "-f", "raw", "-F", "qcow2"])
        .arg(&raw)
        .arg(&expected));

    // A second run refuses to replace the output unless asked.
    let again =
        hyper2kvm().arg("convert").arg(&vmdk).arg("-o").arg(&out).arg("--no-fix").output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let forced = hyper2kvm()
        .arg("convert")
        .arg(&vmdk)
        .arg("-o")
        .arg(&out)
        .args(["--overwrite", "--format", "raw", "--no-fix"])
        .output()
        .unwrap();
    assert_eq!(forced.status.code(), Some(0));
}

#[test]
fn convert_json_is_one_document() {
    let t = scratch();
    let vhd = t.path().join("d.vhd");
    qemu_create(&vhd, "vpc", Some("subformat=dynamic"), "16M");
    let out = t.path().join("out");
    let o = hyper2kvm()
        .arg("convert")
        .arg(&vhd)
        .arg("-o")
        .arg(&out)
        .args(["--json", "--format", "raw", "--no-fix"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["success"], true);
    assert_eq!(v["report"]["input"]["format"], "vhd");
    let outputs = v["report"]["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0]["format"], "raw");
    assert!(std::path::Path::new(outputs[0]["path"].as_str().unwrap()).is_file());
    assert!(v["peak_rss_bytes"]["self"].as_u64().unwrap() > 0);
}

#[test]
fn probe_json_lists_every_input() {
    let t = scratch();
    let a = t.path().join("a.vdi");
    qemu_create(&a, "vdi", None, "8M");
    let missing = t.path().join("missing.img");
    let o = hyper2kvm().args(["probe", "--json"]).arg(&a).arg(&missing).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "one bad input makes the run fail");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["inputs"][0]["result"]["format"], "vdi");
    assert_eq!(v["inputs"][0]["result"]["virtual_size"], 8 << 20);
    assert_eq!(v["inputs"][1]["error"]["kind"], "not_found");
    let human = hyper2kvm().arg("probe").arg(&a).output().unwrap();
    assert!(String::from_utf8_lossy(&human.stdout).contains("vdi (dynamic), virtual size 8.0 MiB"));
}

/// `--define` through the `virt` crate on libvirt's `test:///default` driver, chosen with the
/// contract's environment keys (`LIBVIRT_INTEGRATION`, `LIBVIRT_URI`, `LIBVIRT_AUTOSTART`,
/// `LIBVIRT_BRIDGE`).
#[test]
fn convert_defines_the_domain_in_libvirt() {
    let t = scratch();
    let raw = t.path().join("src.raw");
    raw_with_data(&raw, 8 << 20);
    let out = t.path().join("out");
    let o = hyper2kvm()
        .arg("convert")
        .arg(&raw)
        .arg("-o")
        .arg(&out)
        .args(["--no-fix", "--json"])
        .env("LIBVIRT_INTEGRATION", "true")
        .env("LIBVIRT_URI", "test:///default")
        .env("LIBVIRT_AUTOSTART", "true")
        .env("LIBVIRT_BRIDGE", "br-test")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let d = &v["defined"];
    assert_eq!(d["uri"], "test:///default");
    assert_eq!(d["name"], "src");
    assert_eq!(d["autostart"], true);
    assert_eq!(d["uuid"], v["report"]["domain"]["domain"]["uuid"]);
    let xml = d["xml"].as_str().unwrap();
    assert!(xml.contains("<source bridge='br-test'/>"), "{xml}");
    assert!(
        xml.contains(&format!("{}", out.canonicalize().unwrap().join("src.qcow2").display())),
        "{xml}"
    );
    // Without the environment nothing is defined.
    let out2 = t.path().join("out2");
    let o = hyper2kvm()
        .arg("convert")
        .arg(&raw)
        .arg("-o")
        .arg(&out2)
        .args(["--no-fix", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["defined"].is_null(), "{v}");
}

/// Every file under `dir` with its size, to show a dry run wrote nothing.
fn tree(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        if m.is_dir() {
            out.extend(tree(&e.path()));
        } else {
            out.push((e.path(), m.len()));
        }
    }
    out.sort();
    out
}

#[test]
fn dry_run_of_a_compressed_ova_plans_it_and_writes_nothing() {
    let t = scratch();
    let (d1, d2) = (t.path().join("web01-disk1.vmdk"), t.path().join("web01-disk2.vmdk"));
    vmware_stream_optimized(&d1, &t.path().join("r1.raw"), 64 << 20);
    vmware_stream_optimized(&d2, &t.path().join("r2.raw"), 32 << 20);
    let ova = t.path().join("web01.ova");
    build_ova(&ova, "web01", &[(&d1, 64 << 20), (&d2, 32 << 20)], &["00:50:56:ab:cd:ef"]);
    sh(Command::new("gzip").arg(&ova));
    let packed = t.path().join("web01.ova.gz");
    let out = t.path().join("out");
    let before = tree(t.path());
    for fixes in [false, true] {
        let mut cmd = hyper2kvm();
        cmd.arg("convert").arg(&packed).arg("-o").arg(&out).args(["--dry-run", "--json"]);
        if !fixes {
            cmd.arg("--no-fix");
        }
        let o = cmd.output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["dry_run"], true);
        let plan = &v["plan"];
        assert_eq!(plan["input"]["container"], "ova_gzip");
        assert_eq!(plan["input"]["ovf"]["name"], "web01");
        assert_eq!(plan["input"]["disks"].as_array().unwrap().len(), 2);
        let notes: Vec<&str> =
            plan["plan_notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
        assert_eq!(notes.len(), if fixes { 3 } else { 2 }, "{notes:?}");
        assert!(notes[0].contains("vmdisk1") && notes[0].contains("unpacked"), "{notes:?}");
        assert!(notes[1].contains("vmdisk2"), "{notes:?}");
        if fixes {
            assert!(notes[2].contains("cannot be inspected before it is unpacked"), "{notes:?}");
        }
        assert!(!out.exists(), "a dry run creates no output directory");
        assert_eq!(tree(t.path()), before, "a dry run writes nothing");
    }
}

#[test]
fn network_flags_decide_the_nics_of_a_source_without_any() {
    let t = scratch();
    let d1 = t.path().join("web01-disk1.vmdk");
    vmware_stream_optimized(&d1, &t.path().join("r1.raw"), 32 << 20);
    let ova = t.path().join("web01.ova");
    build_ova(&ova, "web01", &[(&d1, 32 << 20)], &[]);
    let run = |out: &str, extra: &[&str]| {
        let o = hyper2kvm()
            .arg("convert")
            .arg(&ova)
            .arg("-o")
            .arg(t.path().join(out))
            .arg("--no-fix")
            .args(extra)
            .output()
            .unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let xml = |out: &str| std::fs::read_to_string(t.path().join(out).join("web01.xml")).unwrap();
    assert_eq!(run("none", &[]).0, Some(0));
    assert!(!xml("none").contains("<interface"), "{}", xml("none"));
    assert_eq!(run("net", &["--network", "lab"]).0, Some(0));
    assert_eq!(xml("net").matches("<source network=\"lab\"/>").count(), 1, "{}", xml("net"));
    assert_eq!(run("br", &["--bridge", "br0"]).0, Some(0));
    assert_eq!(xml("br").matches("<source bridge=\"br0\"/>").count(), 1, "{}", xml("br"));
    let (code, err) = run("bad", &["--network-map", "VM Network"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--network-map \"VM Network\"") && err.contains("SRC=DST"), "{err}");
    assert!(!t.path().join("bad").exists(), "a bad flag writes nothing");
}
