//! Microsoft VHDX: file identifier, the two headers, the region table and the metadata region.
//!
//! Layout per "[MS-VHDX]" v20160714: file type identifier at 0, headers at 64 KiB and 128 KiB
//! (the one with a valid CRC-32C and the higher sequence number is current), region table at
//! 192 KiB, and metadata items identified by GUIDs. All integers are little-endian.

use serde::Serialize;

use super::{FormatDetails, ImageFormat, Parsed};
use crate::error::{Error, Result};
use crate::io::source::{ByteSource, bytes::*};

/// File type identifier signature (MS-VHDX 2.2.1).
pub const FILE_SIGNATURE: &[u8; 8] = b"vhdxfile";
const HEADER_SIGNATURE: &[u8; 4] = b"head";
const REGION_SIGNATURE: &[u8; 4] = b"regi";
const METADATA_SIGNATURE: &[u8; 8] = b"metadata";
const HEADER_OFFSETS: [u64; 2] = [64 << 10, 128 << 10];
const REGION_TABLE_OFFSET: u64 = 192 << 10;
const HEADER_SIZE: usize = 4096;
const REGION_TABLE_SIZE: usize = 64 << 10;
/// Metadata region GUID 8B7CA206-4790-4B9A-B8FE-575F050F886E, on-disk byte order.
const GUID_METADATA_REGION: [u8; 16] =
    guid(0x8B7CA206, 0x4790, 0x4B9A, [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E]);
/// File parameters item CAA16737-FA36-4D43-B3B6-33F0AA44E76B.
const GUID_FILE_PARAMETERS: [u8; 16] =
    guid(0xCAA16737, 0xFA36, 0x4D43, [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B]);
/// Virtual disk size item 2FA54224-CD1B-4876-B211-5DBED83BF4B8.
const GUID_VIRTUAL_DISK_SIZE: [u8; 16] =
    guid(0x2FA54224, 0xCD1B, 0x4876, [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8]);
/// Logical sector size item 8141BF1D-A96F-4709-BA47-F233A8FAAB5F.
const GUID_LOGICAL_SECTOR: [u8; 16] =
    guid(0x8141BF1D, 0xA96F, 0x4709, [0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F]);

/// A GUID in its mixed-endian on-disk form.
const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]
}

/// VHDX facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VhdxDetails {
    /// Payload block size.
    pub block_size: u32,
    /// Logical sector size (512 or 4096).
    pub logical_sector_size: u32,
    /// True for a differencing disk.
    pub has_parent: bool,
    /// Creator string from the file identifier.
    pub creator: String,
}

/// CRC-32C (Castagnoli), as VHDX checksums use.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

fn crc_ok(block: &[u8]) -> bool {
    let stored = le32(block, 4);
    let mut copy = block.to_vec();
    copy[4..8].fill(0);
    crc32c(&copy) == stored
}

/// Parses a VHDX file.
pub fn parse(src: &ByteSource) -> Result<Parsed> {
    let ident = src.read_vec(0, 520)?;
    let creator = String::from_utf16_lossy(
        &ident[8..520]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect::<Vec<_>>(),
    );
    let mut best: Option<u64> = None;
    for at in HEADER_OFFSETS {
        let h = src.read_vec(at, HEADER_SIZE)?;
        if &h[0..4] == HEADER_SIGNATURE && crc_ok(&h) {
            let seq = le64(&h, 8);
            best = Some(best.map_or(seq, |b: u64| b.max(seq)));
        }
    }
    if best.is_none() {
        return Err(Error::invalid(
            src.path(),
            "corrupt VHDX: neither header has a valid signature and checksum",
        ));
    }
    let rt = src.read_vec(REGION_TABLE_OFFSET, REGION_TABLE_SIZE)?;
    if &rt[0..4] != REGION_SIGNATURE || !crc_ok(&rt) {
        return Err(Error::invalid(src.path(), "corrupt VHDX: bad region table")
            .with_offset(src.base() + REGION_TABLE_OFFSET));
    }
    let count = le32(&rt, 8) as usize;
    let metadata = (0..count.min(2047))
        .map(|i| 16 + i * 32)
        .find(|&e| rt[e..e + 16] == GUID_METADATA_REGION)
        .map(|e| (le64(&rt, e + 16), le32(&rt, e + 24)))
        .ok_or_else(|| Error::invalid(src.path(), "corrupt VHDX: no metadata region"))?;
    let md = src.read_vec(metadata.0, metadata.1 as usize)?;
    if &md[0..8] != METADATA_SIGNATURE {
        return Err(Error::invalid(src.path(), "corrupt VHDX: bad metadata table")
            .with_offset(src.base() + metadata.0));
    }
    let entries = le16(&md, 10) as usize;
    let item = |id: &[u8; 16], len: usize| -> Result<&[u8]> {
        (0..entries.min(2047))
            .map(|i| 32 + i * 32)
            .find(|&e| md.get(e..e + 16) == Some(&id[..]))
            .and_then(|e| {
                let off = le32(&md, e + 16) as usize;
                md.get(off..off + len)
            })
            .ok_or_else(|| {
                Error::invalid(src.path(), "corrupt VHDX: a required metadata item is missing")
            })
    };
    let params = item(&GUID_FILE_PARAMETERS, 8)?;
    let (block_size, flags) = (le32(params, 0), le32(params, 4));
    let (leave_allocated, has_parent) = (flags & 1 != 0, flags & 2 != 0);
    let virtual_size = le64(item(&GUID_VIRTUAL_DISK_SIZE, 8)?, 0);
    let logical_sector_size = le32(item(&GUID_LOGICAL_SECTOR, 4)?, 0);
    if has_parent {
        return Err(Error::unsupported(
            src.path(),
            "differencing VHDX disks are not supported; merge the chain in Hyper-V first",
        ));
    }
    // "LeaveBlockAllocated" is how a fixed VHDX marks that its blocks are all allocated.
    let subformat = if leave_allocated { "fixed" } else { "dynamic" };
    let details =
        FormatDetails::Vhdx(VhdxDetails { block_size, logical_sector_size, has_parent, creator });
    Ok(Parsed::new(ImageFormat::Vhdx, subformat, virtual_size, details))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn guid_layout_matches_disk() {
        assert_eq!(&GUID_METADATA_REGION[..4], &[0x06, 0xA2, 0x7C, 0x8B]);
    }
}
