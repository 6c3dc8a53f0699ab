//! How running `qemu-img` fails, kept as the source of the engine's
//! [`ErrorKind::ToolFailed`](crate::ErrorKind::ToolFailed) errors: the exact command line and
//! what the tool said.

/// A failure to run `qemu-img` or to read its answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The program could not be started.
    #[error("cannot run {program}")]
    Spawn {
        /// The program (`qemu-img`, or `$HYPER2KVM_QEMU_IMG`).
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It ran and exited with a failure.
    #[error("{command} exited with {status}: {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it wrote on stderr, trimmed.
        stderr: String,
    },
    /// Waiting for it failed.
    #[error("waiting for {command}")]
    Wait {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Its JSON output did not parse.
    #[error("unexpected output from {command}")]
    Output {
        /// The command line.
        command: String,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
}
