//! The hosted sparse extent (`KDMV`): its header, and a walk over the grain directory and grain
//! tables that proves every allocated grain lies inside the file.
//!
//! Layout per VMware Virtual Disk Format 1.1, "Hosted Sparse Extent Header". A stream-optimized
//! extent written by VMware has `gdOffset = GD_AT_END` in the header and the real header in a
//! footer 1024 bytes before the end of the file.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::io::source::{ByteSource, bytes::*};

/// `KDMV`, little-endian, at offset 0 of a hosted sparse extent.
pub const SPARSE_MAGIC: &[u8; 4] = b"KDMV";
/// `COWD`: the ESXi vmfsSparse delta header.
pub const COWD_MAGIC: &[u8; 4] = b"COWD";
/// `gdOffset` value meaning "the grain directory is found through the footer".
pub const GD_AT_END: u64 = u64::MAX;
/// Flag bit 16: grains are compressed (stream-optimized).
pub const FLAG_COMPRESSED: u32 = 1 << 16;
/// Flag bit 17: the file contains stream markers.
pub const FLAG_MARKERS: u32 = 1 << 17;
/// Sector size used by every offset in the header.
const SECTOR: u64 = 512;
/// Upper bound on bytes of grain tables we walk; beyond it only the directory is checked.
const MAX_GT_WALK_BYTES: u64 = 256 << 20;

/// The fields of a sparse extent header that we use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SparseHeader {
    /// Header version (1, 2 or 3).
    pub version: u32,
    /// Flag bits.
    pub flags: u32,
    /// Capacity in sectors.
    pub capacity: u64,
    /// Grain size in sectors.
    pub grain_size: u64,
    /// Embedded descriptor offset in sectors (0 when none).
    pub descriptor_offset: u64,
    /// Embedded descriptor size in sectors.
    pub descriptor_size: u64,
    /// Grain table entries per grain table.
    pub num_gtes_per_gt: u32,
    /// Grain directory offset in sectors (`GD_AT_END` for VMware streams).
    pub gd_offset: u64,
    /// Compression algorithm (1 = deflate).
    pub compress_algorithm: u16,
}

impl SparseHeader {
    /// Parses the 512-byte header at the start of `src`.
    pub fn read(src: &ByteSource, at: u64) -> Result<SparseHeader> {
        let b = src.read_vec(at, 512)?;
        if &b[0..4] != SPARSE_MAGIC {
            return Err(Error::invalid(src.path(), "not a VMDK sparse extent (no KDMV magic)")
                .with_offset(src.base() + at));
        }
        let h = SparseHeader {
            version: le32(&b, 4),
            flags: le32(&b, 8),
            capacity: le64(&b, 12),
            grain_size: le64(&b, 20),
            descriptor_offset: le64(&b, 28),
            descriptor_size: le64(&b, 36),
            num_gtes_per_gt: le32(&b, 44),
            gd_offset: le64(&b, 56),
            compress_algorithm: le16(&b, 77),
        };
        let bad = |why: String| Err(Error::invalid(src.path(), why).with_offset(src.base() + at));
        if !(1..=3).contains(&h.version) {
            return bad(format!("unsupported VMDK sparse version {}", h.version));
        }
        if h.grain_size == 0 || !h.grain_size.is_power_of_two() || h.grain_size > 1 << 16 {
            return bad(format!("invalid grain size of {} sectors", h.grain_size));
        }
        if h.num_gtes_per_gt == 0 || h.num_gtes_per_gt > 1 << 16 {
            return bad(format!("invalid number of grain table entries {}", h.num_gtes_per_gt));
        }
        if h.capacity == 0 || h.capacity > (1 << 41) {
            return bad(format!("invalid capacity of {} sectors", h.capacity));
        }
        Ok(h)
    }

    /// True for stream-optimized (compressed) extents.
    pub fn is_compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }

    /// Capacity in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity * SECTOR
    }

    fn gd_entries(&self) -> u64 {
        let per_gt = self.grain_size * u64::from(self.num_gtes_per_gt);
        self.capacity.div_ceil(per_gt)
    }
}

/// What a walk of the grain tables found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GrainStats {
    /// Grains with data.
    pub allocated_grains: u64,
    /// True when every grain table was read (false when skipped for size).
    pub complete: bool,
}

/// Loads the effective header of a sparse extent: for VMware streams, the footer's copy.
pub fn effective_header(src: &ByteSource) -> Result<SparseHeader> {
    let header = SparseHeader::read(src, 0)?;
    if header.gd_offset != GD_AT_END {
        return Ok(header);
    }
    // footer marker, footer header, end-of-stream marker: the last three sectors.
    if src.len() < 3 * SECTOR {
        return Err(Error::invalid(src.path(), "truncated stream-optimized VMDK: no footer"));
    }
    let footer_at = src.len() - 2 * SECTOR;
    let footer = SparseHeader::read(src, footer_at).map_err(|_| {
        Error::invalid(
            src.path(),
            "truncated stream-optimized VMDK: the footer with the grain directory is missing",
        )
        .with_offset(src.base() + footer_at)
    })?;
    if footer.gd_offset == GD_AT_END {
        return Err(Error::invalid(src.path(), "VMDK footer does not locate the grain directory"));
    }
    Ok(footer)
}

/// Walks the grain directory and tables and checks that every entry points inside the file.
pub fn check_grain_tables(src: &ByteSource, h: &SparseHeader) -> Result<GrainStats> {
    let len = src.len();
    let gd_entries = h.gd_entries();
    let gd_at = h.gd_offset.checked_mul(SECTOR).filter(|v| *v < len).ok_or_else(|| {
        Error::invalid(
            src.path(),
            format!("truncated or corrupt VMDK: grain directory at sector {} is beyond the end of the file", h.gd_offset),
        )
    })?;
    let gd = src.read_vec(gd_at, (gd_entries * 4) as usize).map_err(|e| {
        let why = format!("truncated VMDK: grain directory unreadable ({})", e.message());
        Error::invalid(src.path(), why).with_offset(src.base() + gd_at).with_source(e)
    })?;
    let gt_bytes = u64::from(h.num_gtes_per_gt) * 4;
    let grain_bytes = h.grain_size * SECTOR;
    let walk = gd_entries * gt_bytes <= MAX_GT_WALK_BYTES;
    let mut stats = GrainStats { allocated_grains: 0, complete: walk };
    // The compressed grain furthest into the file: its marker must say a size that ends
    // inside the file (a stream cut short). Only that one is read: reading every marker costs
    // one storage read per grain on a cold cache, and qemu-img reports a bad one anyway.
    let mut last_grain: Option<(u64, u64)> = None;
    for i in 0..gd_entries as usize {
        let gt_sector = u64::from(le32(&gd, i * 4));
        if gt_sector == 0 {
            continue;
        }
        let gt_at = gt_sector * SECTOR;
        if gt_at + gt_bytes > len {
            return Err(Error::invalid(
                src.path(),
                format!("corrupt VMDK grain directory: entry {i} points to sector {gt_sector}, beyond the end of the file"),
            )
            .with_offset(src.base() + gd_at + i as u64 * 4));
        }
        if !walk {
            continue;
        }
        let gt = src.read_vec(gt_at, gt_bytes as usize)?;
        for j in 0..h.num_gtes_per_gt as usize {
            let grain = u64::from(le32(&gt, j * 4));
            // 0: unallocated; 1: a zeroed grain (version 2+ "zeroed-grain GTE").
            if grain <= 1 {
                continue;
            }
            let at = grain * SECTOR;
            let need = if h.is_compressed() { 12 } else { grain_bytes };
            let end = at.checked_add(need);
            if at < SECTOR || end.is_none_or(|e| e > len) {
                return Err(Error::invalid(
                    src.path(),
                    format!(
                        "corrupt VMDK grain table {i}: entry {j} points to sector {grain}, outside the file"
                    ),
                )
                .with_offset(src.base() + gt_at + j as u64 * 4));
            }
            if h.is_compressed() && last_grain.is_none_or(|(_, g)| grain > g) {
                last_grain = Some((at, grain));
            }
            stats.allocated_grains += 1;
        }
    }
    if let Some((at, grain)) = last_grain {
        let m = src.read_vec(at, 12)?;
        let size = u64::from(le32(&m, 8));
        if at + 12 + size > len {
            return Err(Error::invalid(
                src.path(),
                format!("truncated VMDK: compressed grain at sector {grain} runs past the end of the file"),
            )
            .with_offset(src.base() + at));
        }
    }
    Ok(stats)
}

/// Reads the descriptor embedded in a sparse extent, if any.
pub fn embedded_descriptor(src: &ByteSource, h: &SparseHeader) -> Result<Option<String>> {
    if h.descriptor_offset == 0 || h.descriptor_size == 0 {
        return Ok(None);
    }
    let size = (h.descriptor_size * SECTOR).min(super::descriptor::MAX_DESCRIPTOR_BYTES);
    let raw = src.read_vec(h.descriptor_offset * SECTOR, size as usize)?;
    let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
    let text = String::from_utf8_lossy(&raw[..end]).into_owned();
    // Extents of multi-file disks reserve descriptor space but leave it blank.
    Ok((!text.trim().is_empty()).then_some(text))
}
