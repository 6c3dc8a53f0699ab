//! Workflow manifests (contract §3b): the second schema HyperSDK's `hyperctl manifest …`, its
//! dashboard and REST API write into the workflow directories, mapped onto [`crate::convert`].
//!
//! ```json
//! {"version": "1.0",
//!  "pipeline": {"load": {"source_type": "vmdk", "source_path": "/exports/web01.vmdk"},
//!               "inspect": {"enabled": true, "detect_os": true},
//!               "fix": {"fstab": {"enabled": true, "mode": "stabilize-all"}, "grub": true,
//!                       "initramfs": {"enabled": true, "regenerate": true},
//!                       "network": {"enabled": true, "fix_level": "full"}},
//!               "convert": {"output_format": "qcow2", "compress": true,
//!                           "output_path": "/var/lib/hyper2kvm/output/web01.qcow2"},
//!               "validate": {"enabled": true, "boot_test": false}}}
//! ```
//! or a batch, `{"version": "1.0", "batch": {"vms": [{"name": …, "pipeline": {…}}]}}` (`vms`
//! beside `batch` is read too). Keys may come in any order (the REST API round-trips them
//! through a map). Every problem is reported at once with its JSON path.
//!
//! Mapping: a `source_type` naming a local file kind (`vmdk`, `ova`, `ovf`, `vhd`, `vhdx`,
//! `raw`, `img`, `qcow2`, `vdi`, `vmx`) converts `source_path`; any other (`vcenter`, `ami`, …)
//! names something hyper2kvm cannot fetch and fails the job. `output_path` ending in `.qcow2`,
//! `.raw` or `.img` is the boot disk's file (its directory gets the other files); any other
//! path is a directory, the outputs named after the VM; without it, `default_out/NAME`.
//! `fix` is on unless every part of it is off; `fstab.mode` is the Artifact Manifest's
//! `fstab_mode`; `grub` (a boolean or `{enabled}`) is `update_grub`; `initramfs.regenerate`
//! asks for a full rebuild; `network.fix_level` is accepted and ignored (the network fixes
//! always run with the fixes). `validate.enabled` runs `qemu-img check`, `boot_test` the boot
//! test.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::convert::{ConvertOptions, TargetFormat};
use crate::fix::{FixOptions, FstabMode, InitramfsMethod};
use crate::validate::BootTestOptions;

/// Source kinds read from a local path.
const LOCAL_SOURCES: &[&str] =
    &["vmdk", "ova", "ovf", "vhd", "vhdx", "raw", "img", "qcow2", "vdi", "vmx"];

/// One VM of a workflow manifest, ready to convert.
#[derive(Debug, Clone)]
pub struct WorkflowVm {
    /// The VM's name (a batch entry's `name`, else the source's file stem).
    pub name: String,
    /// What to convert.
    pub source: PathBuf,
    /// Where the outputs go.
    pub output_dir: PathBuf,
    /// How.
    pub options: ConvertOptions,
}

/// Reads a workflow manifest document; `Err` lists every problem, each with its JSON path.
pub fn parse(doc: &Value, default_out: &Path) -> Result<Vec<WorkflowVm>, Vec<String>> {
    let mut problems = Vec::new();
    if !doc.is_object() {
        return Err(vec!["(document): must be an object".into()]);
    }
    match doc.get("version") {
        None => problems.push("version: is required".into()),
        Some(Value::String(v)) if v == "1.0" => {}
        Some(v) => problems.push(format!("version: {v} is not \"1.0\"")),
    }
    let vms: Vec<(String, Option<String>, &Value)> = if let Some(b) = doc.get("batch") {
        let list = b.get("vms").or_else(|| doc.get("vms"));
        match list.and_then(Value::as_array) {
            Some(l) if !l.is_empty() => l
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let name = v.get("name").and_then(Value::as_str).map(String::from);
                    (format!("batch.vms[{i}]"), name, v.get("pipeline").unwrap_or(&Value::Null))
                })
                .collect(),
            _ => {
                problems.push("batch.vms: a batch needs a non-empty array of VMs".into());
                Vec::new()
            }
        }
    } else {
        vec![(String::new(), None, doc.get("pipeline").unwrap_or(&Value::Null))]
    };
    let mut out = Vec::new();
    for (at, name, pipeline) in vms {
        let path = |k: &str| if at.is_empty() { k.to_string() } else { format!("{at}.{k}") };
        if at.starts_with("batch") && name.is_none() {
            problems.push(format!("{}: is required", path("name")));
        }
        match vm(pipeline, name, default_out, &path) {
            Ok(v) => out.push(v),
            Err(p) => problems.extend(p),
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

fn boolean(v: Option<&Value>, default: bool) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Object(o)) => o.get("enabled").and_then(Value::as_bool).unwrap_or(default),
        _ => default,
    }
}

fn vm(
    p: &Value,
    name: Option<String>,
    default_out: &Path,
    path: &dyn Fn(&str) -> String,
) -> Result<WorkflowVm, Vec<String>> {
    let mut problems = Vec::new();
    if !p.is_object() {
        return Err(vec![format!("{}: must be an object", path("pipeline"))]);
    }
    let get = |ptr: &str| p.pointer(ptr);
    let str_at = |ptr: &str| get(ptr).and_then(Value::as_str);
    let source_type = str_at("/load/source_type").unwrap_or("");
    let source_path = str_at("/load/source_path").unwrap_or("");
    if source_type.is_empty() {
        problems.push(format!("{}: is required", path("pipeline.load.source_type")));
    } else if !LOCAL_SOURCES.contains(&source_type.to_ascii_lowercase().as_str()) {
        problems.push(format!(
            "{}: {source_type:?} is not a local file (hyper2kvm converts {}; fetching from {source_type} is the exporter's part: export the VM first)",
            path("pipeline.load.source_type"),
            LOCAL_SOURCES.join(", ")
        ));
    }
    if source_path.is_empty() {
        problems.push(format!("{}: is required", path("pipeline.load.source_path")));
    } else if !Path::new(source_path).exists() {
        problems
            .push(format!("{}: {source_path} does not exist", path("pipeline.load.source_path")));
    }
    let format = match str_at("/convert/output_format").unwrap_or("qcow2") {
        "qcow2" => TargetFormat::Qcow2,
        "raw" => TargetFormat::Raw,
        other => {
            problems.push(format!(
                "{}: {other:?} is not qcow2 or raw",
                path("pipeline.convert.output_format")
            ));
            TargetFormat::Qcow2
        }
    };
    let fstab_mode = match str_at("/fix/fstab/mode").unwrap_or("stabilize-all") {
        "stabilize-all" => FstabMode::StabilizeAll,
        "bypath-only" => FstabMode::BypathOnly,
        "noop" => FstabMode::Noop,
        other => {
            problems.push(format!(
                "{}: {other:?} is not stabilize-all, bypath-only or noop",
                path("pipeline.fix.fstab.mode")
            ));
            FstabMode::StabilizeAll
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let source = PathBuf::from(source_path);
    let stem = source.file_stem().map(|s| s.to_string_lossy().into_owned());
    let mut name = name.or(stem).unwrap_or_else(|| "vm".into());
    let output_dir = match str_at("/convert/output_path").filter(|s| !s.is_empty()) {
        Some(o) => {
            let o = PathBuf::from(o);
            let file = o
                .extension()
                .is_some_and(|e| ["qcow2", "raw", "img"].contains(&e.to_string_lossy().as_ref()));
            if file {
                if let Some(s) = o.file_stem() {
                    name = s.to_string_lossy().into_owned();
                }
                o.parent().map(Path::to_path_buf).unwrap_or_default()
            } else {
                o
            }
        }
        None => default_out.join(crate::io::safe_file_stem(&name)),
    };
    let fix_on = [
        boolean(get("/fix/fstab"), true),
        boolean(get("/fix/grub"), true),
        boolean(get("/fix/initramfs"), true),
        boolean(get("/fix/network"), true),
    ];
    let fix_enabled = get("/fix").and_then(|f| f.get("enabled")).and_then(Value::as_bool);
    let fix = (fix_enabled.unwrap_or(true) && fix_on.iter().any(|b| *b)).then(|| FixOptions {
        fstab_mode: if fix_on[0] { fstab_mode } else { FstabMode::Noop },
        update_grub: fix_on[1],
        regen_initramfs: fix_on[2],
        initramfs: if get("/fix/initramfs/regenerate").and_then(Value::as_bool) == Some(true) {
            InitramfsMethod::Rebuild
        } else {
            InitramfsMethod::Auto
        },
        ..FixOptions::default()
    });
    let validate = boolean(get("/validate"), true);
    let options = ConvertOptions {
        format,
        compress: (format == TargetFormat::Qcow2
            && get("/convert/compress").and_then(Value::as_bool) == Some(true))
        .then_some(6),
        overwrite: true,
        name: Some(crate::io::safe_file_stem(&name)),
        fix,
        check: validate,
        boot_test: (validate && get("/validate/boot_test").and_then(Value::as_bool) == Some(true))
            .then(BootTestOptions::default),
        ..ConvertOptions::default()
    };
    Ok(WorkflowVm { name, source, output_dir, options })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn single_and_batch_documents_map_onto_convert() {
        let t = tempfile::tempdir().unwrap();
        let disk = t.path().join("web01.vmdk");
        std::fs::write(&disk, b"x").unwrap();
        // Keys in the order a map round-trip leaves them (sorted).
        let doc = json!({"pipeline": {
            "convert": {"compress": true, "output_format": "qcow2", "output_path": "/out/w.qcow2"},
            "fix": {"fstab": {"enabled": true, "mode": "bypath-only"}, "grub": false,
                    "initramfs": {"enabled": true, "regenerate": true}, "network": {"enabled": true, "fix_level": "full"}},
            "load": {"source_path": disk, "source_type": "vmdk"},
            "validate": {"boot_test": false, "enabled": true}}, "version": "1.0"});
        let vms = parse(&doc, Path::new("/default")).unwrap();
        assert_eq!(vms.len(), 1);
        let v = &vms[0];
        assert_eq!((v.name.as_str(), v.output_dir.as_path()), ("w", Path::new("/out")));
        let fix = v.options.fix.as_ref().unwrap();
        assert_eq!(fix.fstab_mode, FstabMode::BypathOnly);
        assert!(!fix.update_grub && fix.regen_initramfs);
        assert_eq!(fix.initramfs, InitramfsMethod::Rebuild);
        assert_eq!(v.options.compress, Some(6));
        let doc = json!({"version": "1.0", "batch": {"vms": [
            {"name": "a", "pipeline": {"load": {"source_type": "raw", "source_path": disk}, "fix": {"enabled": false}}},
            {"name": "b", "pipeline": {"load": {"source_type": "vcenter", "source_path": "/DC1/vm/b"}}}]}});
        let e = parse(&doc, Path::new("/default")).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with(
                "batch.vms[1].pipeline.load.source_type: \"vcenter\" is not a local file"
            ),
            "{e:?}"
        );
        assert!(e[1].contains("/DC1/vm/b does not exist"), "{e:?}");
        let doc = json!({"version": "1.0", "batch": {"vms": [
            {"name": "a", "pipeline": {"load": {"source_type": "raw", "source_path": disk}, "fix": {"enabled": false}}}]}});
        let vms = parse(&doc, Path::new("/default")).unwrap();
        assert_eq!(vms[0].output_dir, Path::new("/default/a"));
        assert!(vms[0].options.fix.is_none());
        assert!(parse(&json!({"version": "2.0", "pipeline": {}}), Path::new("/d")).is_err());
        assert!(parse(&json!([1]), Path::new("/d")).is_err());
    }
}
