//! The members of an OVA: where each one's bytes lie and how they are encoded, how the names
//! an OVF or its manifest gives are found among them, and how a compressed member is unpacked.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::confined_relative_path;
use crate::io::source::ByteSource;

/// Most members an OVA may have; real ones have a handful.
pub(crate) const MAX_MEMBERS: usize = 4096;

/// How a member's bytes are stored in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// As they are (tar members, stored zip members): readable in place.
    Stored,
    /// Deflated (zip method 8), with the real size and CRC-32 the archive records.
    Deflate { size: u64, crc: u32 },
}

/// Where one member's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member {
    /// Offset of the data in the archive.
    pub offset: u64,
    /// Bytes the data takes in the archive.
    pub stored: u64,
    /// How they are encoded.
    pub encoding: Encoding,
}

/// The members of an archive that is read in place (tar or zip), by name.
pub(crate) struct Index {
    src: ByteSource,
    members: BTreeMap<String, Member>,
}

impl Index {
    /// An empty index over `src`.
    pub(crate) fn new(src: &ByteSource) -> Index {
        Index { src: src.clone(), members: BTreeMap::new() }
    }

    /// The archive.
    pub(crate) fn path(&self) -> &Path {
        self.src.path()
    }

    /// Adds a member after checking its name, that it lies inside the archive, and that the
    /// name is new.
    pub(crate) fn insert(&mut self, raw_name: &str, m: Member) -> Result<()> {
        let archive = self.src.path();
        let name = safe_name(archive, raw_name)?;
        if m.offset.checked_add(m.stored).is_none_or(|end| end > self.src.len()) {
            return Err(Error::invalid(
                archive,
                format!("truncated OVA: member {name:?} runs past the end of the archive"),
            ));
        }
        if self.members.insert(name.clone(), m).is_some() {
            return Err(Error::invalid(archive, format!("OVA has two members named {name:?}")));
        }
        if self.members.len() > MAX_MEMBERS {
            return Err(Error::invalid(archive, "OVA has too many members"));
        }
        Ok(())
    }

    /// Member names, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        self.members.keys().cloned().collect()
    }

    /// The member's bytes in place, when it is stored uncompressed.
    pub(crate) fn in_place(&self, name: &str) -> Result<Option<ByteSource>> {
        match self.members.get(name) {
            Some(m) if m.encoding == Encoding::Stored => {
                self.src.slice(m.offset, m.stored).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// A reader of the member's content (decompressed when the archive deflated it).
    pub(crate) fn reader(&self, name: &str) -> Result<Box<dyn Read>> {
        let m = self.members.get(name).ok_or_else(|| {
            Error::invalid(self.src.path(), format!("member {name:?} is not in the archive"))
        })?;
        let raw = self.src.slice(m.offset, m.stored)?.reader();
        Ok(match m.encoding {
            Encoding::Stored => Box::new(raw),
            Encoding::Deflate { size, crc } => Box::new(Checked {
                inner: flate2::CrcReader::new(flate2::read::DeflateDecoder::new(
                    BufReader::with_capacity(1 << 20, raw),
                )),
                read: 0,
                size,
                crc,
            }),
        })
    }
}

/// A deflated member's reader that fails at the end when the size or CRC-32 differs from
/// what the archive records (a corrupt member must not convert silently).
struct Checked<R: Read> {
    inner: flate2::CrcReader<R>,
    read: u64,
    size: u64,
    crc: u32,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        let bad = self.read > self.size
            || (n == 0
                && !buf.is_empty()
                && (self.read != self.size || self.inner.crc().sum() != self.crc));
        if bad {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the member's size or CRC-32 does not match the zip directory ({} bytes \
                     recorded, {} read so far)",
                    self.size, self.read
                ),
            ));
        }
        Ok(n)
    }
}

/// Checks a member's name: relative, no `..`, not empty; `./` prefixes are dropped.
pub(crate) fn safe_name(archive: &Path, raw: &str) -> Result<String> {
    let unsafe_name = || {
        Error::invalid(
            archive,
            format!("OVA member {raw:?} has an unsafe path (absolute or climbing out with '..')"),
        )
    };
    if raw.starts_with('/') || raw.contains('\\') || raw.contains('\0') {
        return Err(unsafe_name());
    }
    let parts: Vec<&str> = raw.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.contains(&"..") {
        return Err(unsafe_name());
    }
    if parts.is_empty() {
        return Err(Error::invalid(archive, "OVA member with an empty name"));
    }
    Ok(parts.join("/"))
}

/// The descriptor's folder inside the archive, with its trailing `/`, or `""`.
pub(crate) fn folder(descriptor: &str) -> &str {
    descriptor.rfind('/').map_or("", |i| &descriptor[..=i])
}

/// The member an OVF or manifest name refers to: relative to the descriptor's folder, never
/// absolute, never climbing out.
pub(crate) fn join(archive: &Path, folder: &str, href: &str) -> Result<String> {
    confined_relative_path(archive, "OVF file reference", href)?;
    safe_name(archive, &format!("{folder}{href}"))
}

/// Finds `wanted` among `names`. When it is missing but VMware snapshot files `wanted.NNN…`
/// are there, the newest (highest number) stands in for it, with a warning naming it; failing
/// that, the one member whose name differs only in letter case (archives made on Windows),
/// with a warning too.
pub(crate) fn find(names: &[String], wanted: &str) -> Option<(String, Option<String>)> {
    if names.iter().any(|n| n == wanted) {
        return Some((wanted.to_string(), None));
    }
    snapshot(names, wanted).or_else(|| {
        let mut same = names.iter().filter(|n| n.eq_ignore_ascii_case(wanted));
        match (same.next(), same.next()) {
            (Some(n), None) => Some((
                n.clone(),
                Some(format!("the OVF names {wanted:?}; the archive holds it as {n:?}")),
            )),
            _ => None,
        }
    })
}

fn snapshot(names: &[String], wanted: &str) -> Option<(String, Option<String>)> {
    let newest = names
        .iter()
        .filter_map(|n| {
            let digits = n.strip_prefix(wanted)?.strip_prefix('.')?;
            let all_digits = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            all_digits.then(|| (digits.trim_start_matches('0').parse::<u64>().unwrap_or(0), n))
        })
        .max()?;
    let name = newest.1.clone();
    let warning = format!(
        "the OVF names {wanted:?}, which the archive holds only as snapshot files; using the \
         newest, {name:?}"
    );
    Some((name, Some(warning)))
}

/// Writes everything `reader` yields into a new file `target` (an existing file is never
/// overwritten), creating its directory; returns the bytes written. Not synced: it is scratch,
/// read back at once and removed.
pub(crate) fn unpack(
    archive: &Path,
    name: &str,
    mut reader: impl Read,
    target: &Path,
) -> Result<u64> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(parent, "cannot create directory", e))?;
    }
    let mut out = File::create_new(target).map_err(|e| Error::io(target, "cannot create", e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::invalid(
                    archive,
                    format!("cannot decompress member {name:?}: {e}"),
                ));
            }
        };
        out.write_all(&buf[..n]).map_err(|e| Error::io(target, "writing unpacked member", e))?;
        total += n as u64;
    }
    Ok(total)
}

/// A gzip decoder over `r` (for OVF files marked `ovf:compression="gzip"`).
pub(crate) fn gunzip(r: impl Read + 'static) -> Box<dyn Read> {
    Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn newest_snapshot_stands_in_for_a_missing_disk() {
        let n = names(&["vm.ovf", "disk1.vmdk.000000001", "disk1.vmdk.000000010", "disk1.vmdk.x"]);
        let (name, warning) = find(&n, "disk1.vmdk").unwrap();
        assert_eq!(name, "disk1.vmdk.000000010");
        assert!(warning.unwrap().contains("disk1.vmdk.000000010"));
        assert_eq!(
            find(&names(&["disk1.vmdk", "disk1.vmdk.000000002"]), "disk1.vmdk").unwrap().0,
            "disk1.vmdk"
        );
        assert!(find(&n, "disk2.vmdk").is_none());
        assert!(find(&names(&["disk1.vmdk.bak"]), "disk1.vmdk").is_none());
        let (name, warning) = find(&names(&["VM/Disk1.VMDK"]), "VM/disk1.vmdk").unwrap();
        assert_eq!(name, "VM/Disk1.VMDK");
        assert!(warning.unwrap().contains("VM/Disk1.VMDK"));
        assert!(find(&names(&["DISK1.vmdk", "disk1.VMDK"]), "disk1.vmdk").is_none(), "ambiguous");
    }

    #[test]
    fn names_are_relative_to_the_descriptor_and_confined() {
        let a = Path::new("x.ova");
        assert_eq!(folder("sub/vm.ovf"), "sub/");
        assert_eq!(folder("vm.ovf"), "");
        assert_eq!(join(a, "sub/", "disk1.vmdk").unwrap(), "sub/disk1.vmdk");
        assert_eq!(join(a, "", "./disk1.vmdk").unwrap(), "disk1.vmdk");
        assert!(join(a, "sub/", "../disk1.vmdk").is_err());
        assert!(join(a, "", "/etc/passwd").is_err());
        assert_eq!(safe_name(a, "./sub//vm.ovf").unwrap(), "sub/vm.ovf");
        for bad in ["/abs", "a/../../b", "..", "a\\b", "./"] {
            assert!(safe_name(a, bad).is_err(), "{bad}");
        }
    }
}
