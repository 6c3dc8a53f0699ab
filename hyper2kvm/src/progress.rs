//! Progress reporting and cancellation shared by every long operation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag another thread (a signal handler, a binding, the daemon) sets to stop an operation.
/// Cloning shares the flag.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// A token backed by an existing flag (e.g. one a signal handler sets).
    pub fn from_flag(flag: Arc<AtomicBool>) -> CancelToken {
        CancelToken(flag)
    }

    /// The shared flag, for code that sets it directly (signal handlers).
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }

    /// Requests cancellation; operations notice within a fraction of a second.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// True once [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// One progress report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// What is being done (`probe`, `convert`, …).
    pub stage: String,
    /// Which item (e.g. the output file being written).
    pub item: String,
    /// Bytes done so far, over all items of the stage.
    pub done: u64,
    /// Bytes to do in all, over all items of the stage.
    pub total: u64,
}

impl Progress {
    /// Completion as a fraction between 0 and 1.
    pub fn fraction(&self) -> f64 {
        if self.total == 0 { 1.0 } else { self.done as f64 / self.total as f64 }
    }
}
