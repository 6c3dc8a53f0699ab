//! File notifications on the queue directory (inotify), waited on with a timeout so the main
//! loop also keeps its periodic scan, the watchdog and signals. Where inotify is unavailable
//! (some network file systems, exhausted watches) the daemon falls back to scanning every
//! `POLL_INTERVAL`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use inotify::{Inotify, WatchMask};

/// Watches one directory.
#[derive(Debug)]
pub struct Watcher {
    inotify: Option<Inotify>,
    buffer: Vec<u8>,
    wake_rx: File,
    wake_tx: Arc<File>,
}

/// Ends a [`Watcher::wait`] early from another thread (a job finished).
#[derive(Debug, Clone)]
pub struct Waker(Arc<File>);

impl Waker {
    /// Wakes the waiting main loop.
    pub fn wake(&self) {
        let _ = (&*self.0).write(&[1]);
    }
}

/// A non-blocking pipe.
fn pipe() -> std::io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors that we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors owned by nobody else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

impl Watcher {
    /// Watches `dir` for files written, closed, moved in or created.
    /// `HYPER2KVM_NO_INOTIFY=1` forces the scan-only fallback (for comparing the two).
    pub fn new(dir: &Path) -> Watcher {
        let disabled = std::env::var_os("HYPER2KVM_NO_INOTIFY").is_some_and(|v| v == "1");
        let inotify = if disabled {
            Err(std::io::Error::other("disabled by HYPER2KVM_NO_INOTIFY=1"))
        } else {
            Inotify::init()
        };
        let inotify = inotify.and_then(|i| {
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
                tracing::warn!(
                    "cannot watch {} with inotify ({e}); scanning every POLL_INTERVAL instead",
                    dir.display()
                );
                None
            }
        };
        let (wake_rx, wake_tx) = pipe().expect("a pipe for the main loop");
        Watcher { inotify, buffer: vec![0; 64 * 1024], wake_rx, wake_tx: Arc::new(wake_tx) }
    }

    /// A handle that ends the current or next wait.
    pub fn waker(&self) -> Waker {
        Waker(self.wake_tx.clone())
    }

    /// True when notifications work.
    pub fn is_active(&self) -> bool {
        self.inotify.is_some()
    }

    /// Waits up to `timeout` for notifications; returns the names they were about (possibly
    /// with repeats), or nothing on timeout or an interrupting signal.
    pub fn wait(&mut self, timeout: Duration) -> Vec<String> {
        let ino_fd = self.inotify.as_ref().map_or(-1, |i| i.as_raw_fd());
        let mut fds = [
            libc::pollfd { fd: self.wake_rx.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: ino_fd, events: libc::POLLIN, revents: 0 },
        ];
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: two valid pollfds for the duration of the call (a negative fd is ignored).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if n <= 0 {
            return Vec::new();
        }
        let mut sink = [0u8; 256];
        while matches!((&self.wake_rx).read(&mut sink), Ok(k) if k > 0) {}
        let mut names = Vec::new();
        let Some(ino) = &mut self.inotify else { return names };
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
