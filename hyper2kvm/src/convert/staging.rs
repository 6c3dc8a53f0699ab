//! Outputs under temporary names until the job is done: [`Staging`] tracks the temporary
//! files (and an unpacking directory), removes them if the job fails, and renames the boot
//! disk into place as the very last step, so that its appearing means everything else is there
//! (HyperSDK polls for it).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A job's temporary files; whatever is still tracked when it is dropped is removed.
#[derive(Debug, Default)]
pub(crate) struct Staging {
    files: Vec<PathBuf>,
    dir: Option<PathBuf>,
    last: Option<(PathBuf, PathBuf)>,
}

impl Staging {
    /// Removes `path` now (a leftover of an earlier run) and on failure.
    pub fn track(&mut self, path: PathBuf) {
        let _ = std::fs::remove_file(&path);
        self.files.push(path);
    }

    /// Removes the directory `dir` (unpacked members) whatever happens.
    pub fn track_dir(&mut self, dir: PathBuf) {
        self.dir = Some(dir);
    }

    /// Renames `temp` to `fin` now.
    pub fn publish(&mut self, temp: &Path, fin: &Path) -> Result<()> {
        std::fs::rename(temp, fin)
            .map_err(|e| Error::io(fin, "cannot rename output into place", e))?;
        self.files.retain(|f| f != temp);
        Ok(())
    }

    /// Keeps `temp` to be renamed to `fin` by [`finish`](Self::finish); every other tracked
    /// file is no longer removed on failure (it is already in place).
    pub fn hold_last(&mut self, temp: PathBuf, fin: PathBuf) {
        self.files.retain(|f| *f == temp);
        self.last = Some((temp, fin));
    }

    /// Where an output's data is now: the held file's temporary name until
    /// [`finish`](Self::finish).
    pub fn current_path<'a>(&'a self, final_path: &'a Path) -> &'a Path {
        match &self.last {
            Some((temp, fin)) if fin == final_path => temp,
            _ => final_path,
        }
    }

    /// Renames the held file into place and syncs the directory: the job's last step.
    pub fn finish(&mut self) -> Result<()> {
        if let Some((temp, fin)) = self.last.take() {
            std::fs::rename(&temp, &fin)
                .map_err(|e| Error::io(&fin, "cannot rename output into place", e))?;
            self.files.clear();
            if let Some(d) = fin.parent().and_then(|d| File::open(d).ok()) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Flushes a finished output to disk and returns its size.
pub(crate) fn sync_file(path: &Path) -> Result<u64> {
    let f = File::open(path).map_err(|e| Error::io(path, "cannot reopen output", e))?;
    f.sync_all().map_err(|e| Error::io(path, "cannot flush output", e))?;
    Ok(f.metadata().map_err(|e| Error::io(path, "cannot stat output", e))?.len())
}
