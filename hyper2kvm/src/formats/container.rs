//! The magics of what is not a disk image but may hold or describe one: gzip, xz, tar and zip
//! archives (OVAs), XML (OVF, libvirt domains) and VMX files. Probing tells them from disk
//! images here; [`crate::appliance`] reads them.

/// gzip member header (RFC 1952 2.3.1).
pub const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
/// xz stream header magic (xz file format 2.1.1.1).
pub const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];

/// Local file header signature (`PK\x03\x04`), the first bytes of a zip archive.
pub const LOCAL_MAGIC: &[u8] = b"PK\x03\x04";
/// `ustar` at byte 257: a POSIX tar header (POSIX.1-1988 ustar format).
pub fn is_tar(head: &[u8]) -> bool {
    head.len() >= 262 && &head[257..262] == b"ustar"
}

/// True when `head` is an XML document (an OVF, a libvirt domain, or another XML we will name
/// in an error): an XML declaration, or text opening with an element.
pub fn looks_like_xml(head: &[u8]) -> bool {
    let s = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = s.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(s.len());
    let s = &s[start..];
    let text = !s[..s.len().min(512)].contains(&0);
    s.starts_with(b"<?xml")
        || (text && s.first() == Some(&b'<') && s.get(1).is_some_and(|c| c.is_ascii_alphabetic()))
}

/// True when `head` looks like a VMX file.
pub fn looks_like_vmx(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'));
    first.is_some_and(|l| l.starts_with(".encoding") || l.starts_with("config.version"))
        || text.lines().any(|l| l.trim_start().starts_with("virtualHW.version"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics() {
        assert!(looks_like_xml(b"\xef\xbb\xbf  <?xml version='1.0'?>"));
        assert!(looks_like_xml(b"<domain type='kvm'>"));
        assert!(!looks_like_xml(b"<\x00\x01"));
        assert!(looks_like_vmx(b".encoding = \"UTF-8\"\nconfig.version = \"8\"\n"));
        assert!(!looks_like_vmx(b"<?xml version='1.0'?>"));
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert!(is_tar(&tar) && !is_tar(&tar[..261]));
    }
}
