//! The VMDK text descriptor ("# Disk DescriptorFile"), parsed by our own code.
//!
//! The descriptor is line-oriented: `key=value` header lines (`version`, `CID`, `parentCID`,
//! `createType`, `parentFileNameHint`), extent lines (`RW 4192256 SPARSE "disk-s001.vmdk"`), and
//! `ddb.*` disk-database entries. It is either a small file of its own or embedded in a sparse
//! extent (VMware Virtual Disk Format 1.1, "The Descriptor File").

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};

/// The largest descriptor we accept; real ones are a few hundred bytes.
pub const MAX_DESCRIPTOR_BYTES: u64 = 1 << 20;

/// How an extent stores its data (the third word of an extent line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ExtentKind {
    /// Hosted sparse extent (`KDMV` header).
    Sparse,
    /// Flat (preallocated) extent file.
    Flat,
    /// ESXi flat extent.
    Vmfs,
    /// ESXi sparse delta (`COWD` header).
    Vmfssparse,
    /// Raw device mapping.
    Vmfsrdm,
    /// Raw device mapping, physical compatibility.
    Vmfsraw,
    /// No file: reads as zeros.
    Zero,
}

impl ExtentKind {
    fn parse(word: &str) -> Option<ExtentKind> {
        Some(match word {
            "SPARSE" => ExtentKind::Sparse,
            "FLAT" => ExtentKind::Flat,
            "VMFS" => ExtentKind::Vmfs,
            "VMFSSPARSE" => ExtentKind::Vmfssparse,
            "VMFSRDM" => ExtentKind::Vmfsrdm,
            "VMFSRAW" => ExtentKind::Vmfsraw,
            "ZERO" => ExtentKind::Zero,
            _ => return None,
        })
    }

    /// True for extents whose file holds the data at a fixed offset.
    pub fn is_flat(self) -> bool {
        matches!(self, ExtentKind::Flat | ExtentKind::Vmfs)
    }
}

/// One extent line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtentLine {
    /// `RW`, `RDONLY` or `NOACCESS`.
    pub access: String,
    /// Size in 512-byte sectors.
    pub sectors: u64,
    /// Storage kind.
    pub kind: ExtentKind,
    /// File name relative to the descriptor (absent for `ZERO`).
    pub file: Option<String>,
    /// Offset in sectors into a flat file.
    pub offset_sectors: u64,
}

/// A parsed descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VmdkDescriptor {
    /// `version=` (1, 2 or 3).
    pub version: u32,
    /// Content id.
    pub cid: Option<String>,
    /// Parent's content id (`ffffffff` when there is none).
    pub parent_cid: Option<String>,
    /// `createType=`, the sub-format.
    pub create_type: String,
    /// `parentFileNameHint=` of a snapshot delta.
    pub parent_file_name_hint: Option<String>,
    /// The extents, in order.
    pub extents: Vec<ExtentLine>,
    /// `ddb.*` entries (adapter type, geometry, tools version, …).
    pub ddb: BTreeMap<String, String>,
}

/// True when `text` starts like a VMDK descriptor (used by content detection).
pub fn looks_like_descriptor(text: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&text[..text.len().min(1024)]);
    let mut lines = head.lines().map(str::trim).filter(|l| !l.is_empty());
    match lines.next() {
        Some(first) if first.starts_with("# Disk DescriptorFile") => true,
        // Some writers drop the comment; `version=` followed soon by CID/createType still says
        // VMDK.
        Some(first) if first.starts_with("version=") => {
            head.contains("createType=") && (head.contains("CID=") || head.contains("RW "))
        }
        _ => false,
    }
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(v)
}

impl VmdkDescriptor {
    /// Parses descriptor text. `origin` names the file for error messages.
    pub fn parse(origin: &Path, text: &str) -> Result<VmdkDescriptor> {
        let mut d = VmdkDescriptor::default();
        let mut saw_create_type = false;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim_matches(|c: char| c.is_whitespace() || c == '\0');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad =
                |why: String| Error::invalid(origin, format!("descriptor line {}: {why}", n + 1));
            let first = line.split_whitespace().next().unwrap_or("");
            if matches!(first, "RW" | "RDONLY" | "NOACCESS") {
                d.extents.push(parse_extent(line).map_err(bad)?);
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(bad(format!("expected key=value or an extent, found {line:?}")));
            };
            let (key, value) = (key.trim(), unquote(value));
            match key {
                "version" => {
                    d.version = value.parse().map_err(|_| bad(format!("bad version {value:?}")))?
                }
                "CID" => d.cid = Some(value.to_string()),
                "parentCID" => d.parent_cid = Some(value.to_string()),
                "createType" => {
                    d.create_type = value.to_string();
                    saw_create_type = true;
                }
                "parentFileNameHint" => d.parent_file_name_hint = Some(value.to_string()),
                k if k.starts_with("ddb.") => {
                    d.ddb.insert(k.to_string(), value.to_string());
                }
                // Other header keys (encoding, isNativeSnapshot, …) do not affect the data.
                _ => {}
            }
        }
        if !saw_create_type {
            return Err(Error::invalid(origin, "VMDK descriptor has no createType"));
        }
        if d.extents.is_empty() {
            return Err(Error::invalid(origin, "VMDK descriptor lists no extents"));
        }
        Ok(d)
    }

    /// True when this descriptor is a snapshot delta with a parent.
    pub fn has_parent(&self) -> bool {
        self.parent_cid.as_deref().is_some_and(|c| !c.eq_ignore_ascii_case("ffffffff"))
            || self.parent_file_name_hint.is_some()
    }

    /// Total size of all extents, in bytes.
    pub fn virtual_size(&self) -> u64 {
        self.extents.iter().map(|e| e.sectors.saturating_mul(512)).fold(0, u64::saturating_add)
    }
}

fn parse_extent(line: &str) -> std::result::Result<ExtentLine, String> {
    // ACCESS SECTORS KIND ["FILE" [OFFSET]]; the file name is quoted and may hold spaces.
    let (head, quoted) = match line.find('"') {
        Some(q) => (&line[..q], Some(&line[q..])),
        None => (line, None),
    };
    let words: Vec<&str> = head.split_whitespace().collect();
    if words.len() != 3 {
        return Err(format!("malformed extent line {line:?}"));
    }
    let sectors: u64 =
        words[1].parse().map_err(|_| format!("bad extent size {:?} in {line:?}", words[1]))?;
    let kind =
        ExtentKind::parse(words[2]).ok_or_else(|| format!("unknown extent type {:?}", words[2]))?;
    let (file, offset_sectors) = match quoted {
        None if kind == ExtentKind::Zero => (None, 0),
        None => return Err(format!("extent {line:?} names no file")),
        Some(q) => {
            let rest = &q[1..];
            let end =
                rest.find('"').ok_or_else(|| format!("unterminated file name in {line:?}"))?;
            let name = &rest[..end];
            let tail = rest[end + 1..].trim();
            let offset = if tail.is_empty() {
                0
            } else {
                tail.parse().map_err(|_| format!("bad extent offset {tail:?} in {line:?}"))?
            };
            if name.is_empty() {
                return Err(format!("empty file name in {line:?}"));
            }
            (Some(name.to_string()), offset)
        }
    };
    Ok(ExtentLine { access: words[0].to_string(), sectors, kind, file, offset_sectors })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_GB: &str = r#"# Disk DescriptorFile
version=1
CID=75d261fe
parentCID=ffffffff
createType="twoGbMaxExtentSparse"

# Extent description
RW 4194304 SPARSE "my disk-s001.vmdk"
RW 2097152 SPARSE "my disk-s002.vmdk"
RW 2048 FLAT "flat.bin" 16
RW 100 ZERO

# The Disk Data Base
#DDB
ddb.adapterType = "lsilogic"
ddb.virtualHWVersion = "4"
"#;

    #[test]
    fn parses_header_extents_and_ddb() {
        let d = VmdkDescriptor::parse(Path::new("d.vmdk"), TWO_GB).unwrap();
        assert_eq!(d.version, 1);
        assert_eq!(d.create_type, "twoGbMaxExtentSparse");
        assert_eq!(d.cid.as_deref(), Some("75d261fe"));
        assert!(!d.has_parent());
        assert_eq!(d.extents.len(), 4);
        assert_eq!(d.extents[0].file.as_deref(), Some("my disk-s001.vmdk"));
        assert_eq!(d.extents[2].kind, ExtentKind::Flat);
        assert_eq!(d.extents[2].offset_sectors, 16);
        assert_eq!(d.extents[3].file, None);
        assert_eq!(d.virtual_size(), (4194304 + 2097152 + 2048 + 100) * 512);
        assert_eq!(d.ddb["ddb.adapterType"], "lsilogic");
        assert!(looks_like_descriptor(TWO_GB.as_bytes()));
    }

    #[test]
    fn delta_has_parent() {
        let text = "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=abcd\ncreateType=\"monolithicSparse\"\nparentFileNameHint=\"base.vmdk\"\nRW 8 SPARSE \"d.vmdk\"\n";
        let d = VmdkDescriptor::parse(Path::new("d"), text).unwrap();
        assert!(d.has_parent());
        assert_eq!(d.parent_file_name_hint.as_deref(), Some("base.vmdk"));
    }

    #[test]
    fn malformed_lines_are_reported_with_line_number() {
        let text = "# Disk DescriptorFile\nversion=1\ncreateType=\"vmfs\"\nRW lots VMFS \"x\"\n";
        let err = VmdkDescriptor::parse(Path::new("d.vmdk"), text).unwrap_err();
        assert!(err.to_string().contains("line 4"), "{err}");
        let err =
            VmdkDescriptor::parse(Path::new("d.vmdk"), "version=1\nRW 8 FLAT \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("createType"), "{err}");
    }
}
