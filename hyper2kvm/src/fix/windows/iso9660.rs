//! Reading directories and files out of an ISO 9660 image (ECMA-119), for the virtio-win ISO:
//! the Joliet names (UCS-2, mixed case, as Windows sees them) when the image has a Joliet
//! supplementary descriptor, else the primary names without their `;1` version suffix. Only
//! what the driver lookup needs: directory listings and whole-file copies; no writing, no
//! multi-extent files (virtio-win's are far below 4 GiB).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::ByteSource;

const SECTOR: u64 = 2048;
/// Directory-nesting and entry limits against malformed images.
const MAX_ENTRIES: usize = 100_000;

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoEntry {
    /// Its name (Joliet or primary, version suffix removed).
    pub name: String,
    /// A directory.
    pub dir: bool,
    /// First sector.
    lba: u32,
    /// Length in bytes.
    pub len: u32,
}

/// An open ISO image.
#[derive(Debug)]
pub struct IsoImage {
    path: PathBuf,
    src: ByteSource,
    root: IsoEntry,
    joliet: bool,
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl IsoImage {
    /// Opens `path`; an error names it when it is not an ISO 9660 image.
    pub fn open(path: &Path) -> Result<IsoImage> {
        let src = ByteSource::open(path)?;
        let bad = |why: &str| Error::invalid(path, format!("not a readable ISO 9660 image: {why}"));
        let mut primary = None;
        let mut joliet = None;
        for n in 16..64u64 {
            let mut vd = [0u8; 2048];
            src.read_exact_at(&mut vd, n * SECTOR).map_err(|_| bad("too short"))?;
            if &vd[1..6] != b"CD001" {
                return Err(bad("no volume descriptor"));
            }
            match vd[0] {
                1 if primary.is_none() => primary = Some(vd),
                // A supplementary descriptor with a UCS-2 escape sequence (%/@, %/C, %/E).
                2 if vd[88] == b'%' && vd[89] == b'/' && matches!(vd[90], b'@' | b'C' | b'E') => {
                    joliet = Some(vd)
                }
                255 => break,
                _ => {}
            }
        }
        let (vd, is_joliet) = match (joliet, primary) {
            (Some(j), _) => (j, true),
            (None, Some(p)) => (p, false),
            (None, None) => return Err(bad("no primary volume descriptor")),
        };
        let rec = &vd[156..190];
        let root =
            IsoEntry { name: String::new(), dir: true, lba: le32(rec, 2), len: le32(rec, 10) };
        Ok(IsoImage { path: path.to_path_buf(), src, root, joliet: is_joliet })
    }

    /// The image's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root directory.
    pub fn root(&self) -> &IsoEntry {
        &self.root
    }

    /// The bytes of an extent, checked against the image's size before anything is read.
    fn extent(&self, e: &IsoEntry) -> Result<ByteSource> {
        self.src.slice(u64::from(e.lba) * SECTOR, u64::from(e.len)).map_err(|err| {
            Error::invalid(
                &self.path,
                format!("ISO 9660: {:?} lies beyond the end of the image", e.name),
            )
            .with_source(err)
        })
    }

    fn decode(&self, raw: &[u8]) -> String {
        let name = if self.joliet {
            let units: Vec<u16> =
                raw.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16_lossy(&units)
        } else {
            String::from_utf8_lossy(raw).into_owned()
        };
        let name = name.split(';').next().unwrap_or_default();
        name.strip_suffix('.').unwrap_or(name).to_string()
    }

    /// The entries of directory `dir` (without `.` and `..`).
    pub fn read_dir(&self, dir: &IsoEntry) -> Result<Vec<IsoEntry>> {
        if !dir.dir {
            return Err(Error::invalid(&self.path, format!("{} is not a directory", dir.name)));
        }
        let data = self.src.read_vec(u64::from(dir.lba) * SECTOR, dir.len as usize)?;
        let mut out = Vec::new();
        let mut at = 0usize;
        while at < data.len() {
            let n = data[at] as usize;
            if n == 0 {
                // Records do not cross sectors: skip to the next one.
                at = (at / SECTOR as usize + 1) * SECTOR as usize;
                continue;
            }
            if n < 34 || at + n > data.len() {
                return Err(Error::invalid(&self.path, "ISO 9660: malformed directory record"));
            }
            let r = &data[at..at + n];
            let name_len = r[32] as usize;
            let raw = r.get(33..33 + name_len).unwrap_or_default();
            if !(name_len == 1 && (raw[0] == 0 || raw[0] == 1)) {
                out.push(IsoEntry {
                    name: self.decode(raw),
                    dir: r[25] & 2 != 0,
                    lba: le32(r, 2),
                    len: le32(r, 10),
                });
                if out.len() > MAX_ENTRIES {
                    return Err(Error::invalid(&self.path, "ISO 9660: too many entries"));
                }
            }
            at += n;
        }
        Ok(out)
    }

    /// The entry at `path` from the root, each part matched ignoring case.
    pub fn lookup(&self, path: &[&str]) -> Option<IsoEntry> {
        let mut e = self.root.clone();
        for part in path {
            e = self.read_dir(&e).ok()?.into_iter().find(|c| c.name.eq_ignore_ascii_case(part))?;
        }
        Some(e)
    }

    /// Copies file `e` to `dest`.
    pub fn extract(&self, e: &IsoEntry, dest: &Path) -> Result<()> {
        let mut reader = self.extent(e)?.reader();
        let mut out =
            std::fs::File::create(dest).map_err(|err| Error::io(dest, "cannot write", err))?;
        std::io::copy(&mut reader, &mut out).map_err(|err| Error::io(dest, "cannot write", err))?;
        Ok(())
    }
}
