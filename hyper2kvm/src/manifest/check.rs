//! Checking a manifest document before anything is done with it: every violation at once, each
//! named by its JSON path (`disks[1].checksum: not of the form sha256:<64 hex>`), and a warning
//! for every field the contract does not know (forward compatibility: never an error).

use serde_json::{Map, Value};

use crate::fix::GuestConfiguration;

/// What the check found.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// Violations (the manifest is refused when there is any).
    pub problems: Vec<String>,
    /// Unknown fields and other things worth saying.
    pub warnings: Vec<String>,
}

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Findings {
    pub(super) fn bad(&mut self, path: &str, why: impl std::fmt::Display) {
        self.problems.push(format!("{path}: {why}"));
    }

    /// `v` as an object whose keys should be among `known`.
    pub(super) fn object<'a>(
        &mut self,
        v: &'a Value,
        path: &str,
        known: &[&str],
    ) -> Option<&'a Map<String, Value>> {
        let Value::Object(m) = v else {
            let at = if path.is_empty() { "(document)" } else { path };
            self.bad(at, format!("must be an object, not {}", kind(v)));
            return None;
        };
        for k in m.keys() {
            if !known.contains(&k.as_str()) {
                self.warnings.push(format!("{}: unknown field, ignored", join(path, k)));
            }
        }
        Some(m)
    }

    pub(super) fn field<'a>(
        &mut self,
        m: &'a Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
    ) -> Option<&'a Value> {
        match m.get(key) {
            None | Some(Value::Null) if required => {
                self.bad(&join(path, key), "is required");
                None
            }
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub(super) fn string<'a>(
        &mut self,
        m: &'a Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
    ) -> Option<&'a str> {
        let v = self.field(m, path, key, required)?;
        match v.as_str() {
            Some(s) => Some(s),
            None => {
                self.bad(&join(path, key), format!("must be a string, not {}", kind(v)));
                None
            }
        }
    }

    pub(super) fn int(
        &mut self,
        m: &Map<String, Value>,
        path: &str,
        key: &str,
        range: (i64, i64),
        required: bool,
    ) -> Option<i64> {
        let v = self.field(m, path, key, required)?;
        let Some(n) = v.as_i64() else {
            self.bad(&join(path, key), format!("must be an integer, not {}", kind(v)));
            return None;
        };
        if n < range.0 || n > range.1 {
            let want = if range.1 == i64::MAX {
                format!("at least {}", range.0)
            } else {
                format!("{}-{}", range.0, range.1)
            };
            self.bad(&join(path, key), format!("{n} is out of range (must be {want})"));
            return None;
        }
        Some(n)
    }

    pub(super) fn boolean(&mut self, m: &Map<String, Value>, path: &str, key: &str) {
        if let Some(v) = self.field(m, path, key, false)
            && !v.is_boolean()
        {
            self.bad(&join(path, key), format!("must be true or false, not {}", kind(v)));
        }
    }

    fn one_of(
        &mut self,
        m: &Map<String, Value>,
        path: &str,
        key: &str,
        allowed: &[&str],
        required: bool,
    ) {
        if let Some(s) = self.string(m, path, key, required)
            && !allowed.contains(&s)
        {
            self.bad(&join(path, key), format!("{s:?} is not one of {}", allowed.join(", ")));
        }
    }

    pub(super) fn array<'a>(
        &mut self,
        m: &'a Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
    ) -> Option<&'a Vec<Value>> {
        let v = self.field(m, path, key, required)?;
        match v.as_array() {
            Some(a) => Some(a),
            None => {
                self.bad(&join(path, key), format!("must be an array, not {}", kind(v)));
                None
            }
        }
    }

    fn strings(&mut self, m: &Map<String, Value>, path: &str, key: &str) {
        if let Some(a) = self.array(m, path, key, false) {
            for (i, v) in a.iter().enumerate() {
                if !v.is_string() {
                    self.bad(
                        &format!("{}[{i}]", join(path, key)),
                        format!("must be a string, not {}", kind(v)),
                    );
                }
            }
        }
    }

    pub(super) fn section<'a>(
        &mut self,
        m: &'a Map<String, Value>,
        key: &str,
        known: &[&str],
    ) -> Option<&'a Map<String, Value>> {
        let v = self.field(m, "", key, false)?;
        self.object(v, key, known)
    }
}

/// HyperSDK writes MACs as vSphere reports them: `-` separators and upper case are accepted
/// (and normalised where the MAC is used).
fn is_mac(s: &str) -> bool {
    crate::io::parse_mac(s, &[':', '-']).is_some()
}

pub(super) fn is_disk_id(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `sha256:` and 64 lowercase hex digits.
pub(crate) fn is_checksum(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64 && h.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

const TOP: [&str; 12] = [
    "manifest_version",
    "source",
    "vm",
    "disks",
    "nics",
    "notes",
    "warnings",
    "metadata",
    "pipeline",
    "configuration",
    "output",
    "options",
];

fn disks(f: &mut Findings, top: &Map<String, Value>) {
    let Some(list) = f.array(top, "", "disks", true) else { return };
    if list.is_empty() {
        f.bad("disks", "must list at least one disk");
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let path = format!("disks[{i}]");
        let known = [
            "id",
            "source_format",
            "bytes",
            "local_path",
            "checksum",
            "boot_order_hint",
            "label",
            "disk_type",
        ];
        let Some(m) = f.object(d, &path, &known) else { continue };
        if let Some(id) = f.string(m, &path, "id", true) {
            if !is_disk_id(id) {
                f.bad(&join(&path, "id"), format!("{id:?} may only hold A-Z, a-z, 0-9, _ and -"));
            } else if seen.contains(&id) {
                f.bad(&join(&path, "id"), format!("{id:?} is used by another disk"));
            }
            seen.push(id);
        }
        f.one_of(m, &path, "source_format", &["vmdk", "qcow2", "raw", "vhd", "vhdx", "vdi"], true);
        f.int(m, &path, "bytes", (0, i64::MAX), true);
        if let Some(p) = f.string(m, &path, "local_path", true)
            && p.is_empty()
        {
            f.bad(&join(&path, "local_path"), "is empty");
        }
        if let Some(c) = f.string(m, &path, "checksum", false)
            && !is_checksum(c)
        {
            f.bad(&join(&path, "checksum"), "not of the form sha256:<64 lowercase hex>");
        }
        f.int(m, &path, "boot_order_hint", (i64::MIN, i64::MAX), false);
        f.string(m, &path, "label", false);
        f.one_of(m, &path, "disk_type", &["boot", "data", "unknown"], false);
    }
}

fn nics(f: &mut Findings, top: &Map<String, Value>) {
    let Some(list) = f.array(top, "", "nics", false) else { return };
    for (i, n) in list.iter().enumerate() {
        let path = format!("nics[{i}]");
        let Some(m) = f.object(n, &path, &["id", "mac", "network"]) else { continue };
        f.string(m, &path, "id", false);
        if let Some(mac) = f.string(m, &path, "mac", false)
            && !is_mac(mac)
        {
            f.bad(&join(&path, "mac"), format!("{mac:?} is not a MAC address (xx:xx:xx:xx:xx:xx)"));
        }
        f.string(m, &path, "network", false);
    }
}

fn pipeline(f: &mut Findings, top: &Map<String, Value>) {
    let Some(p) = f.section(top, "pipeline", &["inspect", "fix", "convert", "validate"]) else {
        return;
    };
    let stage = |f: &mut Findings, name: &str, known: &[&str]| -> Option<Map<String, Value>> {
        let v = p.get(name)?;
        let path = format!("pipeline.{name}");
        let m = f.object(v, &path, known)?.clone();
        f.boolean(&m, &path, "enabled");
        Some(m)
    };
    if let Some(m) = stage(f, "inspect", &["enabled", "collect_guest_info"]) {
        f.boolean(&m, "pipeline.inspect", "collect_guest_info");
    }
    let fix_known = [
        "enabled",
        "backup",
        "print_fstab",
        "update_grub",
        "regen_initramfs",
        "fstab_mode",
        "remove_vmware_tools",
    ];
    if let Some(m) = stage(f, "fix", &fix_known) {
        for b in ["backup", "print_fstab", "update_grub", "regen_initramfs", "remove_vmware_tools"]
        {
            f.boolean(&m, "pipeline.fix", b);
        }
        f.one_of(
            &m,
            "pipeline.fix",
            "fstab_mode",
            &["stabilize-all", "bypath-only", "noop"],
            false,
        );
    }
    if let Some(m) = stage(f, "convert", &["enabled", "compress", "compress_level"]) {
        f.boolean(&m, "pipeline.convert", "compress");
        f.int(&m, "pipeline.convert", "compress_level", (1, 9), false);
    }
    if let Some(m) = stage(f, "validate", &["enabled", "check_image_integrity"]) {
        f.boolean(&m, "pipeline.validate", "check_image_integrity");
    }
}

fn rest(f: &mut Findings, top: &Map<String, Value>) {
    let source_known =
        ["provider", "vm_id", "vm_name", "datacenter", "export_timestamp", "export_method"];
    if let Some(s) = f.section(top, "source", &source_known) {
        for k in source_known {
            f.string(s, "source", k, false);
        }
    }
    let vm_known = ["cpu", "mem_gb", "firmware", "secureboot", "os_hint", "os_version"];
    if let Some(vm) = f.section(top, "vm", &vm_known) {
        f.int(vm, "vm", "cpu", (1, 4096), false);
        f.int(vm, "vm", "mem_gb", (1, 1 << 20), false);
        // HyperSDK lower-cases vSphere's own word for UEFI: every UEFI vSphere VM arrives so.
        if f.string(vm, "vm", "firmware", false) == Some("efi") {
            f.warnings.push("vm.firmware: \"efi\" taken as \"uefi\"".into());
        } else {
            f.one_of(vm, "vm", "firmware", &["bios", "uefi", "unknown"], false);
        }
        f.boolean(vm, "vm", "secureboot");
        // HyperSDK's docs use distribution names (`ubuntu`); the guest is inspected anyway.
        if let Some(h) = f.string(vm, "vm", "os_hint", false)
            && !["linux", "windows", "unknown"].contains(&h)
        {
            f.warnings.push(format!(
                "vm.os_hint: {h:?} is not one of linux, windows, unknown; taken as unknown"
            ));
        }
        f.string(vm, "vm", "os_version", false);
    }
    f.strings(top, "", "notes");
    if let Some(list) = f.array(top, "", "warnings", false) {
        for (i, w) in list.iter().enumerate() {
            let path = format!("warnings[{i}]");
            if let Some(m) = f.object(w, &path, &["stage", "message", "timestamp"]) {
                for k in ["stage", "message", "timestamp"] {
                    f.string(m, &path, k, false);
                }
            }
        }
    }
    if let Some(md) =
        f.section(top, "metadata", &["hypersdk_version", "job_id", "created_at", "tags"])
    {
        for k in ["hypersdk_version", "job_id", "created_at"] {
            f.string(md, "metadata", k, false);
        }
        if let Some(tags) = md.get("tags") {
            let known: Vec<&str> = tags
                .as_object()
                .map(|t| t.keys().map(String::as_str).collect())
                .unwrap_or_default();
            if let Some(t) = f.object(tags, "metadata.tags", &known) {
                for (k, v) in t {
                    if !v.is_string() {
                        f.bad(
                            &format!("metadata.tags.{k}"),
                            format!("must be a string, not {}", kind(v)),
                        );
                    }
                }
            }
        }
    }
    let output_keys =
        ["directory", "format", "filename", "target", "namespace", "datavolume_source"];
    if let Some(o) = f.section(top, "output", &output_keys) {
        f.string(o, "output", "directory", false);
        f.one_of(o, "output", "format", &["qcow2", "raw"], false);
        f.one_of(o, "output", "target", &["libvirt", "kubevirt"], false);
        if let Some(ns) = f.string(o, "output", "namespace", false)
            && let Err(e) = crate::kubevirt::check_namespace(ns)
        {
            f.bad("output.namespace", e.message().to_string());
        }
        if let Some(src) = f.string(o, "output", "datavolume_source", false)
            && let Err(e) = src.parse::<crate::kubevirt::DataVolumeSource>()
        {
            f.bad("output.datavolume_source", e.message().to_string());
        }
        if let Some(name) = f.string(o, "output", "filename", false)
            && (name.is_empty() || name.contains('/') || name.starts_with('.'))
        {
            f.bad("output.filename", format!("{name:?} must be a plain file name"));
        }
    }
    if let Some(o) = f.section(top, "options", &["dry_run", "verbose", "report"]) {
        f.boolean(o, "options", "dry_run");
        f.int(o, "options", "verbose", (0, 3), false);
        if let Some(r) = o.get("report")
            && let Some(r) = f.object(r, "options.report", &["enabled", "path"])
        {
            f.boolean(r, "options.report", "enabled");
            f.string(r, "options.report", "path", false);
        }
    }
    if let Some(c) = top.get("configuration") {
        match serde_json::from_value::<GuestConfiguration>(c.clone()) {
            Ok(conf) => f.problems.extend(conf.problems()),
            Err(e) => f.bad("configuration", e),
        }
    }
}

/// Checks a parsed manifest document.
pub(crate) fn check(doc: &Value) -> Findings {
    let mut f = Findings::default();
    let Some(top) = f.object(doc, "", &TOP) else {
        return f;
    };
    match top.get("manifest_version") {
        None => f.bad("manifest_version", "is required"),
        Some(Value::String(v)) if v == "1.0" => {}
        Some(v) => f.bad("manifest_version", format!("must be \"1.0\", not {v}")),
    }
    disks(&mut f, top);
    nics(&mut f, top);
    pipeline(&mut f, top);
    rest(&mut f, top);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({
            "manifest_version": "1.0",
            "source": {"provider": "vsphere", "vm_name": "web01"},
            "vm": {"cpu": 2, "mem_gb": 4, "firmware": "bios"},
            "disks": [
                {"id": "disk-0", "source_format": "vmdk", "bytes": 1024, "local_path": "a.vmdk",
                 "checksum": format!("sha256:{}", "a".repeat(64)), "boot_order_hint": 0, "disk_type": "boot"},
                {"id": "disk-1", "source_format": "vmdk", "bytes": 1024, "local_path": "b.vmdk"}
            ],
            "nics": [{"id": "nic-0", "mac": "00:50:56:ab:cd:ef", "network": "VM Network"}],
            "pipeline": {"fix": {"enabled": true, "fstab_mode": "stabilize-all"}, "convert": {"compress": true, "compress_level": 6}},
            "options": {"report": {"enabled": true, "path": "report.json"}}
        })
    }

    #[test]
    fn a_good_manifest_passes_and_unknown_fields_only_warn() {
        let mut doc = good();
        doc["future_field"] = json!(1);
        doc["vm"]["numa"] = json!(true);
        let f = check(&doc);
        assert!(f.problems.is_empty(), "{:?}", f.problems);
        assert_eq!(
            f.warnings,
            vec!["future_field: unknown field, ignored", "vm.numa: unknown field, ignored"]
        );
    }

    #[test]
    fn every_violation_is_reported_with_its_path() {
        let mut doc = good();
        doc["manifest_version"] = json!("2.0");
        doc["vm"]["cpu"] = json!(0);
        doc["disks"][0]["checksum"] = json!("md5:abc");
        doc["disks"][1]["id"] = json!("disk-0");
        doc["disks"][1]["source_format"] = json!("iso");
        doc["disks"][1].as_object_mut().unwrap().remove("local_path");
        doc["nics"][0]["mac"] = json!("00:50:56:ab:cd");
        doc["pipeline"]["convert"]["compress_level"] = json!(12);
        let f = check(&doc);
        let expect = [
            "manifest_version: must be \"1.0\", not \"2.0\"",
            "disks[0].checksum: not of the form sha256:<64 lowercase hex>",
            "disks[1].id: \"disk-0\" is used by another disk",
            "disks[1].source_format: \"iso\" is not one of vmdk, qcow2, raw, vhd, vhdx, vdi",
            "disks[1].local_path: is required",
            "nics[0].mac: \"00:50:56:ab:cd\" is not a MAC address (xx:xx:xx:xx:xx:xx)",
            "pipeline.convert.compress_level: 12 is out of range (must be 1-9)",
            "vm.cpu: 0 is out of range (must be 1-4096)",
        ];
        for e in expect {
            assert!(f.problems.iter().any(|p| p == e), "missing {e:?} in {:#?}", f.problems);
        }
        assert_eq!(f.problems.len(), expect.len(), "{:#?}", f.problems);
    }

    #[test]
    fn shapes_that_are_not_manifests() {
        let f = check(&json!([1, 2]));
        assert_eq!(f.problems, vec!["(document): must be an object, not an array"]);
        let f = check(&json!({"manifest_version": "1.0", "disks": []}));
        assert_eq!(f.problems, vec!["disks: must list at least one disk"]);
        let f = check(
            &json!({"disks": [{"id": "a b", "source_format": "raw", "bytes": 1, "local_path": "x"}]}),
        );
        assert!(
            f.problems.contains(&"manifest_version: is required".to_string()),
            "{:?}",
            f.problems
        );
        assert!(
            f.problems.iter().any(|p| p.starts_with("disks[0].id: \"a b\" may only hold")),
            "{:?}",
            f.problems
        );
        assert!(is_checksum(&format!("sha256:{}", "0f".repeat(32))));
        assert!(!is_checksum(&format!("sha256:{}", "0F".repeat(32))));
    }
}
