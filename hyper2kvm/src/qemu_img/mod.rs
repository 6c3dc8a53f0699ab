//! A typed wrapper over the `qemu-img` tool: one function per subcommand we use (`info`,
//! `check`, `convert`, `create`, `compare`, `map`), JSON output parsed into the structs of
//! [`types`], stderr kept in the error, the exact command line logged at debug level.
//!
//! Images are always named with a [`BlockSpec`] (`json:{…}`) built from our own probe, never by
//! file name alone: qemu never guesses a format, a disk inside an OVA is read in place through
//! the raw driver's `offset`/`size`, and a delta's parent is exactly the file we validated.
//! The binary is `qemu-img` on `PATH`, or `$HYPER2KVM_QEMU_IMG`.

mod convert;
mod error;
pub mod types;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

pub use convert::{ConvertOptions, convert, convert_observed};
pub use error::ToolError;
pub use types::{CheckReport, ImageInfo, MapEntry};

use crate::error::{Error, ErrorKind, Result};
use crate::formats::ImageFormat;

/// How qemu opens an image: a `json:` block-device description.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSpec(Value);

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// qemu's `file` node for `path` (made absolute).
pub fn file_node(path: &Path) -> Value {
    json!({ "driver": "file", "filename": absolute(path) })
}

impl BlockSpec {
    /// A description qemu takes as it is (built by [`crate::image`] for a probed image).
    pub fn from_json(node: Value) -> BlockSpec {
        BlockSpec(node)
    }

    /// The description as JSON.
    pub fn as_json(&self) -> &Value {
        &self.0
    }

    /// A plain file of a known format (our own outputs).
    pub fn file(path: &Path, format: ImageFormat) -> BlockSpec {
        BlockSpec(json!({ "driver": format.qemu_driver(), "file": file_node(path) }))
    }

    /// The same image without its explicit backing chain (`qemu-img info` opens only the top
    /// layer and refuses backing options).
    pub fn top_layer(&self) -> BlockSpec {
        let mut v = self.0.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("backing");
        }
        BlockSpec(v)
    }

    /// The top-level qemu driver (`vmdk`, `qcow2`, `raw`, …).
    pub fn driver(&self) -> &str {
        self.0["driver"].as_str().unwrap_or("")
    }

    /// The `json:{…}` filename qemu accepts.
    pub fn to_arg(&self) -> String {
        format!("json:{}", self.0)
    }
}

/// The `qemu-img` executable to run.
pub fn binary() -> OsString {
    std::env::var_os("HYPER2KVM_QEMU_IMG").unwrap_or_else(|| "qemu-img".into())
}

fn command() -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(binary());
    c.stdin(Stdio::null()).env("LC_ALL", "C");
    // SAFETY: prctl(2) is async-signal-safe. qemu-img dies with the thread that started it,
    // so a killed hyper2kvm (kill -9, a daemon crash) leaves no conversion running on.
    unsafe {
        c.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
            Ok(())
        });
    }
    c
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// The engine's error for a `qemu-img` run that failed, its [`ToolError`] as the source.
fn tool_error(cmd: &Command, what: &str, out: &Output) -> Error {
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    failed(cmd, what, out.status, stderr)
}

fn failed(cmd: &Command, what: &str, status: std::process::ExitStatus, stderr: String) -> Error {
    let message = format!("qemu-img {what} failed ({status}): {stderr}");
    Error::new(ErrorKind::ToolFailed, message)
        .with_source(ToolError::Failed { command: describe(cmd), status, stderr })
        .context(describe(cmd))
}

/// The engine's error for a `qemu-img` that could not be started.
fn spawn_error(e: std::io::Error) -> Error {
    let program = binary().to_string_lossy().into_owned();
    Error::new(ErrorKind::ToolFailed, format!("cannot run {program}: {e}"))
        .with_source(ToolError::Spawn { program, source: e })
}

/// Runs a command to completion, capturing output.
fn run(mut cmd: Command) -> Result<(Command, Output)> {
    tracing::debug!("running {}", describe(&cmd));
    let out = cmd.output().map_err(spawn_error)?;
    Ok((cmd, out))
}

fn parse_json<T: serde::de::DeserializeOwned>(cmd: &Command, out: &Output) -> Result<T> {
    serde_json::from_slice(&out.stdout).map_err(|e| {
        let command = describe(cmd);
        Error::new(ErrorKind::ToolFailed, format!("unexpected output from {command}: {e}"))
            .with_source(ToolError::Output { command, source: e })
    })
}

/// The version string of `qemu-img` (e.g. `7.2.0`).
pub fn version() -> Result<String> {
    let mut c = command();
    c.arg("--version");
    let (cmd, out) = run(c)?;
    if !out.status.success() {
        return Err(tool_error(&cmd, "--version", &out));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.split_whitespace().nth(2).unwrap_or("unknown").to_string())
}

/// `qemu-img info --output=json`.
pub fn info(spec: &BlockSpec) -> Result<ImageInfo> {
    let mut c = command();
    c.args(["info", "--output=json"]).arg(spec.top_layer().to_arg());
    let (cmd, out) = run(c)?;
    if !out.status.success() {
        return Err(tool_error(&cmd, "info", &out));
    }
    parse_json(&cmd, &out)
}

/// `qemu-img check --output=json` on one of our outputs. Leaks are reported, not failed;
/// corruption is an error.
pub fn check(path: &Path, format: ImageFormat) -> Result<CheckReport> {
    let mut c = command();
    c.args(["check", "--output=json", "-f", format.qemu_driver()]).arg(path);
    let (cmd, out) = run(c)?;
    let code = out.status.code();
    if code == Some(63) || (format == ImageFormat::Raw && code == Some(1)) {
        // The driver has no consistency check (raw): nothing can be corrupt in its metadata.
        return Ok(CheckReport {
            format: format.qemu_driver().into(),
            corruptions: 0,
            leaks: 0,
            check_errors: 0,
            allocated_clusters: None,
            total_clusters: None,
        });
    }
    if !matches!(code, Some(0) | Some(2) | Some(3)) {
        return Err(tool_error(&cmd, "check", &out));
    }
    let report: CheckReport = parse_json(&cmd, &out)?;
    if report.corruptions > 0 || report.check_errors > 0 {
        return Err(Error::new(
            ErrorKind::ToolFailed,
            format!(
                "qemu-img check found {} corruptions and {} errors",
                report.corruptions, report.check_errors
            ),
        )
        .with_path(path));
    }
    Ok(report)
}

/// `qemu-img create`: a new image of `size` bytes, or an overlay on `backing`.
pub fn create(
    path: &Path,
    format: ImageFormat,
    size: u64,
    backing: Option<(&Path, ImageFormat)>,
) -> Result<()> {
    let mut c = command();
    c.args(["create", "-q", "-f", format.qemu_driver()]);
    if let Some((b, bf)) = backing {
        c.arg("-b").arg(absolute(b)).args(["-F", bf.qemu_driver()]);
    }
    c.arg(path).arg(size.to_string());
    let (cmd, out) = run(c)?;
    if !out.status.success() {
        return Err(tool_error(&cmd, "create", &out));
    }
    Ok(())
}

/// `qemu-img create -f qcow2 -b SPEC`: a thin qcow2 overlay whose backing is `spec`, so that
/// anything (libguestfs, a test boot) can read the source through it and any write lands in
/// the overlay, never in the source.
pub fn create_overlay(path: &Path, spec: &BlockSpec, size: u64) -> Result<()> {
    let mut c = command();
    c.args(["create", "-q", "-f", "qcow2", "-F", spec.driver(), "-b"])
        .arg(spec.to_arg())
        .arg(path)
        .arg(size.to_string());
    let (cmd, out) = run(c)?;
    if !out.status.success() {
        return Err(tool_error(&cmd, "create", &out));
    }
    Ok(())
}

/// `qemu-img compare`: true when both images show the guest the same content.
pub fn compare(a: &BlockSpec, b: &BlockSpec) -> Result<bool> {
    let mut c = command();
    c.args(["compare", "-q"]).arg(a.to_arg()).arg(b.to_arg());
    let (cmd, out) = run(c)?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(tool_error(&cmd, "compare", &out)),
    }
}

/// `qemu-img map --output=json`: where the guest's data lies.
pub fn map(spec: &BlockSpec) -> Result<Vec<MapEntry>> {
    let mut c = command();
    c.args(["map", "--output=json"]).arg(spec.to_arg());
    let (cmd, out) = run(c)?;
    if !out.status.success() {
        return Err(tool_error(&cmd, "map", &out));
    }
    parse_json(&cmd, &out)
}
