//! Microsoft VHD (Virtual PC / Hyper-V gen 1): fixed, dynamic and differencing disks.
//!
//! Layout per "Virtual Hard Disk Image Format Specification" 1.0: a 512-byte big-endian footer
//! at the end of the file (copied at the start of dynamic disks), and for dynamic and
//! differencing disks a 1024-byte dynamic header, a block allocation table (BAT), and for
//! differencing disks parent locators naming the parent.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{FormatDetails, ImageFormat, Parent, Parsed};
use crate::error::{Error, Result};
use crate::io::confined_relative_path;
use crate::io::source::{ByteSource, bytes::*};

/// Footer cookie (spec: "Hard Disk Footer Format", Cookie).
pub const FOOTER_COOKIE: &[u8; 8] = b"conectix";
/// Dynamic header cookie (spec: "Dynamic Disk Header Format", Cookie).
pub const DYNAMIC_COOKIE: &[u8; 8] = b"cxsparse";
/// Footer size.
pub const FOOTER_SIZE: u64 = 512;
const FOOTER_CHECKSUM_AT: usize = 64;
const DYNAMIC_CHECKSUM_AT: usize = 36;
const DISK_TYPE_FIXED: u32 = 2;
const DISK_TYPE_DYNAMIC: u32 = 3;
const DISK_TYPE_DIFFERENCING: u32 = 4;
/// Parent locator platform code: relative Windows path, UTF-16LE.
const PLATFORM_W2RU: &[u8; 4] = b"W2ru";
/// Parent locator platform code: absolute Windows path, UTF-16LE.
const PLATFORM_W2KU: &[u8; 4] = b"W2ku";
/// BAT entry for an unallocated block.
pub const BAT_UNUSED: u32 = 0xffff_ffff;

/// VHD facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VhdDetails {
    /// `fixed`, `dynamic` or `differencing`.
    pub disk_type: String,
    /// Creator application (`vpc `, `win `, `qemu`, `d2v `, …).
    pub creator_app: String,
    /// Size field of the footer.
    pub current_size: u64,
    /// Size from the CHS geometry.
    pub geometry_size: u64,
    /// Block size of dynamic and differencing disks.
    pub block_size: Option<u32>,
    /// Offset of the block allocation table.
    pub bat_offset: Option<u64>,
    /// Entries in the block allocation table.
    pub max_table_entries: Option<u32>,
    /// Parent's name as stored in the dynamic header.
    pub parent_name: Option<String>,
}

/// The one's complement of the byte sum with the checksum field taken as zero
/// (spec: "Checksum").
pub fn checksum(block: &[u8], checksum_at: usize) -> u32 {
    let sum = block
        .iter()
        .enumerate()
        .filter(|(i, _)| !(checksum_at..checksum_at + 4).contains(i))
        .fold(0u32, |acc, (_, b)| acc.wrapping_add(u32::from(*b)));
    !sum
}

/// True when `src` has a VHD footer at its end or a footer copy at its start.
pub fn detect(src: &ByteSource, head: &[u8]) -> bool {
    head.starts_with(FOOTER_COOKIE)
        || (src.len() >= FOOTER_SIZE
            && src.read_vec(src.len() - FOOTER_SIZE, 8).is_ok_and(|t| t == FOOTER_COOKIE))
}

fn read_footer(src: &ByteSource) -> Result<Vec<u8>> {
    let len = src.len();
    let (footer, at) = if len >= FOOTER_SIZE && src.read_vec(len - FOOTER_SIZE, 8)? == FOOTER_COOKIE
    {
        (src.read_vec(len - FOOTER_SIZE, FOOTER_SIZE as usize)?, len - FOOTER_SIZE)
    } else {
        // A dynamic disk whose tail was lost still has the copy at offset 0.
        return Err(Error::invalid(
            src.path(),
            "truncated VHD: the footer at the end of the file is missing",
        ));
    };
    let stored = be32(&footer, FOOTER_CHECKSUM_AT);
    let computed = checksum(&footer, FOOTER_CHECKSUM_AT);
    if stored != computed {
        return Err(Error::invalid(
            src.path(),
            format!("corrupt VHD footer: checksum is {stored:#010x}, the footer's bytes give {computed:#010x}"),
        )
        .with_offset(src.base() + at + FOOTER_CHECKSUM_AT as u64));
    }
    Ok(footer)
}

/// Parses a VHD file; a differencing disk names its parent.
pub fn parse(src: &ByteSource) -> Result<Parsed> {
    let footer = read_footer(src)?;
    let disk_type = be32(&footer, 60);
    let creator_app = String::from_utf8_lossy(&footer[28..32]).into_owned();
    let current_size = be64(&footer, 48);
    let (cyl, heads, spt) =
        (u64::from(be32(&footer, 56) >> 16), u64::from(footer[58]), u64::from(footer[59]));
    let geometry_size = cyl * heads * spt * 512;
    // Virtual PC and old QEMU sized disks by their CHS geometry; everyone else uses the size
    // field, as does anything whose geometry is the maximum (the size would not fit CHS).
    let max_geometry = cyl == 65535 && heads == 16 && spt == 255;
    let virtual_size = if matches!(creator_app.as_str(), "vpc " | "qemu") && !max_geometry {
        geometry_size
    } else {
        current_size
    };
    let mut details = VhdDetails {
        disk_type: String::new(),
        creator_app,
        current_size,
        geometry_size,
        block_size: None,
        bat_offset: None,
        max_table_entries: None,
        parent_name: None,
    };
    let mut parent = None;
    match disk_type {
        DISK_TYPE_FIXED => {
            details.disk_type = "fixed".into();
            if src.len() < current_size + FOOTER_SIZE {
                return Err(Error::invalid(
                    src.path(),
                    format!(
                        "truncated fixed VHD: the footer declares {current_size} bytes of data, the file holds {}",
                        src.len() - FOOTER_SIZE
                    ),
                ));
            }
        }
        DISK_TYPE_DYNAMIC | DISK_TYPE_DIFFERENCING => {
            let data_offset = be64(&footer, 16);
            let dynh = src.read_vec(data_offset, 1024).map_err(|e| {
                let why = format!("VHD dynamic header unreadable: {}", e.message());
                Error::invalid(src.path(), why).with_source(e)
            })?;
            if &dynh[0..8] != DYNAMIC_COOKIE {
                return Err(Error::invalid(
                    src.path(),
                    "corrupt VHD: no dynamic header (cxsparse) where the footer points",
                )
                .with_offset(src.base() + data_offset));
            }
            let stored = be32(&dynh, DYNAMIC_CHECKSUM_AT);
            if stored != checksum(&dynh, DYNAMIC_CHECKSUM_AT) {
                return Err(Error::invalid(
                    src.path(),
                    "corrupt VHD dynamic header: checksum mismatch",
                )
                .with_offset(src.base() + data_offset));
            }
            let bat_offset = be64(&dynh, 16);
            let entries = be32(&dynh, 28);
            let block_size = be32(&dynh, 32);
            if block_size == 0 || !block_size.is_power_of_two() || !block_size.is_multiple_of(512) {
                return Err(Error::invalid(
                    src.path(),
                    format!("invalid VHD block size {block_size}"),
                ));
            }
            if u64::from(entries) * u64::from(block_size) < current_size {
                return Err(Error::invalid(
                    src.path(),
                    "corrupt VHD: the block table does not cover the disk",
                ));
            }
            check_bat(src, bat_offset, entries, block_size)?;
            details.block_size = Some(block_size);
            details.bat_offset = Some(bat_offset);
            details.max_table_entries = Some(entries);
            if disk_type == DISK_TYPE_DYNAMIC {
                details.disk_type = "dynamic".into();
            } else {
                details.disk_type = "differencing".into();
                let name = utf16(&dynh[64..576], false);
                details.parent_name = Some(name.clone());
                let path = locate_parent(src, &dynh, &name)?;
                parent = Some(Parent { path, context: None, missing: None });
            }
        }
        other => return Err(Error::invalid(src.path(), format!("unknown VHD disk type {other}"))),
    }
    let subformat = details.disk_type.clone();
    let mut parsed =
        Parsed::new(ImageFormat::Vhd, subformat, virtual_size, FormatDetails::Vhd(details));
    parsed.parent = parent;
    Ok(parsed)
}

/// Checks that every allocated block (bitmap sector plus data) lies before the footer.
fn check_bat(src: &ByteSource, bat_offset: u64, entries: u32, block_size: u32) -> Result<()> {
    let bat = src.read_vec(bat_offset, entries as usize * 4).map_err(|e| {
        let why = format!("truncated VHD: block allocation table unreadable ({})", e.message());
        Error::invalid(src.path(), why).with_source(e)
    })?;
    let bitmap = (u64::from(block_size) / 512).div_ceil(8).div_ceil(512) * 512;
    let limit = src.len() - FOOTER_SIZE;
    for i in 0..entries as usize {
        let sector = be32(&bat, i * 4);
        if sector == BAT_UNUSED {
            continue;
        }
        let end = u64::from(sector) * 512 + bitmap + u64::from(block_size);
        if end > limit {
            return Err(Error::invalid(
                src.path(),
                format!("corrupt or truncated VHD: block {i} at sector {sector} runs past the end of the data"),
            )
            .with_offset(src.base() + bat_offset + i as u64 * 4));
        }
    }
    Ok(())
}

fn utf16(raw: &[u8], little_endian: bool) -> String {
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| {
            if little_endian {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        })
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// Finds the parent of a differencing disk from its relative locator, else by its name beside
/// the child; the parent must live in the child's directory tree.
fn locate_parent(src: &ByteSource, dynh: &[u8], name: &str) -> Result<PathBuf> {
    let dir = src.path().parent().unwrap_or(Path::new("."));
    let mut candidates = Vec::new();
    for i in 0..8 {
        let e = 576 + i * 24;
        let code = &dynh[e..e + 4];
        let (len, off) = (be32(dynh, e + 8) as usize, be64(dynh, e + 16));
        if (code == PLATFORM_W2RU || code == PLATFORM_W2KU) && len > 0 && len <= 4096 {
            let raw = src.read_vec(off, len)?;
            let path = utf16(&raw, true).replace('\\', "/");
            candidates.push((code == PLATFORM_W2RU, path));
        }
    }
    candidates.sort_by_key(|(relative, _)| !relative);
    for (relative, p) in &candidates {
        let candidate = if *relative {
            let rel = p.trim_start_matches("./");
            dir.join(confined_relative_path(src.path(), "VHD parent locator", rel)?)
        } else {
            match Path::new(p.rsplit('/').next().unwrap_or(p)) {
                n if n.as_os_str().is_empty() => continue,
                n => dir.join(n),
            }
        };
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    let fallback = dir.join(name.replace('\\', "/").rsplit('/').next().unwrap_or(name));
    if !name.is_empty() && fallback.exists() {
        return Ok(fallback);
    }
    Err(Error::invalid(src.path(), format!("parent {name:?} of this differencing VHD is missing")))
}

/// True when `details` describe a differencing disk, which qemu cannot read correctly (it
/// ignores the parent), so the chain is merged by [`apply_differencing`] instead.
pub fn is_differencing(details: &FormatDetails) -> bool {
    matches!(details, FormatDetails::Vhd(d) if d.disk_type == "differencing")
}

/// Writes the sectors a differencing disk holds (those whose bitmap bit is set) over `out`,
/// a raw image already holding the parent's content; `path` is the differencing disk and
/// `virtual_size` the guest's size.
pub fn apply_differencing(
    path: &Path,
    details: &FormatDetails,
    virtual_size: u64,
    out: &std::fs::File,
) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let FormatDetails::Vhd(VhdDetails {
        bat_offset: Some(bat_offset),
        max_table_entries: Some(entries),
        block_size: Some(block_size),
        ..
    }) = details
    else {
        return Err(Error::new(crate::ErrorKind::Internal, "not a dynamic VHD").with_path(path));
    };
    let src = ByteSource::open(path)?;
    let bat = src.read_vec(*bat_offset, *entries as usize * 4)?;
    let block = u64::from(*block_size);
    let bitmap_len = (block / 512).div_ceil(8).div_ceil(512) * 512;
    for i in 0..*entries as usize {
        let sector = be32(&bat, i * 4);
        if sector == BAT_UNUSED {
            continue;
        }
        let at = u64::from(sector) * 512;
        let bitmap = src.read_vec(at, bitmap_len as usize)?;
        let data = src.read_vec(at + bitmap_len, block as usize)?;
        let present = |s: usize| bitmap[s / 8] & (0x80 >> (s % 8)) != 0;
        let sectors = (block / 512) as usize;
        let mut s = 0;
        while s < sectors {
            if !present(s) {
                s += 1;
                continue;
            }
            let start = s;
            while s < sectors && present(s) {
                s += 1;
            }
            let guest = i as u64 * block + start as u64 * 512;
            if guest >= virtual_size {
                break;
            }
            let end = (s * 512).min((virtual_size - i as u64 * block) as usize);
            out.write_all_at(&data[start * 512..end], guest)
                .map_err(|e| Error::io(path, "writing merged VHD data", e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_skips_its_own_field() {
        let mut block = vec![1u8; 512];
        block[64..68].copy_from_slice(&[0xff; 4]);
        assert_eq!(checksum(&block, 64), !(508u32));
    }
}
