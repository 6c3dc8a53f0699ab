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

/// Parses cpio archives starting at `pos`, appending names; returns where they end.
fn parse_cpio(data: &[u8], mut pos: usize, names: &mut Vec<String>) -> Result<usize> {
    loop {
        let h = data.get(pos..pos + 110).ok_or_else(|| bad("truncated cpio header"))?;
        if &h[0..6] != NEWC && &h[0..6] != CRC {
            return Err(bad("bad cpio magic"));
        }
        let size = hex(&h[54..62])? as usize;
        let namesize = hex(&h[94..102])? as usize;
        let name_start = pos + 110;
        let name = data
            .get(name_start..name_start + namesize.saturating_sub(1))
            .ok_or_else(|| bad("truncated cpio name"))?;
        let name = String::from_utf8_lossy(name).into_owned();
        let data_start = (name_start + namesize).next_multiple_of(4);
        pos = (data_start + size).next_multiple_of(4);
        if pos > data.len() + 3 {
            return Err(bad("truncated cpio member"));
        }
        if name == "TRAILER!!!" {
            return Ok(pos.min(data.len()));
        }
        names.push(name.trim_start_matches("./").to_string());
    }
}

fn unpack(reader: impl Read) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    reader
        .take(MAX_UNPACKED)
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("decompression failed: {e}")))?;
    Ok(out)
}

/// Lists every file name in an initramfs image.
pub fn list(data: &[u8]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut pos = 0;
    loop {
        while pos < data.len() && data[pos] == 0 {
            pos += 1;
        }
        let rest = &data[pos..];
        if rest.is_empty() {
            return Ok(names);
        }
        if rest.starts_with(NEWC) || rest.starts_with(CRC) {
            pos = parse_cpio(data, pos, &mut names)?;
            continue;
        }
        let inner = if rest.starts_with(GZIP) {
            unpack(flate2::read::MultiGzDecoder::new(rest))?
        } else if rest.starts_with(XZ) {
            unpack(liblzma::read::XzDecoder::new_multi_decoder(rest))?
        } else if rest.starts_with(ZSTD) {
            unpack(zstd::stream::read::Decoder::new(rest).map_err(|e| bad(e.to_string()))?)?
        } else {
            return Err(bad("unknown compression (not gzip, xz or zstd)"));
        };
        names.extend(list(&inner)?);
        return Ok(names);
    }
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
        let mut out = Vec::new();
        let mut add = |name: &str, data: &[u8]| {
            let h = format!(
                "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
                1,
                0o100644,
                0,
                0,
                1,
                0,
                data.len(),
                0,
                0,
                0,
                0,
                name.len() + 1,
                0
            );
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            while out.len() % 4 != 0 {
                out.push(0);
            }
            out.extend_from_slice(data);
            while out.len() % 4 != 0 {
                out.push(0);
            }
        };
        for (n, d) in files {
            add(n, d);
        }
        add("TRAILER!!!", b"");
        out
    }

    #[test]
    fn microcode_prefix_then_compressed_main_archive() {
        let early = cpio(&[("kernel/x86/microcode/GenuineIntel.bin", b"ucode")]);
        let main = cpio(&[
            ("usr/lib/modules/6.1.0/kernel/drivers/block/virtio_blk.ko", b"elf"),
            ("usr/lib/modules/6.1.0/kernel/drivers/ata/ata_piix.ko.xz", b"elf"),
        ]);
        for codec in ["gzip", "xz", "zstd"] {
            let packed = match codec {
                "gzip" => {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    e.write_all(&main).unwrap();
                    e.finish().unwrap()
                }
                "xz" => {
                    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                    e.write_all(&main).unwrap();
                    e.finish().unwrap()
                }
                _ => zstd::encode_all(&main[..], 1).unwrap(),
            };
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
    fn garbage_is_an_error_not_a_panic() {
        assert!(list(b"070701zzzz").is_err());
        assert!(list(b"hello world").is_err());
    }
}
