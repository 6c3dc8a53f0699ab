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
