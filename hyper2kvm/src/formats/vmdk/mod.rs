//! VMware VMDK: every sub-format we meet in exports.
//!
//! A VMDK is either a single sparse file (`monolithicSparse`, `streamOptimized`) carrying an
//! embedded text descriptor, or a small text descriptor naming extent files (`monolithicFlat`,
//! `twoGbMaxExtentSparse`, `twoGbMaxExtentFlat`, `vmfs`, `vmfsThin`, …). Snapshot deltas name
//! their parent with `parentFileNameHint`; the chain is probed down to its base.

pub mod descriptor;
pub mod sparse;

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{FormatDetails, ImageFormat, Parent, Parsed};
use crate::error::{Error, Result};
use crate::io::confined_relative_path;
use crate::io::source::ByteSource;
use descriptor::{ExtentKind, VmdkDescriptor};
use sparse::{SparseHeader, check_grain_tables, effective_header, embedded_descriptor};

/// Sub-formats (createType) QEMU's vmdk driver opens itself.
const QEMU_CREATE_TYPES: &[&str] = &[
    "monolithicSparse",
    "monolithicFlat",
    "twoGbMaxExtentSparse",
    "twoGbMaxExtentFlat",
    "streamOptimized",
    "vmfs",
    "vmfsSparse",
    "seSparse",
];

/// One extent as found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtentInfo {
    /// Storage kind.
    pub kind: ExtentKind,
    /// Size in bytes.
    pub size: u64,
    /// The extent's file (absent for `ZERO`).
    pub path: Option<PathBuf>,
    /// Byte offset of the data in a flat file.
    pub offset: u64,
    /// Allocated grains of a sparse extent, when its tables were walked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocated_grains: Option<u64>,
}

/// VMDK facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmdkDetails {
    /// `createType`.
    pub create_type: String,
    /// Content id.
    pub cid: Option<String>,
    /// Parent content id, for deltas.
    pub parent_cid: Option<String>,
    /// `parentFileNameHint`, as written.
    pub parent_file_name_hint: Option<String>,
    /// `ddb.adapterType` (ide, lsilogic, buslogic, lsisas1068, pvscsi).
    pub adapter_type: Option<String>,
    /// `ddb.virtualHWVersion`.
    pub hw_version: Option<String>,
    /// True for compressed (stream-optimized) grains.
    pub compressed: bool,
    /// The extents.
    pub extents: Vec<ExtentInfo>,
}

impl VmdkDetails {
    /// True when QEMU's vmdk driver accepts this createType.
    pub fn qemu_opens_directly(&self) -> bool {
        QEMU_CREATE_TYPES.contains(&self.create_type.as_str())
    }

    /// True when we can have the disk read: by QEMU's vmdk driver, or as the bytes of its
    /// single flat extent.
    pub fn readable(&self) -> bool {
        self.qemu_opens_directly() || (self.extents.len() == 1 && self.extents[0].kind.is_flat())
    }
}

fn details_from(desc: Option<&VmdkDescriptor>, create_type: String) -> VmdkDetails {
    VmdkDetails {
        create_type,
        cid: desc.and_then(|d| d.cid.clone()),
        parent_cid: desc.and_then(|d| d.parent_cid.clone()),
        parent_file_name_hint: desc.and_then(|d| d.parent_file_name_hint.clone()),
        adapter_type: desc.and_then(|d| d.ddb.get("ddb.adapterType").cloned()),
        hw_version: desc.and_then(|d| d.ddb.get("ddb.virtualHWVersion").cloned()),
        compressed: false,
        extents: Vec::new(),
    }
}

/// Parses a file that starts with the `KDMV` sparse header.
pub fn parse_sparse(src: &ByteSource, in_archive: bool) -> Result<Parsed> {
    let header = effective_header(src)?;
    let desc = match embedded_descriptor(src, &header)? {
        Some(text) => Some(VmdkDescriptor::parse(src.path(), &text)?),
        None => None,
    };
    let create_type = desc.as_ref().map(|d| d.create_type.clone()).unwrap_or_else(|| {
        if header.is_compressed() { "streamOptimized" } else { "monolithicSparse" }.to_string()
    });
    let stats = check_grain_tables(src, &header)?;
    let mut details = details_from(desc.as_ref(), create_type.clone());
    details.compressed = header.is_compressed();
    details.extents.push(ExtentInfo {
        kind: ExtentKind::Sparse,
        size: header.capacity_bytes(),
        path: Some(src.path().to_path_buf()),
        offset: 0,
        allocated_grains: stats.complete.then_some(stats.allocated_grains),
    });
    let mut warnings = Vec::new();
    if desc.is_none() {
        warnings
            .push("sparse extent has no embedded descriptor; treated as monolithicSparse".into());
    }
    let parent = match desc.as_ref().filter(|d| d.has_parent()) {
        Some(d) => Some(parent_of(src, d, in_archive, &mut warnings)?),
        None => None,
    };
    let details = FormatDetails::Vmdk(details);
    let mut parsed = Parsed::new(ImageFormat::Vmdk, create_type, header.capacity_bytes(), details);
    parsed.parent = parent;
    Ok(parsed.with_warnings(warnings))
}

/// Parses a text descriptor file and checks the extents it names.
pub fn parse_descriptor(src: &ByteSource, in_archive: bool) -> Result<Parsed> {
    if src.len() > descriptor::MAX_DESCRIPTOR_BYTES {
        return Err(Error::invalid(src.path(), "VMDK descriptor is implausibly large"));
    }
    if in_archive {
        return Err(Error::unsupported(
            src.path(),
            "a VMDK descriptor with separate extent files inside an archive is not supported",
        ));
    }
    let text = String::from_utf8_lossy(&src.read_vec(0, src.len() as usize)?).into_owned();
    let desc = VmdkDescriptor::parse(src.path(), &text)?;
    let dir = src.path().parent().unwrap_or(Path::new("."));
    let mut details = details_from(Some(&desc), desc.create_type.clone());
    let mut files = vec![src.path().to_path_buf()];
    for line in &desc.extents {
        let size = line.sectors * 512;
        let offset = line.offset_sectors * 512;
        let Some(name) = &line.file else {
            details.extents.push(ExtentInfo {
                kind: line.kind,
                size,
                path: None,
                offset,
                allocated_grains: None,
            });
            continue;
        };
        let rel = confined_relative_path(src.path(), "extent file", name)?;
        let path = dir.join(rel);
        let extent = ByteSource::open(&path).map_err(|e| {
            let why = format!("extent {name:?} named by {}: {}", src.path().display(), e.message());
            Error::new(e.kind(), why).with_path(&path).with_source(e)
        })?;
        let mut allocated_grains = None;
        match line.kind {
            ExtentKind::Flat | ExtentKind::Vmfs => {
                if extent.len() < offset + size {
                    return Err(Error::invalid(
                        &path,
                        format!(
                            "truncated flat extent: the descriptor {} declares {} bytes at offset {offset}, the file holds {}",
                            src.path().display(),
                            size,
                            extent.len()
                        ),
                    ));
                }
            }
            ExtentKind::Sparse => {
                let h: SparseHeader = effective_header(&extent)?;
                if h.capacity_bytes() < size {
                    return Err(Error::invalid(
                        &path,
                        format!(
                            "sparse extent holds {} bytes but the descriptor declares {size}",
                            h.capacity_bytes()
                        ),
                    ));
                }
                details.compressed |= h.is_compressed();
                let stats = check_grain_tables(&extent, &h)?;
                allocated_grains = stats.complete.then_some(stats.allocated_grains);
            }
            ExtentKind::Vmfssparse
            | ExtentKind::Vmfsrdm
            | ExtentKind::Vmfsraw
            | ExtentKind::Zero => {
                return Err(Error::unsupported(
                    src.path(),
                    format!("extent type {:?} is not supported", line.kind),
                ));
            }
        }
        details.extents.push(ExtentInfo {
            kind: line.kind,
            size,
            path: Some(path.clone()),
            offset,
            allocated_grains,
        });
        files.push(path);
    }
    if !details.readable() {
        return Err(Error::unsupported(
            src.path(),
            format!("createType {:?} with these extents is not supported", desc.create_type),
        ));
    }
    let mut warnings = Vec::new();
    let parent = match desc.has_parent() {
        true => Some(parent_of(src, &desc, in_archive, &mut warnings)?),
        false => None,
    };
    Ok(Parsed {
        format: ImageFormat::Vmdk,
        subformat: desc.create_type.clone(),
        virtual_size: desc.virtual_size(),
        details: FormatDetails::Vmdk(details),
        files: Some(files),
        parent,
        warnings,
    })
}

/// The parent named by `parentFileNameHint`. A relative hint is resolved in the delta's
/// directory (it may not climb out); an absolute hint, usual in ESXi exports
/// (`/vmfs/volumes/…/base.vmdk`), is looked up by its file name beside the delta.
fn parent_of(
    src: &ByteSource,
    desc: &VmdkDescriptor,
    in_archive: bool,
    warnings: &mut Vec<String>,
) -> Result<Parent> {
    if in_archive {
        return Err(Error::unsupported(
            src.path(),
            "a VMDK snapshot delta inside an archive is not supported",
        ));
    }
    let hint = desc.parent_file_name_hint.as_deref().ok_or_else(|| {
        Error::invalid(src.path(), "VMDK delta has a parentCID but no parentFileNameHint")
    })?;
    let dir = src.path().parent().unwrap_or(Path::new("."));
    let path = if Path::new(hint).is_absolute() {
        let name = Path::new(hint).file_name().ok_or_else(|| {
            Error::invalid(src.path(), format!("parentFileNameHint {hint:?} has no file name"))
        })?;
        warnings.push(format!(
            "absolute parentFileNameHint {hint:?} resolved to {:?} beside the delta",
            name
        ));
        dir.join(name)
    } else {
        dir.join(confined_relative_path(src.path(), "parentFileNameHint", hint)?)
    };
    let missing =
        format!("parent {:?} of this snapshot delta is missing", path.display().to_string());
    Ok(Parent { path, context: None, missing: Some(missing) })
}

/// A delta's parent whose `CID` is not the delta's `parentCID` may have changed since the
/// snapshot: worth a warning, not a refusal.
pub(super) fn parent_warning(child: &VmdkDetails, parent: &VmdkDetails) -> Option<String> {
    let (want, got) = (child.parent_cid.as_ref()?, parent.cid.as_ref()?);
    (!want.eq_ignore_ascii_case(got)).then(|| {
        format!("parentCID {want} does not match the parent's CID {got}; the parent may have changed since the snapshot")
    })
}
