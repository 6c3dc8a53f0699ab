//! ISO 9660 images: the primary volume descriptor at sector 16 (ECMA-119 8.4).

use serde::Serialize;

use super::{FormatDetails, ImageFormat, Parsed};
use crate::error::Result;
use crate::io::source::{ByteSource, bytes::*};

/// Offset of the first volume descriptor (sector 16 of 2048 bytes).
pub const DESCRIPTOR_AT: u64 = 16 * 2048;
/// Standard identifier at byte 1 of every volume descriptor.
pub const STANDARD_ID: &[u8; 5] = b"CD001";

/// ISO facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IsoDetails {
    /// Volume identifier.
    pub volume_id: String,
}

/// True when `src` has an ISO 9660 volume descriptor.
pub fn detect(src: &ByteSource) -> bool {
    src.read_vec(DESCRIPTOR_AT + 1, 5).is_ok_and(|id| id == STANDARD_ID)
}

/// Parses an ISO image.
pub fn parse(src: &ByteSource) -> Result<Parsed> {
    let pvd = src.read_vec(DESCRIPTOR_AT, 2048)?;
    let volume_id = String::from_utf8_lossy(&pvd[40..72]).trim().to_string();
    let blocks = u64::from(le32(&pvd, 80));
    let block_size = u64::from(le16(&pvd, 128));
    let mut warnings = Vec::new();
    if blocks * block_size > src.len() {
        warnings.push(format!(
            "volume declares {} bytes but the file holds {}",
            blocks * block_size,
            src.len()
        ));
    }
    let details = FormatDetails::Iso(IsoDetails { volume_id });
    Ok(Parsed::new(ImageFormat::Iso, "iso9660", src.len(), details).with_warnings(warnings))
}
