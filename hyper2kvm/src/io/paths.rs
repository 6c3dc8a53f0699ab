//! Path confinement: names taken from untrusted inputs (descriptors, manifests, OVFs) may
//! only ever name files inside the directory they are meant for.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

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

/// Checks that a file name taken from a descriptor stays in the descriptor's directory: no
/// absolute path and no `..` component. Returns the name as a relative path.
pub fn confined_relative_path<'a>(origin: &Path, what: &str, name: &'a str) -> Result<&'a Path> {
    let p = Path::new(name);
    if p.is_absolute() {
        return Err(Error::invalid(
            origin,
            format!(
                "{what} {name:?} is an absolute path; only names relative to the descriptor's directory are allowed"
            ),
        ));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(Error::invalid(
            origin,
            format!("{what} {name:?} climbs out of the descriptor's directory with '..'"),
        ));
    }
    Ok(p)
}

/// `dir/p` for a path `p` from a manifest value, which must be relative and without `..`
/// (`what` names it in the error).
pub fn confined(dir: &Path, what: &str, p: &Path) -> Result<PathBuf> {
    if p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{what} {} must be a relative path inside the output directory", p.display()),
        ));
    }
    Ok(dir.join(p))
}

/// Replaces anything but `[A-Za-z0-9._-]` and strips leading dots, so a VM name from an OVF
/// can only ever name a plain file inside the output directory.
pub fn safe_file_stem(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .take(120)
        .collect();
    while s.starts_with('.') {
        s.remove(0);
    }
    if s.is_empty() { "disk".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_cannot_escape() {
        assert_eq!(safe_file_stem("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_file_stem("..."), "disk");
        assert_eq!(safe_file_stem("web server 01"), "web_server_01");
    }

    #[test]
    fn paths_stay_inside() {
        assert_eq!(lexical(Path::new("/o/a/../../../etc/./x")), Path::new("/etc/x"));
        assert_eq!(lexical(Path::new("../a/b/..")), Path::new("../a"));
        assert!(confined(Path::new("/o"), "x", Path::new("../r.json")).is_err());
        assert!(confined(Path::new("/o"), "x", Path::new("/r.json")).is_err());
        assert_eq!(
            confined(Path::new("/o"), "x", Path::new("r/r.json")).unwrap(),
            Path::new("/o/r/r.json")
        );
        let d = Path::new("/d/x.vmdk");
        assert!(confined_relative_path(d, "extent", "/etc/passwd").is_err());
        assert!(confined_relative_path(d, "extent", "a/../../b").is_err());
        assert!(confined_relative_path(d, "extent", "../x-flat.vmdk").is_err());
        assert_eq!(confined_relative_path(d, "extent", "a b.vmdk").unwrap(), Path::new("a b.vmdk"));
    }
}
