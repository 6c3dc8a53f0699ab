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

use crate::error::{Error, ErrorKind, Result};
use crate::image::{DiskImage, FormatDetails, ImageFormat, allocated_bytes};
use crate::io::confined_relative_path;
use crate::io::source::ByteSource;
use crate::probe::ProbeContext;
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

/// Probes a file that starts with the `KDMV` sparse header.
pub(crate) fn probe_sparse(src: &ByteSource, ctx: &mut ProbeContext) -> Result<DiskImage> {
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
    let backing = match desc.as_ref().filter(|d| d.has_parent()) {
        Some(d) => Some(Box::new(probe_parent(src, d, ctx, &mut warnings)?)),
        None => None,
    };
    let details = FormatDetails::Vmdk(details);
    let mut image =
        ctx.single_file(src, ImageFormat::Vmdk, create_type, header.capacity_bytes(), details);
    image.backing = backing;
    image.warnings = warnings;
    Ok(image)
}

/// Probes a text descriptor file and the extents it names.
pub(crate) fn probe_descriptor(src: &ByteSource, ctx: &mut ProbeContext) -> Result<DiskImage> {
    if src.len() > descriptor::MAX_DESCRIPTOR_BYTES {
        return Err(Error::invalid(src.path(), "VMDK descriptor is implausibly large"));
    }
    if ctx.in_archive(src) {
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
            Error::new(
                e.kind(),
                format!("extent {name:?} named by {}: {}", src.path().display(), e.message()),
            )
            .with_path(&path)
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
    let backing = match desc.has_parent() {
        true => Some(Box::new(probe_parent(src, &desc, ctx, &mut warnings)?)),
        false => None,
    };
    Ok(DiskImage {
        path: src.path().to_path_buf(),
        region: None,
        format: ImageFormat::Vmdk,
        subformat: desc.create_type.clone(),
        virtual_size: desc.virtual_size(),
        allocated_size: allocated_bytes(&files),
        files,
        backing,
        details: FormatDetails::Vmdk(details),
        cross_check: None,
        warnings,
    })
}

/// Finds and probes the parent named by `parentFileNameHint`. A relative hint is resolved in the
/// delta's directory (it may not climb out); an absolute hint, usual in ESXi exports
/// (`/vmfs/volumes/…/base.vmdk`), is looked up by its file name beside the delta.
fn probe_parent(
    src: &ByteSource,
    desc: &VmdkDescriptor,
    ctx: &mut ProbeContext,
    warnings: &mut Vec<String>,
) -> Result<DiskImage> {
    if ctx.in_archive(src) {
        return Err(Error::unsupported(
            src.path(),
            "a VMDK snapshot delta inside an archive is not supported",
        ));
    }
    let hint = desc.parent_file_name_hint.as_deref().ok_or_else(|| {
        Error::invalid(src.path(), "VMDK delta has a parentCID but no parentFileNameHint")
    })?;
    let dir = src.path().parent().unwrap_or(Path::new("."));
    let parent_path = if Path::new(hint).is_absolute() {
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
    let parent = ctx.probe_parent(&parent_path).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            Error::invalid(
                src.path(),
                format!(
                    "parent {:?} of this snapshot delta is missing",
                    parent_path.display().to_string()
                ),
            )
        } else {
            e
        }
    })?;
    if let (Some(want), FormatDetails::Vmdk(pd)) = (&desc.parent_cid, &parent.details)
        && let Some(got) = &pd.cid
        && !want.eq_ignore_ascii_case(got)
    {
        warnings.push(format!("parentCID {want} does not match the parent's CID {got}; the parent may have changed since the snapshot"));
    }
    Ok(parent)
}
