//! Reading an initramfs ourselves: which files (kernel modules) it holds.
//!
//! An initramfs is one or more concatenated cpio archives in the "newc" format (`070701`),
//! usually an uncompressed early-microcode archive followed by the main archive compressed
//! with gzip, xz or zstd. We list the names; we never unpack to disk, and never hold a
//! decompressed archive in memory: the cpio members are parsed as the decompressor streams
//! them, and only the contents a caller asks for are kept, each bounded before it is read.

use std::io::{BufRead, BufReader, Read};

use crate::error::{Error, ErrorKind, Result};

/// cpio "newc" magic, and the variant with checksums.
const NEWC: &[u8; 6] = b"070701";
const CRC: &[u8; 6] = b"070702";
const GZIP: &[u8] = &[0x1f, 0x8b];
const XZ: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
/// Decompressed bytes we read from one compressed archive before calling it a bomb (real
/// ones unpack to a few hundred MiB; this bounds the time, memory is bounded per member).
const MAX_UNPACKED: u64 = 4 << 30;
/// Memory a decompressor may take for its window or dictionary: 128 MiB, the largest zstd
/// window the kernel's own initramfs decompressor accepts (`zstd --long`, `--ultra -22`);
/// `xz -9` needs 65 MiB, gzip 32 KiB.
pub const MAX_DECODER_MEMORY: u64 = 128 << 20;
/// Longest member name (the kernel's `PATH_MAX`).
const MAX_NAME: u64 = 4096;
/// Members in one image before it is called a bomb (real ones hold a few thousand).
const MAX_MEMBERS: usize = 200_000;
/// Largest member whose content [`walk`] holds in memory (the biggest real kernel modules are
/// a few tens of MiB).
pub const MAX_MEMBER: u64 = 256 << 20;
/// Largest member [`read_member`] returns (it is for configuration files).
pub const MAX_SMALL_MEMBER: u64 = 16 << 20;

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
    /// The content (a symbolic link's target for links); empty when the walk's `wants` said
    /// it was not wanted.
    pub data: &'a [u8],
}

/// A stream of archive bytes that knows its offset (cpio pads to 4 bytes from the start of
/// the stream) and turns a short read into a "truncated" error.
struct Stream<R> {
    inner: R,
    pos: u64,
}

impl<R: BufRead> Stream<R> {
    fn io(e: std::io::Error) -> Error {
        bad(format!("reading failed: {e}"))
    }

    fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => bad(format!("truncated {what}")),
            _ => Self::io(e),
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// Reads `len` bytes into a vector that grows only as the bytes arrive.
    fn read_vec(&mut self, len: u64, what: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        (&mut self.inner).take(len).read_to_end(&mut out).map_err(Self::io)?;
        self.pos += out.len() as u64;
        if (out.len() as u64) < len {
            return Err(bad(format!("truncated {what}")));
        }
        Ok(out)
    }

    fn skip(&mut self, len: u64, what: &str) -> Result<()> {
        let n = std::io::copy(&mut (&mut self.inner).take(len), &mut std::io::sink())
            .map_err(Self::io)?;
        self.pos += n;
        if n < len {
            return Err(bad(format!("truncated {what}")));
        }
        Ok(())
    }

    /// Skips the padding to the next 4-byte boundary (which the last member may lack).
    fn align(&mut self) -> Result<()> {
        let pad = self.pos.next_multiple_of(4) - self.pos;
        let n = std::io::copy(&mut (&mut self.inner).take(pad), &mut std::io::sink())
            .map_err(Self::io)?;
        self.pos += n;
        Ok(())
    }

    /// Skips zero bytes (padding between archives); false at the end of the stream.
    fn skip_zeros(&mut self) -> Result<bool> {
        loop {
            let buf = self.inner.fill_buf().map_err(Self::io)?;
            if buf.is_empty() {
                return Ok(false);
            }
            let zeros = buf.iter().take_while(|b| **b == 0).count();
            let more = zeros < buf.len();
            self.inner.consume(zeros);
            self.pos += zeros as u64;
            if more {
                return Ok(true);
            }
        }
    }
}

/// What a walk keeps while it goes: the visitor, the filter, and the member count.
struct Walker<'v> {
    wants: &'v dyn Fn(&str, u32) -> bool,
    visit: &'v mut dyn FnMut(Member<'_>),
    members: usize,
    /// Largest content read for a wanted member.
    limit: u64,
}

impl Walker<'_> {
    /// Parses one cpio archive, up to and including its trailer.
    fn archive<R: BufRead>(&mut self, r: &mut Stream<R>) -> Result<()> {
        loop {
            let mut h = [0u8; 110];
            r.read_exact(&mut h, "cpio header")?;
            if &h[0..6] != NEWC && &h[0..6] != CRC {
                return Err(bad("bad cpio magic"));
            }
            let mode = hex(&h[14..22])? as u32;
            let size = hex(&h[54..62])?;
            let namesize = hex(&h[94..102])?;
            if namesize == 0 || namesize > MAX_NAME {
                return Err(bad(format!("cpio name of {namesize} bytes")));
            }
            let mut name = vec![0u8; namesize as usize];
            r.read_exact(&mut name, "cpio name")?;
            name.pop();
            let name = std::str::from_utf8(&name).map_err(|_| bad("cpio name is not UTF-8"))?;
            r.align()?;
            if name == "TRAILER!!!" {
                r.skip(size, "cpio trailer")?;
                return r.align();
            }
            self.members += 1;
            if self.members > MAX_MEMBERS {
                return Err(bad(format!("more than {MAX_MEMBERS} members")));
            }
            let name = name.trim_start_matches("./");
            let data = if (self.wants)(name, mode) {
                if size > self.limit {
                    return Err(bad(format!("member {name} is {size} bytes, over {}", self.limit)));
                }
                r.read_vec(size, "cpio member")?
            } else {
                r.skip(size, "cpio member")?;
                Vec::new()
            };
            r.align()?;
            (self.visit)(Member { name, mode, data: &data });
        }
    }

    /// Parses the archives of a decompressed stream (zero padding allowed between them).
    fn archives<R: BufRead>(&mut self, r: &mut Stream<R>) -> Result<()> {
        while r.skip_zeros()? {
            self.archive(r)?;
        }
        Ok(())
    }

    /// Parses the compressed archive at the start of `data`; returns how many input bytes
    /// the compressed stream took (the kernel reads on after it, and so do we).
    fn compressed(&mut self, data: &[u8]) -> Result<usize> {
        let mut rest: &[u8] = data;
        {
            let input = &mut rest;
            let decoder: Box<dyn Read + '_> = if data.starts_with(GZIP) {
                Box::new(flate2::bufread::GzDecoder::new(input))
            } else if data.starts_with(XZ) {
                // One stream: what follows it is the next archive, as the kernel reads it.
                let stream = liblzma::stream::Stream::new_stream_decoder(MAX_DECODER_MEMORY, 0)
                    .map_err(|e| bad(e.to_string()))?;
                Box::new(liblzma::bufread::XzDecoder::new_stream(input, stream))
            } else if data.starts_with(ZSTD) {
                let mut d = zstd::stream::read::Decoder::with_buffer(input)
                    .map_err(|e| bad(e.to_string()))?
                    .single_frame();
                d.window_log_max(MAX_DECODER_MEMORY.trailing_zeros())
                    .map_err(|e| bad(e.to_string()))?;
                Box::new(d)
            } else {
                return Err(bad("unknown compression (not gzip, xz or zstd)"));
            };
            let mut r = Stream { inner: BufReader::new(decoder.take(MAX_UNPACKED + 1)), pos: 0 };
            self.archives(&mut r).map_err(|e| {
                if r.pos > MAX_UNPACKED {
                    bad(format!("a compressed archive unpacks to more than {MAX_UNPACKED} bytes"))
                } else {
                    e
                }
            })?;
            if r.pos > MAX_UNPACKED {
                return Err(bad(format!(
                    "a compressed archive unpacks to more than {MAX_UNPACKED} bytes"
                )));
            }
        }
        Ok(data.len() - rest.len())
    }
}

/// Visits every member of an initramfs image in order: uncompressed archives (early
/// microcode), compressed ones, and archives appended after them, as the kernel unpacks them.
/// A later member of the same name replaces an earlier one at boot. `wants(name, mode)` says
/// whose content to read (at most [`MAX_MEMBER`] bytes each); the others are visited with
/// empty `data`.
pub fn walk(
    data: &[u8],
    wants: &dyn Fn(&str, u32) -> bool,
    visit: &mut dyn FnMut(Member<'_>),
) -> Result<()> {
    walk_bounded(data, MAX_MEMBER, wants, visit)
}

fn walk_bounded(
    data: &[u8],
    limit: u64,
    wants: &dyn Fn(&str, u32) -> bool,
    visit: &mut dyn FnMut(Member<'_>),
) -> Result<()> {
    let mut w = Walker { wants, visit, members: 0, limit };
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
            // Offsets count from the image's start, as the kernel aligns them.
            let mut r = Stream { inner: rest, pos: pos as u64 };
            w.archive(&mut r)?;
            pos = (r.pos as usize).min(data.len());
            continue;
        }
        pos += w.compressed(rest)?.max(1);
    }
}

/// Lists every file name in an initramfs image.
pub fn list(data: &[u8]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    walk(data, &|_, _| false, &mut |m| names.push(m.name.to_string()))?;
    Ok(names)
}

/// The content of the member `name` as the booted system sees it (the last one of that name);
/// for configuration files: one over [`MAX_SMALL_MEMBER`] bytes is an error.
pub fn read_member(data: &[u8], name: &str) -> Result<Option<Vec<u8>>> {
    let mut found = None;
    walk_bounded(data, MAX_SMALL_MEMBER, &|n, _| n == name, &mut |m| {
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
        walk(&archive, &|_, _| true, &mut |m| {
            seen.push((m.name.to_string(), m.mode, m.data.to_vec()))
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                ("lib/modules".to_string(), 0o040755, vec![]),
                ("lib/modules/x.ko".to_string(), 0o100644, b"12345".to_vec()),
            ]
        );
    }

    #[test]
    fn a_big_member_is_streamed_past_and_only_read_when_asked_within_its_bound() {
        // 64 MiB of zeros compress to a few KiB: listing must not hold them, and the bound of
        // read_member (configuration files) refuses them before reading.
        let big = vec![0u8; 64 << 20];
        let archive = cpio(&[("conf/big", &big), ("conf/modules", b"virtio_blk\n")]);
        for codec in ["gzip", "xz", "zstd"] {
            let image = pack(codec, &archive);
            assert!(image.len() < 1 << 20, "{codec}: {}", image.len());
            assert_eq!(list(&image).unwrap(), ["conf/big", "conf/modules"], "{codec}");
            let conf = read_member(&image, "conf/modules").unwrap().unwrap();
            assert_eq!(conf, b"virtio_blk\n");
            let e = read_member(&image, "conf/big").unwrap_err().to_string();
            assert!(e.contains("conf/big") && e.contains("over"), "{codec}: {e}");
        }
    }

    #[test]
    fn sizes_in_headers_are_checked_against_the_data_not_trusted() {
        let mut archive = cpio(&[("lib/x.ko", b"elf")]);
        // The member claims 4 GiB - 1 and the name 4 GiB - 1 bytes; neither is allocated.
        let huge = b"ffffffff";
        let mut sized = archive.clone();
        sized[54..62].copy_from_slice(huge);
        let e = walk(&sized, &|_, _| true, &mut |_| {}).unwrap_err().to_string();
        assert!(e.contains("over"), "{e}");
        sized[54..62].copy_from_slice(b"00010000");
        let e = walk(&sized, &|_, _| true, &mut |_| {}).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        archive[94..102].copy_from_slice(huge);
        let e = list(&archive).unwrap_err().to_string();
        assert!(e.contains("name of 4294967295 bytes"), "{e}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(list(b"070701zzzz").is_err());
        assert!(list(b"hello world").is_err());
    }
}
