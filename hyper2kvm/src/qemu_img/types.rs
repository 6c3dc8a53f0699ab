//! The parts of `qemu-img`'s JSON output that we use.

use serde::Deserialize;

/// `qemu-img info --output=json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageInfo {
    /// Driver name (`qcow2`, `vmdk`, `vpc`, …).
    pub format: String,
    /// Guest-visible size in bytes.
    #[serde(rename = "virtual-size")]
    pub virtual_size: u64,
    /// Host bytes used, when qemu knows.
    #[serde(rename = "actual-size", default)]
    pub actual_size: Option<u64>,
    /// Backing file as qemu resolved it.
    #[serde(rename = "backing-filename", default)]
    pub backing_filename: Option<String>,
}

/// `qemu-img check --output=json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct CheckReport {
    /// Driver name.
    pub format: String,
    /// Corruptions found (absent when none).
    #[serde(default)]
    pub corruptions: u64,
    /// Leaked clusters.
    #[serde(default)]
    pub leaks: u64,
    /// Internal errors while checking.
    #[serde(rename = "check-errors", default)]
    pub check_errors: u64,
    /// Clusters allocated.
    #[serde(rename = "allocated-clusters", default)]
    pub allocated_clusters: Option<u64>,
    /// Clusters in the image.
    #[serde(rename = "total-clusters", default)]
    pub total_clusters: Option<u64>,
}

/// One extent of `qemu-img map --output=json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MapEntry {
    /// Guest offset.
    pub start: u64,
    /// Bytes.
    pub length: u64,
    /// Layer of the chain holding it (0 = top).
    #[serde(default)]
    pub depth: u64,
    /// Reads as zeros.
    pub zero: bool,
    /// Holds data.
    pub data: bool,
    /// Host offset, when meaningful.
    #[serde(default)]
    pub offset: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/qemu-img")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn parses_recorded_info() {
        let info: ImageInfo = serde_json::from_str(&fixture("info-vmdk.json")).unwrap();
        assert_eq!(info.format, "vmdk");
        assert_eq!(info.virtual_size, 3 << 30);
    }

    #[test]
    fn parses_recorded_check_and_map() {
        let check: CheckReport = serde_json::from_str(&fixture("check-qcow2.json")).unwrap();
        assert_eq!(check.format, "qcow2");
        assert_eq!(check.corruptions, 0);
        let map: Vec<MapEntry> = serde_json::from_str(&fixture("map-qcow2.json")).unwrap();
        assert!(map.iter().any(|e| e.data));
        assert_eq!(map.iter().map(|e| e.length).sum::<u64>(), 16 << 20);
    }
}
