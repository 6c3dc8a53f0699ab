//! File notifications on the queue directory (inotify), waited on with a timeout so the main
//! loop also keeps its periodic scan, the watchdog and signals. Where inotify is unavailable
//! (some network file systems, exhausted watches) the daemon falls back to scanning every
//! `POLL_INTERVAL`.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use inotify::{Inotify, WatchMask};

/// Watches one directory.
#[derive(Debug)]
pub struct Watcher {
    inotify: Option<Inotify>,
    buffer: Vec<u8>,
}

impl Watcher {
    /// Watches `dir` for files written, closed, moved in or created.
    pub fn new(dir: &Path) -> Watcher {
        let inotify = Inotify::init().and_then(|i| {
            i.watches().add(
                dir,
                WatchMask::CLOSE_WRITE
                    | WatchMask::MOVED_TO
                    | WatchMask::CREATE
                    | WatchMask::MODIFY
                    | WatchMask::ATTRIB,
            )?;
            Ok(i)
        });
        let inotify = match inotify {
            Ok(i) => Some(i),
            Err(e) => {
                log::warn!(
                    "cannot watch {} with inotify ({e}); scanning every POLL_INTERVAL instead",
                    dir.display()
                );
                None
            }
        };
        Watcher { inotify, buffer: vec![0; 64 * 1024] }
    }

    /// True when notifications work.
    pub fn is_active(&self) -> bool {
        self.inotify.is_some()
    }

    /// Waits up to `timeout` for notifications; returns the names they were about (possibly
    /// with repeats), or nothing on timeout or an interrupting signal.
    pub fn wait(&mut self, timeout: Duration) -> Vec<String> {
        let Some(ino) = &mut self.inotify else {
            std::thread::sleep(timeout);
            return Vec::new();
        };
        let mut pfd = libc::pollfd { fd: ino.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n <= 0 {
            return Vec::new();
        }
        let mut names = Vec::new();
        while let Ok(events) = ino.read_events(&mut self.buffer) {
            let before = names.len();
            names.extend(events.filter_map(|e| e.name.map(|n| n.to_string_lossy().into_owned())));
            if names.len() == before {
                break;
            }
        }
        names
    }
}
