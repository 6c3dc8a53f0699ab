//! Batch manifests: one file that runs several VM manifests.
//!
//! ```json
//! { "batch_version": "1.0",
//!   "batch_metadata": {"batch_id": "wave-3", "parallel_limit": 2, "continue_on_error": true},
//!   "shared_config": {"output_directory": "/srv/kvm"},
//!   "vms": [{"manifest": "web01/manifest.json", "id": "web01", "priority": 10,
//!            "overrides": {"pipeline": {"validate": {"enabled": false}}}, "enabled": true}] }
//! ```
//!
//! The choices where the issue is silent (also in the README):
//! - `vms[].manifest` is relative to the batch file; `id` defaults to that path without its
//!   extension, with `/` made `-` (`web01/manifest.json` → `web01-manifest`), and must be
//!   unique; `priority` (default 0): higher runs first, ties in list order;
//!   `enabled: false` VMs are listed in the batch report as skipped and their manifests are not
//!   read (an operator disables a VM whose export is broken).
//! - `overrides` is a JSON Merge Patch (RFC 7386) applied to the VM's manifest before it is
//!   checked: objects merge, anything else replaces, `null` removes. Relative paths in the
//!   merged manifest are still relative to the VM manifest's directory.
//! - Each VM writes into its own directory, so the default `report.json` of two VMs cannot
//!   collide: `overrides.output.directory` when given, else `shared_config.output_directory/ID`,
//!   else the VM manifest's own `output.directory`, else `<batch dir>/output/ID`. Two enabled
//!   VMs with the same output directory are a violation.
//! - Every violation of the batch and of every enabled VM's manifest is reported at once, VM
//!   problems prefixed with `vms[N] (FILE):`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::check::{Findings, is_disk_id, join};
use super::{LoadedManifest, parent_dir, problems_error, read_document};
use crate::error::Result;
use crate::io::lexical;

/// A batch manifest that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The file.
    pub path: PathBuf,
    /// `batch_metadata.batch_id`, else the file stem.
    pub batch_id: String,
    /// VMs run at once (`batch_metadata.parallel_limit`, default 4).
    pub parallel_limit: usize,
    /// Keep starting VMs after one failed (`batch_metadata.continue_on_error`, default true).
    pub continue_on_error: bool,
    /// Where the batch report goes: `shared_config.output_directory`, else `<dir>/output`.
    pub output_dir: PathBuf,
    /// The VMs in file order.
    pub vms: Vec<BatchVm>,
    /// Unknown fields of the batch and of every VM manifest.
    pub warnings: Vec<String>,
}

/// One entry of `vms[]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchVm {
    /// Its index in `vms[]`.
    pub index: usize,
    /// `id`, else made from the manifest's path (`web01/manifest.json` → `web01-manifest`).
    pub id: String,
    /// The VM manifest file.
    pub manifest_path: PathBuf,
    /// Higher runs first.
    pub priority: i64,
    /// `false`: not run, its manifest not read.
    pub enabled: bool,
    /// Where this VM's outputs go.
    pub output_dir: PathBuf,
    /// The checked manifest with the overrides applied (`None` when disabled).
    pub manifest: Option<LoadedManifest>,
}

/// Whether a parsed document is a batch manifest.
pub(crate) fn is_batch(doc: &Value) -> bool {
    doc.get("batch_version").is_some()
}

/// Applies an RFC 7386 JSON Merge Patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// A VM's id when the batch gives none: its manifest path as written, without the extension,
/// `/` and anything but `[A-Za-z0-9_-]` made `-` (`web01/manifest.json` → `web01-manifest`),
/// so two entries have the same default only when they name the same file.
fn default_id(manifest: &str) -> String {
    let p = Path::new(manifest);
    let no_ext = match (p.parent(), p.file_stem()) {
        (Some(dir), Some(stem)) => dir.join(stem),
        _ => p.to_path_buf(),
    };
    let s: String = no_ext
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' })
        .collect();
    s.trim_matches('-').to_string()
}

const TOP: [&str; 4] = ["batch_version", "batch_metadata", "shared_config", "vms"];
const VM_KEYS: [&str; 5] = ["manifest", "id", "priority", "overrides", "enabled"];

/// A `vms[]` entry as written, after its shape was checked.
struct Entry {
    index: usize,
    file: PathBuf,
    id: String,
    priority: i64,
    enabled: bool,
    overrides: Option<Value>,
}

fn check_entries(f: &mut Findings, top: &Map<String, Value>, dir: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let Some(list) = f.array(top, "", "vms", true) else { return out };
    if list.is_empty() {
        f.bad("vms", "must list at least one VM");
    }
    let mut ids: Vec<String> = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let path = format!("vms[{i}]");
        let Some(m) = f.object(v, &path, &VM_KEYS) else { continue };
        let file = match f.string(m, &path, "manifest", true) {
            Some("") => {
                f.bad(&join(&path, "manifest"), "is empty");
                None
            }
            other => other.map(|s| dir.join(s)),
        };
        let id = match f.string(m, &path, "id", false) {
            Some(id) if !is_disk_id(id) => {
                f.bad(&join(&path, "id"), format!("{id:?} may only hold A-Z, a-z, 0-9, _ and -"));
                None
            }
            Some(id) => Some(id.to_string()),
            None => m.get("manifest").and_then(Value::as_str).map(default_id),
        };
        let id = match id {
            Some(id) if ids.contains(&id) => {
                f.bad(&path, format!("id {id:?} is used by another VM"));
                None
            }
            Some(id) => {
                ids.push(id.clone());
                Some(id)
            }
            None => None,
        };
        let priority = f.int(m, &path, "priority", (i64::MIN, i64::MAX), false).unwrap_or(0);
        f.boolean(m, &path, "enabled");
        let enabled = m.get("enabled").and_then(Value::as_bool).unwrap_or(true);
        let overrides = match m.get("overrides") {
            None | Some(Value::Null) => None,
            Some(o @ Value::Object(_)) => Some(o.clone()),
            Some(_) => {
                f.bad(&join(&path, "overrides"), "must be an object (a JSON merge patch)");
                None
            }
        };
        if let (Some(file), Some(id)) = (file, id) {
            out.push(Entry { index: i, file, id, priority, enabled, overrides });
        }
    }
    out
}

/// Reads one enabled VM's manifest with its overrides; problems are prefixed with the entry.
fn load_vm(e: &Entry, f: &mut Findings) -> Option<LoadedManifest> {
    let at = format!("vms[{}] ({})", e.index, e.file.display());
    let mut doc = match read_document(&e.file) {
        Ok(d) => d,
        Err(err) => {
            f.bad(&format!("vms[{}].manifest", e.index), err);
            return None;
        }
    };
    if is_batch(&doc) {
        f.bad(&at, "is a batch manifest; batches do not nest");
        return None;
    }
    if let Some(o) = &e.overrides {
        merge_patch(&mut doc, o);
    }
    match LoadedManifest::from_document(&e.file, doc) {
        Ok(mut m) => {
            for w in &mut m.warnings {
                *w = format!("{at}: {w}");
            }
            Some(m)
        }
        Err(problems) => {
            for p in problems {
                f.problems.push(format!("{at}: {p}"));
            }
            None
        }
    }
}

impl Batch {
    /// Reads and checks a batch manifest and every enabled VM manifest it names. Every
    /// violation is in the one error.
    pub fn load(path: &Path) -> Result<Batch> {
        let doc = read_document(path)?;
        Self::from_document(path, &doc).map_err(|p| problems_error(path, "batch manifest", &p))
    }

    pub(crate) fn from_document(
        path: &Path,
        doc: &Value,
    ) -> std::result::Result<Batch, Vec<String>> {
        let dir = parent_dir(path);
        let mut f = Findings::default();
        let Some(top) = f.object(doc, "", &TOP) else { return Err(f.problems) };
        match top.get("batch_version") {
            Some(Value::String(v)) if v == "1.0" => {}
            None => f.bad("batch_version", "is required"),
            Some(v) => f.bad("batch_version", format!("must be \"1.0\", not {v}")),
        }
        let meta_keys = ["batch_id", "parallel_limit", "continue_on_error"];
        let mut batch_id = None;
        let mut parallel_limit = 4;
        let mut continue_on_error = true;
        if let Some(m) = f.section(top, "batch_metadata", &meta_keys) {
            batch_id = f.string(m, "batch_metadata", "batch_id", false).map(str::to_string);
            if let Some(n) = f.int(m, "batch_metadata", "parallel_limit", (1, 64), false) {
                parallel_limit = n as usize;
            }
            f.boolean(m, "batch_metadata", "continue_on_error");
            continue_on_error = m.get("continue_on_error").and_then(Value::as_bool).unwrap_or(true);
        }
        let mut shared_out = None;
        if let Some(s) = f.section(top, "shared_config", &["output_directory"]) {
            match f.string(s, "shared_config", "output_directory", false) {
                Some("") => f.bad("shared_config.output_directory", "is empty"),
                Some(d) => shared_out = Some(dir.join(d)),
                None => {}
            }
        }
        let entries = check_entries(&mut f, top, &dir);
        let mut vms = Vec::new();
        for e in &entries {
            let manifest = if e.enabled { load_vm(e, &mut f) } else { None };
            let override_dir = e
                .overrides
                .as_ref()
                .and_then(|o| o.pointer("/output/directory"))
                .and_then(Value::as_str);
            let output_dir = match (override_dir, &shared_out, &manifest) {
                (Some(d), _, _) => parent_dir(&e.file).join(d),
                (None, Some(s), _) => s.join(&e.id),
                (None, None, Some(m)) if m.manifest.output.directory.is_some() => {
                    m.dir.join(m.manifest.output.directory.as_deref().unwrap_or(Path::new("")))
                }
                _ => dir.join("output").join(&e.id),
            };
            vms.push(BatchVm {
                index: e.index,
                id: e.id.clone(),
                manifest_path: e.file.clone(),
                priority: e.priority,
                enabled: e.enabled,
                output_dir,
                manifest,
            });
        }
        let enabled: Vec<&BatchVm> = vms.iter().filter(|v| v.enabled).collect();
        for (n, a) in enabled.iter().enumerate() {
            if let Some(b) =
                enabled[..n].iter().find(|b| lexical(&b.output_dir) == lexical(&a.output_dir))
            {
                f.bad(
                    &format!("vms[{}]", a.index),
                    format!(
                        "writes to {}, like vms[{}]; give each VM its own output directory",
                        a.output_dir.display(),
                        b.index
                    ),
                );
            }
        }
        if !f.problems.is_empty() {
            return Err(f.problems);
        }
        let mut warnings = f.warnings;
        for v in &vms {
            warnings.extend(v.manifest.iter().flat_map(|m| m.warnings.iter().cloned()));
        }
        let batch_id = batch_id.unwrap_or_else(|| {
            path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
        });
        Ok(Batch {
            path: path.to_path_buf(),
            batch_id,
            parallel_limit,
            continue_on_error,
            output_dir: shared_out.unwrap_or_else(|| dir.join("output")),
            vms,
            warnings,
        })
    }

    /// Indexes into [`vms`](Self::vms) of the enabled VMs in the order they start: highest
    /// priority first, ties in file order.
    pub fn run_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.vms.len()).filter(|&i| self.vms[i].enabled).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(self.vms[i].priority), i));
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vm_manifest(dir: &Path, name: &str, disk: &str) {
        std::fs::write(dir.join(disk), b"x").unwrap();
        let m = json!({"manifest_version": "1.0", "source": {"vm_name": name},
            "disks": [{"id": "disk-0", "source_format": "raw", "bytes": 1, "local_path": disk}]});
        std::fs::write(dir.join(format!("{name}.json")), m.to_string()).unwrap();
    }

    #[test]
    fn default_ids_come_from_the_manifest_path() {
        assert_eq!(default_id("web01/manifest.json"), "web01-manifest");
        assert_eq!(default_id("web01.yaml"), "web01");
        assert_eq!(default_id("../exports/db 01/m.json"), "exports-db-01-m");
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null, "h": 1}, "l": [3]}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e", "h": 1}, "l": [3]}));
        let mut t = json!({"a": 1});
        merge_patch(&mut t, &json!({"a": {"b": null, "c": 2}}));
        assert_eq!(t, json!({"a": {"c": 2}}));
    }

    #[test]
    fn a_batch_loads_with_defaults_order_overrides_and_output_directories() {
        let t = tempfile::tempdir().unwrap();
        vm_manifest(t.path(), "web01", "w.img");
        vm_manifest(t.path(), "db01", "d.img");
        vm_manifest(t.path(), "old", "o.img");
        let b = json!({"batch_version": "1.0", "batch_metadata": {"parallel_limit": 2},
        "vms": [
            {"manifest": "web01.json"},
            {"manifest": "db01.json", "id": "db", "priority": 5,
             "overrides": {"pipeline": {"fix": {"enabled": false}}, "output": {"directory": "db-out"}}},
            {"manifest": "missing.json", "enabled": false},
            {"manifest": "old.json", "priority": 5, "future": 1}
        ]});
        let p = t.path().join("batch.json");
        std::fs::write(&p, b.to_string()).unwrap();
        let batch = Batch::load(&p).unwrap();
        assert_eq!(batch.batch_id, "batch");
        assert_eq!((batch.parallel_limit, batch.continue_on_error), (2, true));
        assert_eq!(
            batch.run_order(),
            vec![1, 3, 0],
            "priority, then file order; disabled left out"
        );
        let ids: Vec<&str> = batch.vms.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, ["web01", "db", "missing", "old"]);
        let db = batch.vms[1].manifest.as_ref().unwrap();
        assert!(!db.manifest.pipeline.fix.enabled, "the override applied");
        assert!(db.manifest.pipeline.convert.enabled, "the rest kept");
        assert_eq!(batch.vms[1].output_dir, t.path().join("db-out"));
        assert_eq!(batch.vms[0].output_dir, t.path().join("output/web01"));
        assert!(batch.vms[2].manifest.is_none());
        assert_eq!(batch.warnings, vec!["vms[3].future: unknown field, ignored"]);
    }

    #[test]
    fn every_violation_of_the_batch_and_its_vms_is_reported() {
        let t = tempfile::tempdir().unwrap();
        vm_manifest(t.path(), "web01", "w.img");
        std::fs::write(t.path().join("nested.json"), r#"{"batch_version": "1.0", "vms": []}"#)
            .unwrap();
        let b = json!({"batch_version": "2.0",
        "batch_metadata": {"parallel_limit": 0, "continue_on_error": "yes"},
        "shared_config": {"output_directory": "out"},
        "vms": [
            {"manifest": "web01.json", "id": "a"},
            {"manifest": "web01.json", "id": "a"},
            {"manifest": "web01.json", "id": "b c"},
            {"manifest": "web01.json", "id": "bad",
             "overrides": {"vm": {"cpu": 0}, "nics": [{"mac": "zz"}]}},
            {"manifest": "nope.json"},
            {"manifest": "nested.json"},
            {"id": "x", "overrides": [1]}
        ]});
        let p = t.path().join("b.json");
        std::fs::write(&p, b.to_string()).unwrap();
        let e = Batch::load(&p).unwrap_err().to_string();
        let w = t.path().join("web01.json");
        let expect = [
            "batch_version: must be \"1.0\", not \"2.0\"".to_string(),
            "batch_metadata.parallel_limit: 0 is out of range (must be 1-64)".into(),
            "batch_metadata.continue_on_error: must be true or false, not a string".into(),
            "vms[1]: id \"a\" is used by another VM".into(),
            "vms[2].id: \"b c\" may only hold A-Z, a-z, 0-9, _ and -".into(),
            format!("vms[3] ({}): vm.cpu: 0 is out of range (must be 1-4096)", w.display()),
            format!("vms[3] ({}): nics[0].mac: \"zz\" is not a MAC address", w.display()),
            "vms[4].manifest: ".into(),
            "nope.json".into(),
            "nested.json): is a batch manifest; batches do not nest".into(),
            "vms[6].manifest: is required".into(),
            "vms[6].overrides: must be an object (a JSON merge patch)".into(),
            "b.json".into(),
        ];
        for x in &expect {
            assert!(e.contains(x.as_str()), "missing {x:?} in:\n{e}");
        }
    }

    #[test]
    fn two_vms_writing_to_one_directory_are_refused() {
        let t = tempfile::tempdir().unwrap();
        vm_manifest(t.path(), "web01", "w.img");
        let b = json!({"batch_version": "1.0", "vms": [
            {"manifest": "web01.json", "id": "a", "overrides": {"output": {"directory": "same"}}},
            {"manifest": "web01.json", "id": "b", "overrides": {"output": {"directory": "./same"}}}]});
        let p = t.path().join("b.json");
        std::fs::write(&p, b.to_string()).unwrap();
        let e = Batch::load(&p).unwrap_err().to_string();
        assert!(e.contains("vms[1]: writes to") && e.contains("like vms[0]"), "{e}");
    }
}
