//! File notifications on the queue directory: inotify, read as a stream on the daemon's tokio
//! runtime. Where inotify is unavailable (some network file systems, exhausted watches) the
//! daemon falls back to scanning every `POLL_INTERVAL`, as it also does as a safety net.

use std::path::Path;

use futures_util::{FutureExt, StreamExt};
use inotify::{EventStream, Inotify, WatchMask};

/// Watches one directory.
#[derive(Debug)]
pub struct Watcher {
    stream: Option<EventStream<Vec<u8>>>,
}

impl Watcher {
    /// Watches `dir` for files written, closed, moved in or created. Must run inside the
    /// runtime. `HYPER2KVM_NO_INOTIFY=1` forces the scan-only fallback (for comparing the two).
    pub fn new(dir: &Path) -> Watcher {
        let disabled = std::env::var_os("HYPER2KVM_NO_INOTIFY").is_some_and(|v| v == "1");
        let inotify = if disabled {
            Err(std::io::Error::other("disabled by HYPER2KVM_NO_INOTIFY=1"))
        } else {
            Inotify::init()
        };
        let stream = inotify.and_then(|i| {
            i.watches().add(
                dir,
                WatchMask::CLOSE_WRITE
                    | WatchMask::MOVED_TO
                    | WatchMask::CREATE
                    | WatchMask::MODIFY
                    | WatchMask::ATTRIB,
            )?;
            i.into_event_stream(vec![0u8; 64 * 1024])
        });
        match stream {
            Ok(s) => Watcher { stream: Some(s) },
            Err(e) => {
                tracing::warn!(
                    "cannot watch {} with inotify ({e}); scanning every POLL_INTERVAL instead",
                    dir.display()
                );
                Watcher { stream: None }
            }
        }
    }

    /// True when notifications work.
    pub fn is_active(&self) -> bool {
        self.stream.is_some()
    }

    /// Waits for notifications and returns the names they were about (possibly with repeats),
    /// with any others already queued. Never ends when notifications are off; an empty list
    /// after a read error (an overflow: the caller then scans).
    pub async fn changed(&mut self) -> Vec<String> {
        let Some(stream) = &mut self.stream else { return std::future::pending().await };
        let mut names = Vec::new();
        let mut take =
            |item: Option<std::io::Result<inotify::Event<std::ffi::OsString>>>| match item {
                Some(Ok(e)) => {
                    if let Some(n) = e.name {
                        names.push(n.to_string_lossy().into_owned());
                    }
                    true
                }
                Some(Err(e)) => {
                    tracing::warn!("inotify: {e}; scanning the queue instead");
                    false
                }
                None => false,
            };
        if take(stream.next().await) {
            while let Some(item) = stream.next().now_or_never() {
                if !take(item) {
                    break;
                }
            }
        }
        names
    }
}
