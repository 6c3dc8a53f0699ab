//! VirtualBox VDI: the pre-header text, the binary header (version 1.1) and the block map.
//!
//! Offsets per VirtualBox `VDICore.h` (`VDIHEADER1PLUS`), little-endian; the header starts at
//! byte 64 after the 64-byte "<<< … Disk Image >>>" text.

use serde::Serialize;

use super::{FormatDetails, ImageFormat, Parsed};
use crate::error::{Error, Result};
use crate::io::source::{ByteSource, bytes::*};

/// Signature at offset 0x40.
pub const SIGNATURE: u32 = 0xbeda_107f;
const SIGNATURE_AT: usize = 0x40;
const IMAGE_TYPE_AT: usize = 0x4c;
const OFFSET_BMAP_AT: usize = 0x154;
const OFFSET_DATA_AT: usize = 0x158;
const DISK_SIZE_AT: usize = 0x170;
const BLOCK_SIZE_AT: usize = 0x178;
const BLOCKS_AT: usize = 0x180;
const BLOCKS_ALLOCATED_AT: usize = 0x184;
/// Block map entries at or above this mean "not allocated" (free or zero).
const BLOCK_UNALLOCATED: u32 = 0xffff_fffe;

/// VDI facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VdiDetails {
    /// `dynamic` (normal) or `fixed`.
    pub image_type: String,
    /// Block size in bytes.
    pub block_size: u32,
    /// Blocks with data.
    pub blocks_allocated: u32,
}

/// True when `head` carries the VDI signature.
pub fn detect(head: &[u8]) -> bool {
    head.len() >= SIGNATURE_AT + 4 && le32(head, SIGNATURE_AT) == SIGNATURE
}

/// Parses a VDI file.
pub fn parse(src: &ByteSource) -> Result<Parsed> {
    let h = src.read_vec(0, 0x200)?;
    let image_type = match le32(&h, IMAGE_TYPE_AT) {
        1 => "dynamic",
        2 => "fixed",
        3 | 4 => {
            return Err(Error::unsupported(
                src.path(),
                "VDI undo and differencing images are not supported; clone the disk in VirtualBox first",
            ));
        }
        t => return Err(Error::invalid(src.path(), format!("unknown VDI image type {t}"))),
    };
    let (bmap, data) = (u64::from(le32(&h, OFFSET_BMAP_AT)), u64::from(le32(&h, OFFSET_DATA_AT)));
    let disk_size = le64(&h, DISK_SIZE_AT);
    let block_size = le32(&h, BLOCK_SIZE_AT);
    let blocks = le32(&h, BLOCKS_AT);
    let allocated = le32(&h, BLOCKS_ALLOCATED_AT);
    if block_size == 0 || u64::from(blocks) * u64::from(block_size) < disk_size {
        return Err(Error::invalid(
            src.path(),
            "corrupt VDI header: the blocks do not cover the disk",
        ));
    }
    let map_len = u64::from(blocks) * 4;
    if bmap.checked_add(map_len).is_none_or(|end| end > src.len()) {
        return Err(Error::invalid(
            src.path(),
            format!(
                "truncated VDI: the block map of {blocks} entries at offset {bmap} needs {map_len} bytes, the file holds {}",
                src.len()
            ),
        ));
    }
    let map = src.read_vec(bmap, map_len as usize).map_err(|e| {
        let why = format!("truncated VDI: block map unreadable ({})", e.message());
        Error::invalid(src.path(), why).with_source(e)
    })?;
    for i in 0..blocks as usize {
        let b = le32(&map, i * 4);
        if b < BLOCK_UNALLOCATED && b >= allocated {
            return Err(Error::invalid(
                src.path(),
                format!("corrupt VDI block map: entry {i} names block {b} of {allocated}"),
            )
            .with_offset(src.base() + bmap + i as u64 * 4));
        }
    }
    let need = data + u64::from(allocated) * u64::from(block_size);
    if src.len() < need {
        return Err(Error::invalid(
            src.path(),
            format!(
                "truncated VDI: {allocated} blocks need {need} bytes, the file holds {}",
                src.len()
            ),
        ));
    }
    let details = FormatDetails::Vdi(VdiDetails {
        image_type: image_type.into(),
        block_size,
        blocks_allocated: allocated,
    });
    Ok(Parsed::new(ImageFormat::Vdi, image_type, disk_size, details))
}
