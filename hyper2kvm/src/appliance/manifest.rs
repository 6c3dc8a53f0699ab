//! The OVF package manifest (`.mf`): one `ALGO(file)= hex` line per file (DSP0243 5.1), also in
//! VirtualBox's spaced form `SHA256 (file) = hex`. Digests are computed while streaming.

use std::io::Read;
use std::path::Path;

use serde::Serialize;
use sha1::Digest;

use crate::error::{Error, ErrorKind, Result};

/// A digest algorithm a manifest may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Algorithm {
    /// SHA-1 (OVF 1.x).
    #[serde(rename = "SHA1")]
    Sha1,
    /// SHA-256 (OVF 2.x, VMware since 6.5).
    #[serde(rename = "SHA256")]
    Sha256,
    /// SHA-512.
    #[serde(rename = "SHA512")]
    Sha512,
}

/// One manifest line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestEntry {
    /// Digest algorithm.
    pub algorithm: Algorithm,
    /// File name as written.
    pub file: String,
    /// Expected digest, lower-case hex.
    pub digest: String,
}

/// A parsed manifest: the lines that could be checked, and a warning for each that could not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Lines naming a file, a known algorithm and a digest of the right length.
    pub entries: Vec<ManifestEntry>,
    /// One per line that was skipped (garbage, an unknown algorithm), naming the line.
    pub warnings: Vec<String>,
}

fn parse_line(line: &str) -> std::result::Result<ManifestEntry, String> {
    let expected = || format!("expected ALGO(file)= digest, found {line:?}");
    let open = line.find('(').ok_or_else(expected)?;
    let close = line.rfind(')').filter(|&c| c > open).ok_or_else(expected)?;
    let algorithm = match line[..open].trim() {
        "SHA1" => Algorithm::Sha1,
        "SHA256" => Algorithm::Sha256,
        "SHA512" => Algorithm::Sha512,
        other => return Err(format!("digest algorithm {other:?} is not supported")),
    };
    let file = line[open + 1..close].trim().to_string();
    let rest = line[close + 1..].trim();
    let digest = rest.strip_prefix('=').ok_or_else(expected)?.trim().to_ascii_lowercase();
    let want_len = match algorithm {
        Algorithm::Sha1 => 40,
        Algorithm::Sha256 => 64,
        Algorithm::Sha512 => 128,
    };
    if file.is_empty() || digest.len() != want_len || !digest.bytes().all(|c| c.is_ascii_hexdigit())
    {
        return Err(expected());
    }
    Ok(ManifestEntry { algorithm, file, digest })
}

/// Parses manifest text leniently, as other tools read what exporters write: both spacings
/// (`SHA1(f)= hex`, `SHA1(f)=hex`, `SHA1 (f) = hex`) are entries; a line that does not parse
/// is a warning naming it (`origin` and the line number), never an error. Whether the entries
/// match is checked later.
pub fn parse(origin: &Path, text: &str) -> Parsed {
    let mut out = Parsed::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(e) => out.entries.push(e),
            Err(why) => out.warnings.push(format!(
                "{} line {}: {why}; the line is ignored",
                origin.file_name().map(|f| f.to_string_lossy()).unwrap_or_default(),
                n + 1
            )),
        }
    }
    out
}

/// A running digest in one of the manifest algorithms.
#[derive(Debug, Clone)]
pub enum Hasher {
    /// SHA-1.
    Sha1(sha1::Sha1),
    /// SHA-256.
    Sha256(sha2::Sha256),
    /// SHA-512.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A fresh hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest as lower-case hex.
    pub fn finish_hex(self) -> String {
        let bytes: Vec<u8> = match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Hashes everything `reader` yields with `algorithm`.
pub fn digest_reader(mut reader: impl Read, algorithm: Algorithm) -> std::io::Result<String> {
    let mut h = Hasher::new(algorithm);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(h.finish_hex()),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Compares a computed digest with the manifest's; a mismatch is a [`ErrorKind::Checksum`]
/// error naming the file.
pub fn check(origin: &Path, entry: &ManifestEntry, computed: &str) -> Result<()> {
    if computed == entry.digest {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Checksum,
        format!(
            "{:?} checksum mismatch for {:?}: the manifest says {}, the file's content gives {}",
            entry.algorithm, entry.file, entry.digest, computed
        ),
    )
    .with_path(origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_parse() {
        let text = "SHA256(vm.ovf)= ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789\nSHA1 (vm-disk1.vmdk) = 0123456789abcdef0123456789abcdef01234567\n";
        let m = parse(Path::new("vm.mf"), text).entries;
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].algorithm, Algorithm::Sha256);
        assert_eq!(m[0].file, "vm.ovf");
        assert!(m[0].digest.starts_with("abcdef"));
        assert_eq!(m[1].file, "vm-disk1.vmdk");
    }

    #[test]
    fn digests_match_known_values() {
        assert_eq!(
            digest_reader(&b"abc"[..], Algorithm::Sha1).unwrap(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            digest_reader(&b"abc"[..], Algorithm::Sha256).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn bad_lines_are_warnings_naming_the_line() {
        let sha1 = "0123456789abcdef0123456789abcdef01234567";
        let text = format!(
            "SHA256(x)= 12\nMD5(x)= 0123456789abcdef0123456789abcdef\ngarbage here\nSHA1(y)={sha1}\n"
        );
        let p = parse(Path::new("/exports/vm.mf"), &text);
        assert_eq!(p.entries.len(), 1, "the line without the space is an entry");
        assert_eq!((p.entries[0].file.as_str(), p.entries[0].digest.as_str()), ("y", sha1));
        assert_eq!(p.warnings.len(), 3, "{:?}", p.warnings);
        assert!(p.warnings[0].starts_with("vm.mf line 1:"), "{}", p.warnings[0]);
        assert!(p.warnings[1].contains("\"MD5\" is not supported"), "{}", p.warnings[1]);
        assert!(p.warnings[2].contains("line 3") && p.warnings[2].contains("garbage here"));
    }
}
