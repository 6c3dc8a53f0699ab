//! The Artifact Manifest v1.0 (contract section 1): loading JSON or YAML, checking every field
//! before anything is touched (all violations at once, each with its JSON path), warning about
//! unknown fields, and resolving the disk paths.
//!
//! [`LoadedManifest::load`] is the one entry point; the typed document is in [`schema`].

pub mod batch;
mod check;
pub mod schema;
pub mod workflow;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
pub use batch::{Batch, BatchVm};
pub use schema::Manifest;

/// Largest manifest we read; HyperSDK's are a few KiB.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// A manifest that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedManifest {
    /// The file.
    pub path: PathBuf,
    /// Its directory (relative disk paths start here).
    pub dir: PathBuf,
    /// The document, disk paths resolved against `dir`.
    pub manifest: Manifest,
    /// Unknown fields and the like.
    pub warnings: Vec<String>,
}

/// Parses JSON, or YAML when the file says so by name or does not start like JSON.
fn parse(path: &Path, text: &str) -> Result<Value> {
    let yaml_name = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    let first = text.trim_start_matches('\u{feff}').trim_start().chars().next();
    if !yaml_name && matches!(first, Some('{') | Some('[')) {
        serde_json::from_str(text.trim_start_matches('\u{feff}'))
            .map_err(|e| Error::invalid(path, format!("not valid JSON: {e}")))
    } else {
        serde_yaml_ng::from_str(text)
            .map_err(|e| Error::invalid(path, format!("not valid YAML: {e}")))
    }
}

/// Each disk's `local_path` that does not name an existing regular file.
fn missing_disks(doc: &Value, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Some(disks) = doc.get("disks").and_then(Value::as_array) else { return out };
    for (i, d) in disks.iter().enumerate() {
        let Some(p) = d.get("local_path").and_then(Value::as_str).filter(|p| !p.is_empty()) else {
            continue;
        };
        let full = dir.join(p);
        match std::fs::metadata(&full) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                out.push(format!("disks[{i}].local_path: {} is not a regular file", full.display()))
            }
            Err(_) => out.push(format!("disks[{i}].local_path: {} does not exist", full.display())),
        }
    }
    out
}

/// Reads a manifest file (either kind) into a JSON value: size limit, UTF-8, JSON or YAML.
pub(crate) fn read_document(path: &Path) -> Result<Value> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "cannot read manifest", e))?;
    if !meta.is_file() {
        return Err(Error::invalid(path, "is not a regular file"));
    }
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(Error::invalid(
            path,
            format!(
                "manifest is {} bytes, more than the {MAX_MANIFEST_BYTES} accepted",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "reading", e))?;
    let text = String::from_utf8(bytes).map_err(|_| Error::invalid(path, "is not UTF-8 text"))?;
    parse(path, &text)
}

/// The directory a file's relative paths start from.
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
}

/// One error listing every problem, naming the file.
pub(crate) fn problems_error(path: &Path, what: &str, problems: &[String]) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("{what} has {} problem(s):\n  {}", problems.len(), problems.join("\n  ")),
    )
    .with_path(path)
}

/// Either kind of manifest file.
#[derive(Debug, Clone, PartialEq)]
pub enum ManifestFile {
    /// An Artifact Manifest v1.0: one VM.
    Vm(Box<LoadedManifest>),
    /// A batch manifest: several VM manifests.
    Batch(Batch),
}

/// Reads and checks a VM or batch manifest, whichever the file is (a batch has
/// `batch_version`). Every violation is in the one error.
pub fn load(path: &Path) -> Result<ManifestFile> {
    let doc = read_document(path)?;
    if batch::is_batch(&doc) {
        Batch::from_document(path, &doc)
            .map(ManifestFile::Batch)
            .map_err(|p| problems_error(path, "batch manifest", &p))
    } else {
        LoadedManifest::from_document(path, doc)
            .map(|m| ManifestFile::Vm(Box::new(m)))
            .map_err(|p| problems_error(path, "manifest", &p))
    }
}

impl LoadedManifest {
    /// Reads, checks and resolves a manifest file. Every violation is in the one error.
    pub fn load(path: &Path) -> Result<LoadedManifest> {
        let doc = read_document(path)?;
        if batch::is_batch(&doc) {
            return Err(Error::invalid(
                path,
                "is a batch manifest (it has batch_version), not a VM manifest; run it with \
                 `hyper2kvm MANIFEST` or load it with Batch::load",
            ));
        }
        Self::from_document(path, doc)
            .map_err(|problems| problems_error(path, "manifest", &problems))
    }

    /// Like [`load`](Self::load) for a manifest that was moved away from its disks (the
    /// daemon claims a manifest by renaming it into a work directory): relative paths start
    /// at `base` instead of the file's own directory.
    pub fn load_with_base(path: &Path, base: &Path) -> Result<LoadedManifest> {
        let doc = read_document(path)?;
        if batch::is_batch(&doc) {
            return Err(Error::invalid(path, "is a batch manifest; the queue takes VM manifests"));
        }
        Self::from_document_in(path, base, doc)
            .map_err(|problems| problems_error(path, "manifest", &problems))
    }

    /// Checks and resolves a parsed document read from `path`; `Err` lists every violation.
    pub(crate) fn from_document(
        path: &Path,
        doc: Value,
    ) -> std::result::Result<LoadedManifest, Vec<String>> {
        Self::from_document_in(path, &parent_dir(path), doc)
    }

    fn from_document_in(
        path: &Path,
        dir: &Path,
        doc: Value,
    ) -> std::result::Result<LoadedManifest, Vec<String>> {
        let dir = dir.to_path_buf();
        let mut findings = check::check(&doc);
        findings.problems.extend(missing_disks(&doc, &dir));
        if !findings.problems.is_empty() {
            return Err(findings.problems);
        }
        let mut manifest: Manifest = serde_json::from_value(doc)
            .map_err(|e| vec![format!("(document): does not fit the contract: {e}")])?;
        for d in &mut manifest.disks {
            d.local_path = dir.join(&d.local_path);
        }
        // A vCenter URL with credentials is never kept, so it is never printed or logged.
        let mut hidden = Vec::new();
        if let Some(dc) = &mut manifest.source.datacenter
            && redact(dc)
        {
            hidden.push("source.datacenter".to_string());
        }
        for (k, v) in &mut manifest.metadata.tags {
            if redact(v) {
                hidden.push(format!("metadata.tags.{k}"));
            }
        }
        let mut warnings = findings.warnings;
        for h in hidden {
            warnings.push(format!("{h}: a URL with credentials; they are redacted (***@)"));
        }
        Ok(LoadedManifest { path: path.to_path_buf(), dir, manifest, warnings })
    }
}

/// Replaces the `user:password@` of every URL in `s` by `***@`; true when it did.
pub fn redact(s: &mut String) -> bool {
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    let mut changed = false;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| "/?#".contains(c) || c.is_whitespace()).unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
                changed = true;
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    if changed {
        *s = out;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_redacted() {
        let mut s = "https://admin%40vsphere.local:S3cr%3At@vc.example.com/sdk/DC1".to_string();
        assert!(redact(&mut s));
        assert_eq!(s, "https://***@vc.example.com/sdk/DC1");
        let mut s = "vi://root:pw@esx1 and https://u:p@vc2:443?x".to_string();
        assert!(redact(&mut s));
        assert_eq!(s, "vi://***@esx1 and https://***@vc2:443?x");
        let mut s = "DC1 at https://vc.example.com/sdk".to_string();
        assert!(!redact(&mut s));
        assert_eq!(s, "DC1 at https://vc.example.com/sdk");
        let mut s = "https://vc/path@not-userinfo".to_string();
        assert!(!redact(&mut s), "an @ after the authority is not credentials");
    }

    #[test]
    fn json_and_yaml_load_the_same_and_paths_resolve() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("d0.vmdk"), b"x").unwrap();
        let json = r#"{"manifest_version": "1.0", "disks": [{"id": "disk-0", "source_format": "vmdk",
            "bytes": 1, "local_path": "d0.vmdk"}], "nics": [{"mac": "00:50:56:00:00:01"}], "extra": 1}"#;
        let yaml = "manifest_version: \"1.0\"\ndisks:\n  - id: disk-0\n    source_format: vmdk\n    bytes: 1\n    local_path: d0.vmdk\nnics:\n  - mac: \"00:50:56:00:00:01\"\nextra: 1\n";
        std::fs::write(t.path().join("m.json"), json).unwrap();
        std::fs::write(t.path().join("m.yaml"), yaml).unwrap();
        let a = LoadedManifest::load(&t.path().join("m.json")).unwrap();
        let b = LoadedManifest::load(&t.path().join("m.yaml")).unwrap();
        assert_eq!(a.manifest, b.manifest);
        assert_eq!(a.warnings, vec!["extra: unknown field, ignored"]);
        assert_eq!(a.manifest.disks[0].local_path, t.path().join("d0.vmdk"));
        assert!(a.manifest.pipeline.fix.enabled, "no pipeline section: every stage runs");
        assert_eq!(a.manifest.options.report.path, Path::new("report.json"));
    }

    #[test]
    fn missing_disks_truncation_and_size_are_errors_naming_the_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("m.json");
        std::fs::write(&p, r#"{"manifest_version": "1.0", "disks": [{"id": "d", "source_format": "raw", "bytes": 1, "local_path": "nope.img"}]}"#).unwrap();
        let e = LoadedManifest::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("m.json")
                && e.contains("disks[0].local_path:")
                && e.contains("does not exist"),
            "{e}"
        );
        std::fs::write(&p, r#"{"manifest_version": "1.0", "disks": [{"id""#).unwrap();
        let e = LoadedManifest::load(&p).unwrap_err().to_string();
        assert!(e.contains("not valid JSON"), "{e}");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(MAX_MANIFEST_BYTES + 1).unwrap();
        let e = LoadedManifest::load(&p).unwrap_err().to_string();
        assert!(e.contains("more than the"), "{e}");
    }
}
