//! Reading an initramfs ourselves: which files (kernel modules) it holds.
//!
//! An initramfs is one or more concatenated cpio archives in the "newc" format (`070701`),
//! usually an uncompressed early-microcode archive followed by the main archive compressed
//! with gzip, xz or zstd. We list the names; we never unpack to disk.

use std::io::Read;

use crate::error::{Error, ErrorKind, Result};

/// cpio "newc" magic, and the variant with checksums.
const NEWC: &[u8; 6] = b"070701";
const CRC: &[u8; 6] = b"070702";
const GZIP: &[u8] = &[0x1f, 0x8b];
const XZ: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
/// Decompressed bytes we accept before calling the archive a bomb.
const MAX_UNPACKED: u64 = 4 << 30;

fn bad(why: impl Into<String>) -> Error {
    Error::new(ErrorKind::GuestInspection, format!("initramfs: {}", why.into()))
}

fn hex(field: &[u8]) -> Result<u64> {
    let s = std::str::from_utf8(field).map_err(|_| bad("bad cpio header"))?;
    u64::from_str_radix(s, 16).map_err(|_| bad(format!("bad cpio number {s:?}")))
}

/// One member of a cpio archive, as [`walk`] hands it out.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    /// Path inside the archive, without a leading `./`.
    pub name: &'a str,
    /// File type and permission bits (`0o100644` for a regular file).
    pub mode: u32,
    /// The content (a symbolic link's target for links).
    pub data: &'a [u8],
}

/// Parses cpio archives starting at `pos`, handing each member to `visit`; returns where the
/// archive ends.
fn parse_cpio(data: &[u8], mut pos: usize, visit: &mut dyn FnMut(Member<'_>)) -> Result<usize> {
    loop {
        let h = data.get(pos..pos + 110).ok_or_else(|| bad("truncated cpio header"))?;
        if &h[0..6] != NEWC && &h[0..6] != CRC {
            return Err(bad("bad cpio magic"));
        }
        let mode = hex(&h[14..22])? as u32;
        let size = hex(&h[54..62])? as usize;
        let namesize = hex(&h[94..102])? as usize;
        let name_start = pos + 110;
        let name = data
            .get(name_start..name_start + namesize.saturating_sub(1))
            .ok_or_else(|| bad("truncated cpio name"))?;
        let name = std::str::from_utf8(name).map_err(|_| bad("cpio name is not UTF-8"))?;
        let data_start = (name_start + namesize).next_multiple_of(4);
        let body =
            data.get(data_start..data_start + size).ok_or_else(|| bad("truncated cpio member"))?;
        pos = (data_start + size).next_multiple_of(4);
        if name == "TRAILER!!!" {
            return Ok(pos.min(data.len()));
        }
        visit(Member { name: name.trim_start_matches("./"), mode, data: body });
    }
}

/// Decompresses one gzip, xz or zstd stream at the start of `data`; returns the content and
/// how many input bytes the stream took (the kernel reads on after it, and so do we).
fn unpack(data: &[u8]) -> Result<(Vec<u8>, usize)> {
    fn drain(mut reader: impl Read) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        (&mut reader)
            .take(MAX_UNPACKED)
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("decompression failed: {e}")))?;
        Ok(out)
    }
    let mut rest: &[u8] = data;
    let out = if data.starts_with(GZIP) {
        let mut d = flate2::bufread::GzDecoder::new(&mut rest);
        let out = drain(&mut d)?;
        drop(d);
        out
    } else if data.starts_with(XZ) {
        let mut d = liblzma::bufread::XzDecoder::new(&mut rest);
        let out = drain(&mut d)?;
        drop(d);
        out
    } else if data.starts_with(ZSTD) {
        let mut d = zstd::stream::read::Decoder::with_buffer(&mut rest)
            .map_err(|e| bad(e.to_string()))?
            .single_frame();
        let out = drain(&mut d)?;
        drop(d);
        out
    } else {
        return Err(bad("unknown compression (not gzip, xz or zstd)"));
    };
    Ok((out, data.len() - rest.len()))
}

/// Visits every member of an initramfs image in order: uncompressed archives (early
/// microcode), compressed ones, and archives appended after them, as the kernel unpacks them.
/// A later member of the same name replaces an earlier one at boot.
pub fn walk(data: &[u8], visit: &mut dyn FnMut(Member<'_>)) -> Result<()> {
    let mut pos = 0;
    loop {
        while pos < data.len() && data[pos] == 0 {
            pos += 1;
        }
        let rest = &data[pos..];
        if rest.is_empty() {
            return Ok(());
        }
        if rest.starts_with(NEWC) || rest.starts_with(CRC) {
            pos = parse_cpio(data, pos, visit)?;
            continue;
        }
        let (inner, used) = unpack(rest)?;
        walk(&inner, visit)?;
        pos += used.max(1);
    }
}

/// Lists every file name in an initramfs image.
pub fn list(data: &[u8]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    walk(data, &mut |m| names.push(m.name.to_string()))?;
    Ok(names)
}

/// The content of the member `name` as the booted system sees it (the last one of that name).
pub fn read_member(data: &[u8], name: &str) -> Result<Option<Vec<u8>>> {
    let mut found = None;
    walk(data, &mut |m| {
        if m.name == name {
            found = Some(m.data.to_vec());
        }
    })?;
    Ok(found)
}

/// Writes a cpio "newc" archive of `members` (with its trailer), the format the kernel unpacks.
pub fn write_newc(members: &[Member<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    let trailer = Member { name: "TRAILER!!!", mode: 0, data: &[] };
    for (ino, m) in members.iter().chain(std::iter::once(&trailer)).enumerate() {
        let nlink = if m.mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let fields = [
            ino as u64 + 1,
            u64::from(m.mode),
            0,
            0,
            nlink,
            0,
            m.data.len() as u64,
            0,
            0,
            0,
            0,
            m.name.len() as u64 + 1,
            0,
        ];
        out.extend_from_slice(NEWC);
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(m.name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend_from_slice(m.data);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    out
}

/// Appends an uncompressed archive to an image, starting at a 4-byte boundary as the kernel
/// requires; its members override the image's own.
pub fn append(image: &mut Vec<u8>, archive: &[u8]) {
    image.resize(image.len().next_multiple_of(4), 0);
    image.extend_from_slice(archive);
}

/// True when the listing holds the kernel module `module` (any compression suffix).
pub fn has_module(names: &[String], module: &str) -> bool {
    let alt = module.replace('_', "-");
    names.iter().any(|n| {
        let file = n.rsplit('/').next().unwrap_or(n);
        let stem = file.split(".ko").next().unwrap_or("");
        file.contains(".ko") && (stem == module || stem == alt)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn cpio(files: &[(&str, &[u8])]) -> Vec<u8> {
        let members: Vec<Member<'_>> =
            files.iter().map(|(name, data)| Member { name, mode: 0o100644, data }).collect();
        write_newc(&members)
    }

    /// `data` compressed the way initramfs tools do.
    fn pack(codec: &str, data: &[u8]) -> Vec<u8> {
        match codec {
            "gzip" => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            "xz" => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            _ => zstd::encode_all(data, 1).unwrap(),
        }
    }

    #[test]
    fn microcode_prefix_then_compressed_main_archive() {
        let early = cpio(&[("kernel/x86/microcode/GenuineIntel.bin", b"ucode")]);
        let main = cpio(&[
            ("usr/lib/modules/6.1.0/kernel/drivers/block/virtio_blk.ko", b"elf"),
            ("usr/lib/modules/6.1.0/kernel/drivers/ata/ata_piix.ko.xz", b"elf"),
        ]);
        for codec in ["gzip", "xz", "zstd"] {
            let packed = pack(codec, &main);
            let mut image = early.clone();
            image.resize(image.len().next_multiple_of(512), 0);
            image.extend_from_slice(&packed);
            let names = list(&image).unwrap();
            assert_eq!(names.len(), 3, "{codec}: {names:?}");
            assert!(has_module(&names, "virtio_blk"), "{codec}");
            assert!(has_module(&names, "ata_piix"), "{codec}");
            assert!(!has_module(&names, "virtio_scsi"), "{codec}");
        }
    }

    #[test]
    fn archives_appended_after_a_compressed_one_are_read_and_override() {
        let main = cpio(&[("conf/modules", b"ata_piix\n"), ("init", b"#!/bin/sh")]);
        let extra = cpio(&[
            ("conf/modules", b"ata_piix\nvirtio_blk\n"),
            ("lib/modules/6.1.0/kernel/drivers/block/virtio_blk.ko", b"elf"),
        ]);
        for codec in ["gzip", "xz", "zstd"] {
            let mut image = pack(codec, &main);
            assert!(!has_module(&list(&image).unwrap(), "virtio_blk"), "{codec}");
            append(&mut image, &extra);
            let names = list(&image).unwrap();
            assert_eq!(names.len(), 4, "{codec}: {names:?}");
            assert!(has_module(&names, "virtio_blk"), "{codec}");
            let conf = read_member(&image, "conf/modules").unwrap().unwrap();
            assert_eq!(conf, b"ata_piix\nvirtio_blk\n", "{codec}");
            assert_eq!(read_member(&image, "init").unwrap().unwrap(), b"#!/bin/sh");
            assert_eq!(read_member(&image, "nope").unwrap(), None);
        }
    }

    #[test]
    fn written_archives_carry_modes_and_round_trip() {
        let dir = Member { name: "lib/modules", mode: 0o040755, data: &[] };
        let file = Member { name: "lib/modules/x.ko", mode: 0o100644, data: b"12345" };
        let archive = write_newc(&[dir, file]);
        assert_eq!(archive.len() % 4, 0);
        let mut seen = Vec::new();
        walk(&archive, &mut |m| seen.push((m.name.to_string(), m.mode, m.data.to_vec()))).unwrap();
        assert_eq!(
            seen,
            vec![
                ("lib/modules".to_string(), 0o040755, vec![]),
                ("lib/modules/x.ko".to_string(), 0o100644, b"12345".to_vec()),
            ]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(list(b"070701zzzz").is_err());
        assert!(list(b"hello world").is_err());
    }
}
