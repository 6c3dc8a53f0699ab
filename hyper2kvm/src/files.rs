//! Small helpers shared by every stage that writes results or reads addresses: files written
//! under a temporary name and renamed into place (a partial output never looks finished), and
//! MAC address parsing.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};

/// Writes `path` under a temporary name in its directory, flushed, then renamed into place.
pub fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.hyper2kvm-part"));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&tmp, "writing", e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, "renaming into place", e)
    })
}

/// Writes `value` as pretty JSON with [`write_atomically`].
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
    write_atomically(path, &text)
}

/// `a/./b/../c` → `a/c` without touching the file system (links are not followed: compare
/// with `canonicalize` too where links matter). A `..` at the root stays at the root; leading
/// `..` of a relative path are kept.
pub fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    out
}

/// A MAC address as six two-digit hex groups split by one of `separators`, in lower case with
/// colons; `None` when it is not one.
pub(crate) fn parse_mac(s: &str, separators: &[char]) -> Option<String> {
    let parts: Vec<&str> = s.split(separators).collect();
    let ok = parts.len() == 6
        && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    ok.then(|| parts.join(":").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_and_atomic_writes() {
        assert_eq!(
            parse_mac("00-50-56-AB-cd-EF", &[':', '-']).as_deref(),
            Some("00:50:56:ab:cd:ef")
        );
        assert_eq!(parse_mac("00-50-56-AB-cd-EF", &[':']), None);
        assert_eq!(parse_mac("00:50:56:ab:cd", &[':']), None);
        assert_eq!(parse_mac("00:50:56:ab:cd:eg", &[':']), None);
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("r.json");
        write_json(&p, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\n  \"a\": 1\n}");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1, "no temporary file left");
        assert_eq!(lexical(Path::new("/o/a/../../../etc/./x")), Path::new("/etc/x"));
        assert_eq!(lexical(Path::new("../a/b/..")), Path::new("../a"));
        let e = write_atomically(&t.path().join("no/such/dir/x"), b"x").unwrap_err();
        assert!(e.to_string().contains("no/such/dir"), "{e}");
    }
}
