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

/// A stage of a conversion or manifest job, the one name used by the command line, the
/// daemon, `report.json`, the C ABI and Python (`Display` and `FromStr` give `load`, `verify`,
/// `convert`, `inspect`, `fix`, `validate`, `output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Reading and checking the manifest.
    Load,
    /// Checksums of the source disks.
    Verify,
    /// Reading the guest.
    Inspect,
    /// Changing the guest.
    Fix,
    /// Writing the disks.
    Convert,
    /// `qemu-img check` and the boot test.
    Validate,
    /// Renaming into place, the domain and the report.
    Output,
}

impl Stage {
    /// Every stage, in the order a manifest lists them.
    pub const ALL: [Stage; 7] = [
        Stage::Load,
        Stage::Verify,
        Stage::Inspect,
        Stage::Fix,
        Stage::Convert,
        Stage::Validate,
        Stage::Output,
    ];

    /// Its name in events and the report.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Load => "load",
            Stage::Verify => "verify",
            Stage::Inspect => "inspect",
            Stage::Fix => "fix",
            Stage::Convert => "convert",
            Stage::Validate => "validate",
            Stage::Output => "output",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A stage name that is none of [`Stage::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stage {0:?}")]
pub struct UnknownStage(pub String);

impl std::str::FromStr for Stage {
    type Err = UnknownStage;
    fn from_str(s: &str) -> std::result::Result<Stage, UnknownStage> {
        Stage::ALL.into_iter().find(|st| st.name() == s).ok_or_else(|| UnknownStage(s.into()))
    }
}

/// One progress report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// What is being done.
    pub stage: Stage,
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
    fn stage_names_round_trip() {
        for st in Stage::ALL {
            assert_eq!(st.to_string().parse::<Stage>().unwrap(), st);
            assert_eq!(serde_json::to_value(st).unwrap(), st.name());
        }
        assert!("boot-test".parse::<Stage>().is_err());
    }

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
