//! ISO 9660 images: the primary volume descriptor at sector 16 (ECMA-119 8.4).

use serde::Serialize;

use crate::error::Result;
use crate::image::{DiskImage, FormatDetails, ImageFormat};
use crate::io::source::{ByteSource, bytes::*};
use crate::probe::ProbeContext;

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

/// Probes an ISO image.
pub(crate) fn probe(src: &ByteSource, ctx: &mut ProbeContext) -> Result<DiskImage> {
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
    let mut image = ctx.single_file(
        src,
        ImageFormat::Iso,
        "iso9660",
        src.len(),
        FormatDetails::Iso(IsoDetails { volume_id }),
    );
    image.warnings = warnings;
    Ok(image)
}
