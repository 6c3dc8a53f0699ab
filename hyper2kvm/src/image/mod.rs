//! What probing tells about a disk image: [`DiskImage`] (a file, or a byte range of an OVA, in
//! one of the [`ImageFormat`]s, with its chain of parents), and [`probe`](probe_disk) — the
//! only code that knows every format: it tests their magics in a fixed order, asks the format's
//! parser, follows parents, and asks `qemu-img` for a second opinion.

mod detect;
mod probe;
mod spec;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub(crate) use detect::{Detected, HEAD_BYTES, detect};
pub use probe::{MAX_CHAIN_DEPTH, ProbeOptions, cross_check, probe_disk};
pub(crate) use probe::{ProbeContext, probe_disk_source};

pub use crate::formats::{FormatDetails, ImageFormat};

/// A byte range of a larger file holding the image (a disk inside an uncompressed OVA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Region {
    /// Offset of the first byte.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
}

/// How `qemu-img info` saw the same image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrossCheck {
    /// Format reported by qemu-img.
    pub format: String,
    /// Virtual size reported by qemu-img.
    pub virtual_size: u64,
    /// True when format and virtual size match what our own parser found.
    pub agrees: bool,
}

/// A probed disk image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskImage {
    /// The file that was probed (the descriptor, for multi-file VMDKs; the OVA for a member).
    pub path: PathBuf,
    /// Where in `path` the image lies, when it is part of a larger file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    /// The format.
    pub format: ImageFormat,
    /// The sub-format (`monolithicSparse`, `dynamic`, `v3`, …).
    pub subformat: String,
    /// Size of the disk as the guest sees it, in bytes.
    pub virtual_size: u64,
    /// Bytes the image occupies on the host (allocated blocks of its files).
    pub allocated_size: u64,
    /// Every file that makes up this image (not counting its parents).
    pub files: Vec<PathBuf>,
    /// The parent (backing) image of a delta or overlay, itself probed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backing: Option<Box<DiskImage>>,
    /// Format-specific facts.
    pub details: FormatDetails,
    /// The result of the `qemu-img info` cross-check, when one was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_check: Option<CrossCheck>,
    /// Things worth telling the user that are not errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl DiskImage {
    /// The chain from this image down to its base, this image first.
    pub fn chain(&self) -> impl Iterator<Item = &DiskImage> {
        std::iter::successors(Some(self), |d| d.backing.as_deref())
    }

    /// Every file of the image and its parents.
    pub fn all_files(&self) -> Vec<&Path> {
        self.chain().flat_map(|d| d.files.iter().map(PathBuf::as_path)).collect()
    }
}

/// Bytes allocated on the host for `files` (sum of `st_blocks * 512`).
pub fn allocated_bytes<'a>(files: impl IntoIterator<Item = &'a PathBuf>) -> u64 {
    use std::os::unix::fs::MetadataExt;
    files.into_iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.blocks() * 512).sum()
}
