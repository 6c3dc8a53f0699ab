//! Raw images (AMI exports, `dd` copies): anything no other format claims. We report the
//! partition table so a user can tell a disk from stray data.

use serde::Serialize;

use super::{FormatDetails, ImageFormat, Parsed};
use crate::error::{Error, Result};
use crate::io::source::ByteSource;

/// GPT header signature at LBA 1 (UEFI 2.x, 5.3.2).
const GPT_SIGNATURE: &[u8; 8] = b"EFI PART";

/// Raw-image facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawDetails {
    /// `gpt`, `mbr` or `none`.
    pub partition_table: String,
}

/// Parses a raw image (what is no other format).
pub fn parse(src: &ByteSource) -> Result<Parsed> {
    if src.is_empty() {
        return Err(Error::invalid(src.path(), "empty file: not a disk image"));
    }
    let head = src.read_up_to(0, 1024)?;
    let partition_table = if head.len() >= 520 && &head[512..520] == GPT_SIGNATURE {
        "gpt"
    } else if head.len() >= 512 && head[510] == 0x55 && head[511] == 0xaa {
        "mbr"
    } else {
        "none"
    };
    let mut warnings = Vec::new();
    if !src.len().is_multiple_of(512) {
        warnings.push(format!("size {} is not a multiple of 512 bytes", src.len()));
    }
    if partition_table == "none" {
        warnings.push(
            "no partition table found; not recognised as any image format, treated as raw".into(),
        );
    }
    let details = FormatDetails::Raw(RawDetails { partition_table: partition_table.into() });
    Ok(Parsed::new(ImageFormat::Raw, partition_table, src.len(), details).with_warnings(warnings))
}
