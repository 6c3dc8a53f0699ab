//! OVA packages packed as zip archives (PKWARE APPNOTE 6.3): the central directory is read
//! from the end of the file, every entry checked against the file's size before use, and each
//! member located by its local header.
//!
//! Only what exporters write is accepted: stored (method 0) and deflated (method 8) members,
//! zip64 sizes and offsets, directory entries. Encrypted members, split archives, links and
//! other methods are refused with the member's name.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::source::ByteSource;
use crate::io::source::bytes::{le16, le32, le64};

use super::{Encoding, MAX_MEMBERS, Member};

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD_LEN: usize = 22;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
/// The end record is 22 bytes plus a comment of at most 65535.
const EOCD_SEARCH: u64 = (EOCD_LEN + 0xffff) as u64;
/// Largest central directory read (real OVAs have a handful of entries).
const MAX_CENTRAL_BYTES: u64 = 16 << 20;

/// One central-directory entry, as read (before the local header is consulted).
struct Central {
    name: String,
    method: u16,
    flags: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    local_offset: u64,
    unix_mode: Option<u32>,
}

/// Where the central directory is: (offset, size, entries).
fn find_central(src: &ByteSource) -> Result<(u64, u64, u64)> {
    let path = src.path();
    let tail_len = src.len().min(EOCD_SEARCH);
    let tail_start = src.len() - tail_len;
    let tail = src.read_vec(tail_start, tail_len as usize)?;
    let at = (0..tail.len().saturating_sub(EOCD_LEN - 1))
        .rev()
        .find(|&i| {
            le32(&tail, i) == EOCD_SIG && i + EOCD_LEN + le16(&tail, i + 20) as usize == tail.len()
        })
        .ok_or_else(|| {
            Error::invalid(path, "zip archive without an end-of-central-directory record")
        })?;
    let eocd = &tail[at..];
    let eocd_pos = tail_start + at as u64;
    if le16(eocd, 4) != 0 || le16(eocd, 6) != 0 {
        return Err(Error::unsupported(path, "split (multi-disk) zip archives are not supported"));
    }
    let (mut entries, mut size, mut offset) =
        (u64::from(le16(eocd, 10)), u64::from(le32(eocd, 12)), u64::from(le32(eocd, 16)));
    let mut end = eocd_pos;
    if entries == 0xffff || size == 0xffff_ffff || offset == 0xffff_ffff {
        // Zip64: the locator sits just before the end record and points at the zip64 record.
        let loc_pos = eocd_pos
            .checked_sub(20)
            .ok_or_else(|| Error::invalid(path, "zip64 archive without its locator"))?;
        let loc = src.read_vec(loc_pos, 20)?;
        if le32(&loc, 0) != ZIP64_LOCATOR_SIG {
            return Err(Error::invalid(path, "zip64 archive without its locator"));
        }
        let rec_pos = le64(&loc, 8);
        if rec_pos.checked_add(56).is_none_or(|e| e > loc_pos) {
            return Err(Error::invalid(path, "zip64 end record lies outside the archive"));
        }
        let rec = src.read_vec(rec_pos, 56)?;
        if le32(&rec, 0) != ZIP64_EOCD_SIG {
            return Err(Error::invalid(path, "zip64 end record has a bad signature"));
        }
        (entries, size, offset) = (le64(&rec, 32), le64(&rec, 40), le64(&rec, 48));
        end = rec_pos;
    }
    if offset.checked_add(size).is_none_or(|e| e > end) {
        return Err(Error::invalid(
            path,
            format!("zip central directory ({size} bytes at {offset}) lies outside the archive"),
        ));
    }
    if size > MAX_CENTRAL_BYTES || entries > MAX_MEMBERS as u64 {
        return Err(Error::invalid(path, "zip archive has too many members"));
    }
    Ok((offset, size, entries))
}

/// Reads the zip64 extended-information extra field for the values that overflowed.
fn zip64_extra(path: &Path, extra: &[u8], c: &mut Central, name: &str) -> Result<()> {
    let mut i = 0;
    while i + 4 <= extra.len() {
        let (id, len) = (le16(extra, i), le16(extra, i + 2) as usize);
        let body = extra.get(i + 4..i + 4 + len).ok_or_else(|| {
            Error::invalid(path, format!("zip member {name:?} has a truncated extra field"))
        })?;
        if id == 1 {
            let mut at = 0;
            let mut take = |v: &mut u64| -> Result<()> {
                if *v == 0xffff_ffff {
                    if at + 8 > body.len() {
                        return Err(Error::invalid(
                            path,
                            format!("zip member {name:?} has a short zip64 field"),
                        ));
                    }
                    *v = le64(body, at);
                    at += 8;
                }
                Ok(())
            };
            take(&mut c.size)?;
            take(&mut c.compressed)?;
            take(&mut c.local_offset)?;
            return Ok(());
        }
        i += 4 + len;
    }
    Ok(())
}

fn read_central(src: &ByteSource, offset: u64, size: u64, entries: u64) -> Result<Vec<Central>> {
    let path = src.path();
    let cd = src.read_vec(offset, size as usize)?;
    let mut out = Vec::new();
    let mut i = 0usize;
    for _ in 0..entries {
        if i + 46 > cd.len() || le32(&cd, i) != CENTRAL_SIG {
            return Err(Error::invalid(path, "corrupt zip central directory"));
        }
        let h = &cd[i..];
        let (n, e, k) = (le16(h, 28) as usize, le16(h, 30) as usize, le16(h, 32) as usize);
        if 46 + n + e + k > h.len() {
            return Err(Error::invalid(path, "corrupt zip central directory (entry overruns it)"));
        }
        let raw_name = &h[46..46 + n];
        let name = String::from_utf8(raw_name.to_vec())
            .unwrap_or_else(|_| raw_name.iter().map(|&b| b as char).collect());
        let made_by_unix = h[5] == 3;
        let mut c = Central {
            name: name.clone(),
            flags: le16(h, 8),
            method: le16(h, 10),
            crc: le32(h, 16),
            compressed: u64::from(le32(h, 20)),
            size: u64::from(le32(h, 24)),
            local_offset: u64::from(le32(h, 42)),
            unix_mode: made_by_unix.then(|| le32(h, 38) >> 16),
        };
        zip64_extra(path, &h[46 + n..46 + n + e], &mut c, &name)?;
        out.push(c);
        i += 46 + n + e + k;
    }
    Ok(out)
}

/// Lists a zip archive's members: regular files with where their data lies and how it is
/// encoded. Directory entries are skipped; anything else that is not a plain file is refused.
pub(crate) fn members(src: &ByteSource) -> Result<Vec<(String, Member)>> {
    let path = src.path();
    let (offset, size, entries) = find_central(src)?;
    let mut out = Vec::new();
    for c in read_central(src, offset, size, entries)? {
        let name = c.name.as_str();
        let kind = c.unix_mode.map(|m| m & 0o170000).filter(|&t| t != 0);
        if name.ends_with('/') || kind == Some(0o040000) {
            continue;
        }
        if kind.is_some_and(|t| t != 0o100000) {
            return Err(Error::invalid(
                path,
                format!("zip member {name:?} is not a regular file; links and devices are refused"),
            ));
        }
        if c.flags & 1 != 0 {
            return Err(Error::unsupported(path, format!("zip member {name:?} is encrypted")));
        }
        let encoding = match c.method {
            0 if c.compressed == c.size => Encoding::Stored,
            0 => {
                return Err(Error::invalid(
                    path,
                    format!("stored zip member {name:?} has different packed and real sizes"),
                ));
            }
            8 => Encoding::Deflate { size: c.size, crc: c.crc },
            m => {
                return Err(Error::unsupported(
                    path,
                    format!(
                        "zip member {name:?} uses compression method {m} (only stored and deflate are supported)"
                    ),
                ));
            }
        };
        if c.local_offset.checked_add(30).is_none_or(|e| e > offset) {
            return Err(Error::invalid(
                path,
                format!("zip member {name:?} lies outside the archive"),
            ));
        }
        let local = src.read_vec(c.local_offset, 30)?;
        if le32(&local, 0) != LOCAL_SIG {
            return Err(Error::invalid(path, format!("zip member {name:?}: bad local header")));
        }
        let data = c.local_offset + 30 + u64::from(le16(&local, 26)) + u64::from(le16(&local, 28));
        if data.checked_add(c.compressed).is_none_or(|e| e > offset) {
            return Err(Error::invalid(
                path,
                format!("truncated zip: member {name:?} runs past the central directory"),
            ));
        }
        out.push((c.name, Member { offset: data, stored: c.compressed, encoding }));
    }
    Ok(out)
}
