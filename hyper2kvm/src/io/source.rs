//! Positioned, bounds-checked reads from an input file or from a region of one.
//!
//! Every format parser reads through [`ByteSource`], so a disk stored inside an OVA (a byte
//! range of the tar file) is parsed exactly like a standalone file, and a short read always turns
//! into an error that names the file and the offset instead of a panic or a silent zero.

use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};

/// The largest single read a parser may make into memory (a block map, a grain directory, an
/// allocation table). No supported format needs more for disks up to several TiB; a header that
/// asks for more is corrupt or hostile, and is refused before anything is allocated.
pub const MAX_METADATA_READ: usize = 16 << 20;

/// A read-only view of `len` bytes of a file starting at `base`.
#[derive(Debug, Clone)]
pub struct ByteSource {
    file: Arc<File>,
    path: PathBuf,
    base: u64,
    len: u64,
}

/// Describes a non-regular file in words, for error messages.
fn file_type_name(meta: &Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Checks that `path` names an existing regular file (following symbolic links) and returns its
/// metadata; anything else is an input error naming the path.
pub fn regular_file_metadata(path: &Path) -> Result<Metadata> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "cannot access input", e))?;
    if !meta.is_file() {
        return Err(Error::invalid(
            path,
            format!("is {}, not a disk image file", file_type_name(&meta)),
        ));
    }
    Ok(meta)
}

impl ByteSource {
    /// Opens a regular file read-only. Directories, FIFOs, sockets and devices are refused
    /// before opening, and the open itself is non-blocking so a FIFO swapped in cannot hang us.
    pub fn open(path: &Path) -> Result<ByteSource> {
        regular_file_metadata(path)?;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| Error::io(path, "cannot open input", e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, "cannot stat input", e))?;
        if !meta.is_file() {
            return Err(Error::invalid(path, format!("is {}", file_type_name(&meta))));
        }
        Ok(ByteSource { file: Arc::new(file), path: path.to_path_buf(), base: 0, len: meta.len() })
    }

    /// A view of `len` bytes starting at `offset` of this view.
    pub fn slice(&self, offset: u64, len: u64) -> Result<ByteSource> {
        let end = offset.checked_add(len);
        if end.is_none_or(|end| end > self.len) {
            return Err(Error::invalid(
                &self.path,
                format!("region of {len} bytes at offset {offset} lies beyond the end of the data"),
            )
            .with_offset(self.base + offset));
        }
        Ok(ByteSource {
            file: self.file.clone(),
            path: self.path.clone(),
            base: self.base + offset,
            len,
        })
    }

    /// The file this view reads from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where this view starts in the file.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The number of bytes in this view.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the view holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The underlying open file (for streaming whole-file reads such as checksums).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Fills `buf` from `offset`; reading past the end is an [`ErrorKind::InvalidInput`]
    /// (truncated file) error.
    ///
    /// [`ErrorKind::InvalidInput`]: crate::ErrorKind::InvalidInput
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        self.file
            .read_exact_at(buf, self.base + offset)
            .map_err(|e| Error::io(&self.path, "read failed", e).with_offset(self.base + offset))
    }

    /// Fails unless `len` bytes at `offset` lie inside the view.
    fn check_range(&self, offset: u64, want: u64) -> Result<()> {
        if offset.checked_add(want).is_none_or(|end| end > self.len) {
            return Err(Error::invalid(
                &self.path,
                format!(
                    "truncated: needs {want} bytes at offset {offset} but holds only {} bytes",
                    self.len
                ),
            )
            .with_offset(self.base + offset));
        }
        Ok(())
    }

    /// Reads `len` bytes at `offset` into a new vector. The length is checked against the view
    /// and against [`MAX_METADATA_READ`] before anything is allocated, so a size taken from a
    /// header can never make us allocate more than the file holds.
    pub fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        self.check_range(offset, len as u64)?;
        if len > MAX_METADATA_READ {
            return Err(Error::invalid(
                &self.path,
                format!(
                    "a table of {len} bytes at offset {offset} is larger than the {} MiB any supported image needs",
                    MAX_METADATA_READ >> 20
                ),
            )
            .with_offset(self.base + offset));
        }
        let mut buf = vec![0u8; len];
        self.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// Reads up to `len` bytes at `offset`, fewer when the view ends first.
    pub fn read_up_to(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let avail = self.len.saturating_sub(offset).min(len as u64) as usize;
        self.read_vec(offset, avail)
    }
}

/// A sequential reader over a [`ByteSource`] (positioned reads; no shared file cursor).
#[derive(Debug)]
pub struct SourceReader {
    src: ByteSource,
    pos: u64,
}

impl std::io::Read for SourceReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.src.len - self.pos;
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = self.src.file.read_at(&mut buf[..n], self.src.base + self.pos)?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl ByteSource {
    /// A reader over the whole view, from its first byte.
    pub fn reader(&self) -> SourceReader {
        SourceReader { src: self.clone(), pos: 0 }
    }
}

/// Little-endian and big-endian field readers over a byte slice whose length the caller has
/// already checked.
pub(crate) mod bytes {
    /// `u16` little-endian at `off`.
    pub fn le16(b: &[u8], off: usize) -> u16 {
        u16::from_le_bytes([b[off], b[off + 1]])
    }
    /// `u32` little-endian at `off`.
    pub fn le32(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
    }
    /// `u64` little-endian at `off`.
    pub fn le64(b: &[u8], off: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[off..off + 8]);
        u64::from_le_bytes(a)
    }
    /// `u32` big-endian at `off`.
    pub fn be32(b: &[u8], off: usize) -> u32 {
        u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
    }
    /// `u64` big-endian at `off`.
    pub fn be64(b: &[u8], off: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[off..off + 8]);
        u64::from_be_bytes(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn short_reads_are_truncation_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        let src = ByteSource::open(&p).unwrap();
        let sub = src.slice(2, 4).unwrap();
        assert_eq!(sub.read_vec(0, 4).unwrap(), b"2345");
        let err = sub.read_vec(2, 4).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(src.slice(8, 4).is_err());
    }

    #[test]
    fn directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = ByteSource::open(dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("a directory"), "{err}");
    }
}
