//! Progress reporting and cancellation shared by every long operation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag another thread (a signal handler, a binding, the daemon) sets to stop an operation.
/// Cloning shares the flag; [`child`](Self::child) makes a token that its parent also cancels
/// (one job of a batch can time out alone, while cancelling the batch stops every job).
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
    parents: Vec<Arc<AtomicBool>>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// A token backed by an existing flag (e.g. one a signal handler sets).
    pub fn from_flag(flag: Arc<AtomicBool>) -> CancelToken {
        CancelToken { flag, parents: Vec::new() }
    }

    /// The token's own flag, for code that sets it directly (signal handlers).
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    /// A new token, cancelled by its own [`cancel`](Self::cancel) or by this one's.
    pub fn child(&self) -> CancelToken {
        let mut parents = self.parents.clone();
        parents.push(self.flag.clone());
        CancelToken { flag: Arc::new(AtomicBool::new(false)), parents }
    }

    /// Requests cancellation; operations notice within a fraction of a second.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// True once [`cancel`](Self::cancel) was called on this token or a parent.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst) || self.parents.iter().any(|p| p.load(Ordering::SeqCst))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_cancelled_by_its_parent_but_not_the_reverse() {
        let parent = CancelToken::new();
        let (a, b) = (parent.child(), parent.child());
        let grandchild = a.child();
        a.cancel();
        assert!(a.is_cancelled() && grandchild.is_cancelled());
        assert!(!b.is_cancelled() && !parent.is_cancelled());
        parent.cancel();
        assert!(b.is_cancelled() && grandchild.is_cancelled());
    }
}
