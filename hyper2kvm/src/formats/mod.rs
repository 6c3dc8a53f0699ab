//! One module per disk image format, each parsing its on-disk headers with our own code (magic
//! numbers are named constants citing the specification): `parse(&ByteSource, in_archive)`
//! returns a [`Parsed`] — the format, its virtual size and [`FormatDetails`], and the parent
//! of a delta or overlay for the caller to follow. The formats know nothing above them
//! ([`crate::image`] turns a `Parsed` into a `DiskImage` and follows the chain); [`container`]
//! recognises the archives and VM descriptions that are not disk images.

pub mod container;
pub mod iso;
pub mod qcow2;
pub mod raw;
pub mod vdi;
pub mod vhd;
pub mod vhdx;
pub mod vmdk;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, ErrorKind};
use iso::IsoDetails;
use qcow2::Qcow2Details;
use raw::RawDetails;
use vdi::VdiDetails;
use vhd::VhdDetails;
use vhdx::VhdxDetails;
use vmdk::VmdkDetails;

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

/// The parent of a delta or overlay, named by the child's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    /// Where it is (resolved against the child's directory, confined where the format says).
    pub path: PathBuf,
    /// Errors met on the parent are reported about the child, prefixed with this
    /// (`backing file "base.qcow2"`); `None` keeps them as they are.
    pub context: Option<String>,
    /// What a missing parent means, said about the child (replaces "not found").
    pub missing: Option<String>,
}

/// What a format's parser found in one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The format.
    pub format: ImageFormat,
    /// The sub-format (`monolithicSparse`, `dynamic`, `v3`, …).
    pub subformat: String,
    /// Size of the disk as the guest sees it, in bytes.
    pub virtual_size: u64,
    /// Format-specific facts.
    pub details: FormatDetails,
    /// Every file of the image when it is more than the parsed one (a descriptor's extents).
    pub files: Option<Vec<PathBuf>>,
    /// The parent to follow.
    pub parent: Option<Parent>,
    /// Things worth telling the user that are not errors.
    pub warnings: Vec<String>,
}

impl Parsed {
    /// A single-file image without a parent or warnings.
    pub fn new(
        format: ImageFormat,
        subformat: impl Into<String>,
        virtual_size: u64,
        details: FormatDetails,
    ) -> Parsed {
        Parsed {
            format,
            subformat: subformat.into(),
            virtual_size,
            details,
            files: None,
            parent: None,
            warnings: Vec::new(),
        }
    }

    /// The same with `warnings`.
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Parsed {
        self.warnings = warnings;
        self
    }
}

/// What the child's format says of its probed parent (a warning), e.g. a VMDK delta whose
/// `parentCID` is not the parent's `CID`.
pub fn parent_warning(child: &FormatDetails, parent: &FormatDetails) -> Option<String> {
    match (child, parent) {
        (FormatDetails::Vmdk(c), FormatDetails::Vmdk(p)) => vmdk::parent_warning(c, p),
        _ => None,
    }
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
