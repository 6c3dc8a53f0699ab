//! The one public error type of the engine.
//!
//! Every fallible function returns [`Error`]: a small [`ErrorKind`] that callers branch on (the C
//! result codes and the Python exception classes are derived from it one to one), where it
//! happened (the file, the byte offset, the pipeline [`Stage`]), a human-readable message, and
//! the detailed cause as a boxed source — a module's own `thiserror` enum (e.g.
//! [`crate::qemu_img::ToolError`], [`crate::guest::GuestfsError`]) or an I/O error — so that
//! [`std::error::Error::source`] chains reach the detail and [`Error::to_json`] lists them.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::progress::Stage;

/// What went wrong, in the coarse terms a caller can act on.
///
/// The numeric values are part of the C ABI (`HYPER2KVM_*` result codes) and never change.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
pub enum ErrorKind {
    /// An I/O error that is not about the input's existence or permissions.
    Io = 1,
    /// A path that does not exist.
    NotFound = 2,
    /// A path we may not read or write.
    PermissionDenied = 3,
    /// The input is malformed: bad header, truncated file, unsafe path, bad XML.
    InvalidInput = 4,
    /// The input is well-formed but uses something we do not handle.
    Unsupported = 5,
    /// A checksum did not match.
    Checksum = 6,
    /// An external tool (`qemu-img`, …) failed or could not be run.
    ToolFailed = 7,
    /// Inspecting or changing the guest operating system failed.
    GuestInspection = 8,
    /// The operation was cancelled by the caller.
    Cancelled = 9,
    /// The operation ran past its time limit.
    Timeout = 10,
    /// A bug in hyper2kvm.
    Internal = 11,
}

impl ErrorKind {
    /// Every kind, in numeric order (used by the bindings to build their tables).
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::Io,
        ErrorKind::NotFound,
        ErrorKind::PermissionDenied,
        ErrorKind::InvalidInput,
        ErrorKind::Unsupported,
        ErrorKind::Checksum,
        ErrorKind::ToolFailed,
        ErrorKind::GuestInspection,
        ErrorKind::Cancelled,
        ErrorKind::Timeout,
        ErrorKind::Internal,
    ];

    /// A short stable name, e.g. `invalid_input`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::NotFound => "not_found",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Checksum => "checksum",
            ErrorKind::ToolFailed => "tool_failed",
            ErrorKind::GuestInspection => "guest_inspection",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Internal => "internal",
        }
    }

    /// True when the fault lies in what the caller handed us (bad or missing input) rather
    /// than in the work itself; the CLI exits with status 2 for these.
    pub fn is_input_error(self) -> bool {
        matches!(
            self,
            ErrorKind::NotFound
                | ErrorKind::PermissionDenied
                | ErrorKind::InvalidInput
                | ErrorKind::Unsupported
                | ErrorKind::Checksum
        )
    }

    fn from_io(kind: io::ErrorKind) -> ErrorKind {
        match kind {
            io::ErrorKind::NotFound => ErrorKind::NotFound,
            io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => ErrorKind::InvalidInput,
            _ => ErrorKind::Io,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The engine's error: a kind, where it happened, what happened, and why.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    path: Option<PathBuf>,
    offset: Option<u64>,
    stage: Option<Stage>,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, path: None, offset: None, stage: None, message: message.into(), source: None }
    }

    /// Shorthand for an [`ErrorKind::InvalidInput`] error about `path`.
    pub fn invalid(path: impl AsRef<Path>, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidInput, message).with_path(path)
    }

    /// Shorthand for an [`ErrorKind::Unsupported`] error about `path`.
    pub fn unsupported(path: impl AsRef<Path>, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unsupported, message).with_path(path)
    }

    /// An I/O error about `path`, classified by its [`io::ErrorKind`].
    pub fn io(path: impl AsRef<Path>, what: &str, err: io::Error) -> Error {
        let message = format!("{what}: {err}");
        Error::new(ErrorKind::from_io(err.kind()), message).with_path(path).with_source(err)
    }

    /// Attaches the file the error concerns (kept if one is already set).
    pub fn with_path(mut self, path: impl AsRef<Path>) -> Error {
        if self.path.is_none() {
            self.path = Some(path.as_ref().to_path_buf());
        }
        self
    }

    /// Attaches the byte offset within the file (kept if one is already set).
    pub fn with_offset(mut self, offset: u64) -> Error {
        self.offset.get_or_insert(offset);
        self
    }

    /// Attaches the pipeline stage the error arose in (kept if one is already set).
    pub fn with_stage(mut self, stage: Stage) -> Error {
        self.stage.get_or_insert(stage);
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    /// Prefixes the message with where in a larger input the error arose (e.g. an OVA member).
    pub fn context(mut self, prefix: impl fmt::Display) -> Error {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The file the error concerns, if known.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The byte offset in that file, if known.
    pub fn offset(&self) -> Option<u64> {
        self.offset
    }

    /// The pipeline stage it arose in, if known.
    pub fn stage(&self) -> Option<Stage> {
        self.stage
    }

    /// The messages of the chain of causes below this error, outermost first.
    pub fn causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            out.push(e.to_string());
            next = e.source();
        }
        out
    }

    /// The message without path or offset.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A JSON object describing the error (`kind`, `code`, `message`, `path`, `offset`,
    /// `stage`, and `causes`: the messages of its chain of sources).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": self.kind,
            "code": self.kind as u32,
            "message": self.to_string(),
            "path": self.path,
            "offset": self.offset,
            "stage": self.stage,
            "causes": self.causes(),
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{}: ", path.display())?;
        }
        f.write_str(&self.message)?;
        if let Some(offset) = self.offset {
            write!(f, " (at byte offset {offset})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_classified_and_name_the_file() {
        let err = Error::io("/x/y.vmdk", "cannot open", io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().starts_with("/x/y.vmdk: cannot open"));
        assert!(err.kind().is_input_error());
    }

    #[test]
    fn kinds_are_numbered_in_order() {
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*kind as u32, i as u32 + 1, "{kind}");
        }
    }

    #[test]
    fn causes_and_stage_are_kept_and_listed() {
        let io = io::Error::new(io::ErrorKind::UnexpectedEof, "short read");
        let inner = Error::io("/x/a.vhd", "reading the footer", io);
        let outer = Error::new(ErrorKind::InvalidInput, "disk-0 is unreadable")
            .with_source(inner)
            .with_stage(Stage::Convert)
            .with_stage(Stage::Output);
        assert_eq!(outer.stage(), Some(Stage::Convert), "the first stage set wins");
        let j = outer.to_json();
        assert_eq!(j["stage"], "convert");
        assert_eq!(
            j["causes"],
            serde_json::json!(["/x/a.vhd: reading the footer: short read", "short read"])
        );
    }

    #[test]
    fn offset_is_shown() {
        let err = Error::invalid("a", "bad magic").with_offset(512);
        assert_eq!(err.to_string(), "a: bad magic (at byte offset 512)");
    }
}
