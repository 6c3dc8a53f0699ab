//! QEMU qcow2 (versions 2 and 3): header, header extensions, backing file, and whether any
//! cluster is stored compressed.
//!
//! Field offsets per QEMU's `docs/interop/qcow2.txt`, "Header"; all integers are big-endian.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{FormatDetails, ImageFormat, Parent, Parsed};
use crate::error::{Error, Result};
use crate::io::source::{ByteSource, bytes::*};

/// `QFI\xfb` at offset 0.
pub const MAGIC: &[u8; 4] = b"QFI\xfb";
/// Header extension: the backing file's format name.
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
/// Header extension: external data file name.
const EXT_DATA_FILE: u32 = 0x4441_5441;
/// Incompatible feature bit 1: the image is marked corrupt.
const INCOMPAT_CORRUPT: u64 = 1 << 1;
/// Incompatible feature bit 2: guest data lives in an external file.
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
/// L2 entry bit 62: the cluster is compressed.
const L2_COMPRESSED: u64 = 1 << 62;
/// Upper bound on L2 bytes read when looking for compressed clusters.
const MAX_L2_SCAN_BYTES: u64 = 64 << 20;

/// qcow2 facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Qcow2Details {
    /// Header version, 2 or 3.
    pub version: u32,
    /// Cluster size in bytes.
    pub cluster_size: u64,
    /// Backing file name as written in the header.
    pub backing_file: Option<String>,
    /// Backing file format from the header extension.
    pub backing_format: Option<String>,
    /// Cluster compression algorithm (`zlib` or `zstd`).
    pub compression_type: String,
    /// Whether any data cluster is compressed (`None` when the image was too large to scan).
    pub compressed_clusters: Option<bool>,
    /// Internal snapshots.
    pub snapshots: u32,
}

/// Parses a qcow2 image; an overlay names its backing file (refused inside an archive).
pub fn parse(src: &ByteSource, in_archive: bool) -> Result<Parsed> {
    let h = src.read_up_to(0, 4096)?;
    if h.len() < 72 {
        return Err(Error::invalid(src.path(), "truncated qcow2 header"));
    }
    let version = be32(&h, 4);
    if version != 2 && version != 3 {
        return Err(Error::unsupported(src.path(), format!("qcow2 version {version}")));
    }
    let backing_offset = be64(&h, 8);
    let backing_size = be32(&h, 16) as usize;
    let cluster_bits = be32(&h, 20);
    let size = be64(&h, 24);
    let crypt = be32(&h, 32);
    let l1_size = be32(&h, 36) as u64;
    let l1_offset = be64(&h, 40);
    let snapshots = be32(&h, 60);
    if !(9..=21).contains(&cluster_bits) {
        return Err(Error::invalid(
            src.path(),
            format!("invalid qcow2 cluster_bits {cluster_bits}"),
        ));
    }
    if crypt != 0 {
        return Err(Error::unsupported(src.path(), "encrypted qcow2 images are not supported"));
    }
    check_l1(src, size, cluster_bits, l1_size, l1_offset)?;
    let (mut incompat, mut header_len, mut compression_type) = (0, 72usize, "zlib".to_string());
    if version == 3 {
        if h.len() < 104 {
            return Err(Error::invalid(src.path(), "truncated qcow2 v3 header"));
        }
        incompat = be64(&h, 72);
        header_len = be32(&h, 100) as usize;
        if header_len > 104 && h.len() > 104 && h[104] == 1 {
            compression_type = "zstd".into();
        }
    }
    if incompat & INCOMPAT_DATA_FILE != 0 {
        return Err(Error::unsupported(src.path(), "qcow2 with an external data file"));
    }
    let mut warnings = Vec::new();
    if incompat & INCOMPAT_CORRUPT != 0 {
        warnings
            .push("qcow2 image is marked corrupt; run `qemu-img check -r all` on a copy".into());
    }
    let backing_format = read_extensions(&h, header_len, src.path())?;
    let backing_file = if backing_offset != 0 && backing_size > 0 {
        let raw = src.read_vec(backing_offset, backing_size.min(4096))?;
        Some(String::from_utf8_lossy(&raw).into_owned())
    } else {
        None
    };
    let cluster_size = 1u64 << cluster_bits;
    let compressed_clusters = scan_compressed(src, l1_offset, l1_size, cluster_size)?;
    let parent = match &backing_file {
        Some(name) => Some(backing(src, name, in_archive)?),
        None => None,
    };
    let mut parsed = Parsed::new(
        ImageFormat::Qcow2,
        format!("v{version}"),
        size,
        FormatDetails::Qcow2(Qcow2Details {
            version,
            cluster_size,
            backing_file,
            backing_format,
            compression_type,
            compressed_clusters,
            snapshots,
        }),
    );
    parsed.parent = parent;
    Ok(parsed.with_warnings(warnings))
}

/// Walks header extensions; returns the backing format name if present.
fn read_extensions(h: &[u8], start: usize, path: &Path) -> Result<Option<String>> {
    let mut at = start;
    let mut backing_format = None;
    while at + 8 <= h.len() {
        let (kind, len) = (be32(h, at), be32(h, at + 4) as usize);
        if kind == 0 {
            break;
        }
        let data = h.get(at + 8..at + 8 + len).ok_or_else(|| {
            Error::invalid(path, "qcow2 header extension runs past the header cluster")
        })?;
        match kind {
            EXT_BACKING_FORMAT => backing_format = Some(String::from_utf8_lossy(data).into_owned()),
            EXT_DATA_FILE => {
                return Err(Error::unsupported(path, "qcow2 with an external data file"));
            }
            _ => {}
        }
        at += 8 + len.div_ceil(8) * 8;
    }
    Ok(backing_format)
}

/// The active L1 table must be as large as the virtual size needs, no larger than qemu accepts
/// (`QCOW_MAX_L1_SIZE`, 32 MiB), and inside the file.
fn check_l1(
    src: &ByteSource,
    size: u64,
    cluster_bits: u32,
    l1_size: u64,
    l1_offset: u64,
) -> Result<()> {
    const MAX_L1_ENTRIES: u64 = (32 << 20) / 8;
    // One L2 table maps cluster_size / 8 clusters.
    let per_l1 = 1u64 << (cluster_bits + cluster_bits - 3);
    let needed = size.div_ceil(per_l1);
    let bad = |why: String| Err(Error::invalid(src.path(), format!("corrupt qcow2 header: {why}")));
    if l1_size > MAX_L1_ENTRIES {
        return bad(format!("an L1 table of {l1_size} entries (qemu accepts {MAX_L1_ENTRIES})"));
    }
    if l1_size < needed {
        return bad(format!("an L1 table of {l1_size} entries cannot map {size} bytes"));
    }
    if l1_size > 0 && l1_offset.checked_add(l1_size * 8).is_none_or(|end| end > src.len()) {
        return bad(format!(
            "the L1 table at offset {l1_offset} runs past the end of the file ({} bytes)",
            src.len()
        ));
    }
    Ok(())
}

/// Looks through the L2 tables for compressed clusters.
fn scan_compressed(
    src: &ByteSource,
    l1_offset: u64,
    l1_size: u64,
    cluster: u64,
) -> Result<Option<bool>> {
    if l1_size == 0 {
        return Ok(Some(false));
    }
    if l1_size * cluster > MAX_L2_SCAN_BYTES {
        return Ok(None);
    }
    let l1 = src.read_vec(l1_offset, (l1_size * 8) as usize)?;
    for i in 0..l1_size as usize {
        let l2_offset = be64(&l1, i * 8) & 0x00ff_ffff_ffff_fe00;
        if l2_offset == 0 {
            continue;
        }
        let l2 = src.read_vec(l2_offset, cluster as usize)?;
        if l2.chunks_exact(8).any(|e| be64(e, 0) & L2_COMPRESSED != 0) {
            return Ok(Some(true));
        }
    }
    Ok(Some(false))
}

/// The backing file `name` of an overlay: a local file, relative to the overlay's directory.
fn backing(src: &ByteSource, name: &str, in_archive: bool) -> Result<Parent> {
    if in_archive {
        return Err(Error::unsupported(src.path(), "a qcow2 overlay inside an archive"));
    }
    if name.contains(':') && !Path::new(name).exists() {
        return Err(Error::unsupported(
            src.path(),
            format!("backing file {name:?} is not a local file"),
        ));
    }
    let p = Path::new(name);
    let path: PathBuf = if p.is_absolute() {
        p.to_path_buf()
    } else {
        src.path().parent().unwrap_or(Path::new(".")).join(p)
    };
    Ok(Parent { path, context: Some(format!("backing file {name:?}")), missing: None })
}
