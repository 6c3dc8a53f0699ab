//! SHA-256 of a whole file in 1 MiB reads, optionally paced to stay just ahead of another
//! reader of the same file (qemu-img), so that together they read it from storage once: what
//! one reads first, the other finds in the page cache.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::progress::CancelToken;

/// How far the hash may run ahead of the reader it is paced against.
pub const PACE_WINDOW: u64 = 256 << 20;

/// How [`hash_file`] is paced and observed.
pub struct HashOptions<'a> {
    /// Bytes the other reader has read so far; `None` when it has finished (or cannot be
    /// observed), and the hash then runs freely.
    pub pace: Option<&'a (dyn Fn() -> Option<u64> + Sync)>,
    /// How far ahead of it the hash may run ([`PACE_WINDOW`]).
    pub window: u64,
    /// Called with the bytes hashed so far.
    pub report: &'a mut dyn FnMut(u64),
    /// Stops the work.
    pub cancel: &'a CancelToken,
}

impl std::fmt::Debug for HashOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashOptions")
            .field("paced", &self.pace.is_some())
            .field("window", &self.window)
            .finish()
    }
}

/// The lowercase hex SHA-256 of `path`.
pub fn hash_file(path: &Path, o: HashOptions<'_>) -> Result<String> {
    let cancelled = || Error::new(ErrorKind::Cancelled, "checksum verification cancelled");
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, "reading", e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        if let Some(pace) = o.pace {
            while let Some(theirs) = pace() {
                if done <= theirs.saturating_add(o.window) {
                    break;
                }
                if o.cancel.is_cancelled() {
                    return Err(cancelled());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        if o.cancel.is_cancelled() {
            return Err(cancelled());
        }
        let n = f.read(&mut buf).map_err(|e| Error::io(path, "reading", e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        done += n as u64;
        (o.report)(done);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Bytes a running process has read through system calls (`rchar` of `/proc/PID/io`), page
/// cache hits included; `None` when it cannot be read (the process is gone).
pub fn process_read_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("rchar:")).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn hashes_and_never_runs_more_than_the_window_ahead_of_a_slow_reader() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..(64u64 << 20)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let want: String = Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
        // The other reader reads 1 MiB every 2 ms (slower than hashing), then finishes.
        let window = 4u64 << 20;
        let theirs = AtomicU64::new(0);
        let finished = std::sync::atomic::AtomicBool::new(false);
        let pace = || (!finished.load(Ordering::SeqCst)).then(|| theirs.load(Ordering::SeqCst));
        let cancel = CancelToken::new();
        let mut most_ahead = 0u64;
        std::thread::scope(|s| {
            s.spawn(|| {
                while theirs.load(Ordering::SeqCst) < data.len() as u64 {
                    std::thread::sleep(Duration::from_millis(2));
                    theirs.fetch_add(1 << 20, Ordering::SeqCst);
                }
                finished.store(true, Ordering::SeqCst);
            });
            let mut report = |n: u64| {
                let ahead = n.saturating_sub(theirs.load(Ordering::SeqCst));
                most_ahead = most_ahead.max(ahead);
            };
            let o = HashOptions { pace: Some(&pace), window, report: &mut report, cancel: &cancel };
            assert_eq!(hash_file(&p, o).unwrap(), want);
        });
        assert!(most_ahead <= window + (1 << 20), "ran {most_ahead} bytes ahead");
        assert!(most_ahead >= window / 2, "the hash never got ahead: {most_ahead}");
        // Unpaced, it reads straight through.
        let mut n_seen = 0;
        let o = HashOptions { pace: None, window, report: &mut |n| n_seen = n, cancel: &cancel };
        assert_eq!(hash_file(&p, o).unwrap(), want);
        assert_eq!(n_seen, data.len() as u64);
    }

    #[test]
    fn reads_its_own_read_bytes() {
        let me = std::process::id();
        let before = process_read_bytes(me).unwrap();
        let _ = std::fs::read("/proc/self/status").unwrap();
        assert!(process_read_bytes(me).unwrap() > before);
    }
}
