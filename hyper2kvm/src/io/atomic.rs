//! Files written under a temporary name in their directory, flushed, and renamed into place:
//! a partial output never looks finished.

use std::io::Write;
use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_leave_nothing_behind() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("r.json");
        write_json(&p, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\n  \"a\": 1\n}");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1, "no temporary file left");
        let e = write_atomically(&t.path().join("no/such/dir/x"), b"x").unwrap_err();
        assert!(e.to_string().contains("no/such/dir"), "{e}");
    }
}
