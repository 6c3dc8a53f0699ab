//! What probing tells about a disk image: [`DiskImage`] and its [`ImageFormat`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, ErrorKind};
use crate::formats::{iso::IsoDetails, raw::RawDetails, vmdk::VmdkDetails};
use crate::formats::{qcow2::Qcow2Details, vdi::VdiDetails, vhd::VhdDetails, vhdx::VhdxDetails};

/// A disk image format, identified from content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// VMware VMDK (any sub-format).
    Vmdk,
    /// Microsoft VHD (Virtual PC).
    Vhd,
    /// Microsoft VHDX.
    Vhdx,
    /// QEMU copy-on-write v2/v3.
    Qcow2,
    /// VirtualBox VDI.
    Vdi,
    /// Raw bytes (AMI, `dd` image, …).
    Raw,
    /// ISO 9660 CD/DVD image.
    Iso,
}

impl ImageFormat {
    /// Every format, in the order of their names.
    pub const ALL: [ImageFormat; 7] = [
        ImageFormat::Vmdk,
        ImageFormat::Vhd,
        ImageFormat::Vhdx,
        ImageFormat::Qcow2,
        ImageFormat::Vdi,
        ImageFormat::Raw,
        ImageFormat::Iso,
    ];

    /// Our name for the format (`vmdk`, `vhd`, …).
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Vmdk => "vmdk",
            ImageFormat::Vhd => "vhd",
            ImageFormat::Vhdx => "vhdx",
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Vdi => "vdi",
            ImageFormat::Raw => "raw",
            ImageFormat::Iso => "iso",
        }
    }

    /// The name of QEMU's block driver for the format.
    pub fn qemu_driver(self) -> &'static str {
        match self {
            ImageFormat::Vhd => "vpc",
            ImageFormat::Iso => "raw",
            other => other.name(),
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ImageFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let lower = s.to_ascii_lowercase();
        let lower = if lower == "vpc" { "vhd".to_string() } else { lower };
        ImageFormat::ALL.into_iter().find(|f| f.name() == lower).ok_or_else(|| {
            Error::new(ErrorKind::InvalidInput, format!("unknown image format {s:?}"))
        })
    }
}

/// A byte range of a larger file holding the image (a disk inside an uncompressed OVA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Region {
    /// Offset of the first byte.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
}

/// Format-specific facts found while probing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FormatDetails {
    /// VMDK descriptor and extents.
    Vmdk(VmdkDetails),
    /// VHD footer and dynamic header.
    Vhd(VhdDetails),
    /// VHDX metadata.
    Vhdx(VhdxDetails),
    /// qcow2 header.
    Qcow2(Qcow2Details),
    /// VDI header.
    Vdi(VdiDetails),
    /// Partition table of a raw image.
    Raw(RawDetails),
    /// ISO 9660 primary volume descriptor.
    Iso(IsoDetails),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in ImageFormat::ALL {
            assert_eq!(f.to_string().parse::<ImageFormat>().unwrap(), f);
        }
        assert_eq!("VPC".parse::<ImageFormat>().unwrap(), ImageFormat::Vhd);
        assert!("floppy".parse::<ImageFormat>().is_err());
        assert_eq!(ImageFormat::Vhd.qemu_driver(), "vpc");
    }
}
