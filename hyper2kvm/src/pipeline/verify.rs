//! The verify stage: each disk with a `checksum` hashed (SHA-256, streaming in 1 MiB reads),
//! several disks at once, before anything else reads them; a mismatch fails the job.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};

use crate::error::{Error, ErrorKind, Result};
use crate::io::sha256::{HashOptions, PACE_WINDOW, hash_file};
use crate::manifest::schema::ManifestDisk;
use crate::progress::{CancelToken, Progress};

/// Hashes one file, reporting bytes read.
fn hash(disk: &ManifestDisk, report: &mut dyn FnMut(u64), cancel: &CancelToken) -> Result<String> {
    let o = HashOptions { pace: None, window: PACE_WINDOW, report, cancel };
    hash_file(&disk.local_path, o)
}

/// Verifies every disk that has a checksum, `parallel` at a time.
pub(crate) fn verify_checksums(
    manifest: &std::path::Path,
    disks: &[ManifestDisk],
    parallel: usize,
    progress: &mut dyn FnMut(&Progress),
    cancel: &CancelToken,
) -> Result<()> {
    let todo: Vec<(usize, &ManifestDisk, u64)> = disks
        .iter()
        .enumerate()
        .filter(|(_, d)| d.checksum.is_some())
        .map(|(i, d)| (i, d, std::fs::metadata(&d.local_path).map(|m| m.len()).unwrap_or(0)))
        .collect();
    let total: u64 = todo.iter().map(|t| t.2).sum();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<()>>>> = Mutex::new(todo.iter().map(|_| None).collect());
    let (tx, rx) = mpsc::channel::<(usize, u64)>();
    std::thread::scope(|scope| {
        for _ in 0..parallel.clamp(1, todo.len().max(1)) {
            let tx = tx.clone();
            let (next, results, todo) = (&next, &results, &todo);
            scope.spawn(move || {
                loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(i, d, _)) = todo.get(k) else { break };
                    let r = hash(
                        d,
                        &mut |n| {
                            let _ = tx.send((k, n));
                        },
                        cancel,
                    )
                    .and_then(|got| {
                        let want =
                            d.checksum.as_deref().unwrap_or("").trim_start_matches("sha256:");
                        if got == want {
                            Ok(())
                        } else {
                            Err(Error::new(
                                ErrorKind::Checksum,
                                format!(
                                    "disks[{i}] ({}, {}): sha256 is {got}, the manifest says {want}",
                                    d.id,
                                    d.local_path.display()
                                ),
                            )
                            .with_path(manifest))
                        }
                    });
                    if let Ok(mut all) = results.lock() {
                        all[k] = Some(r);
                    }
                }
            });
        }
        drop(tx);
        let mut done = vec![0u64; todo.len()];
        for (k, n) in rx {
            done[k] = n;
            let item = todo[k].1.id.clone();
            progress(&Progress {
                stage: crate::progress::Stage::Verify,
                item,
                done: done.iter().sum(),
                total,
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| Error::new(ErrorKind::Internal, "a checksum thread panicked"))?;
    for r in results {
        r.unwrap_or_else(|| Err(Error::new(ErrorKind::Internal, "a disk was not verified")))?;
    }
    Ok(())
}
