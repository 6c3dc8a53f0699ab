//! `qemu-img convert` with progress, cancellation and tuned options.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use super::{BlockSpec, ToolError, command, describe, failed, spawn_error};
use crate::error::{Error, ErrorKind, Result};
use crate::formats::ImageFormat;
use crate::progress::CancelToken;

/// How to run one `qemu-img convert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertOptions {
    /// Output format (`qcow2` or `raw`).
    pub format: ImageFormat,
    /// Compress qcow2 clusters; the level picks the algorithm (see [`compression_type`]).
    pub compress_level: Option<u8>,
    /// Parallel coroutines (`-m`, 1–16).
    pub coroutines: u8,
    /// Allow out-of-order writes (`-W`); only used when not compressing.
    pub out_of_order: bool,
    /// Minimum run of zeros, in bytes, left unallocated in the output (`-S`).
    pub sparse_bytes: u64,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            format: ImageFormat::Qcow2,
            compress_level: None,
            coroutines: 8,
            out_of_order: true,
            sparse_bytes: 4096,
        }
    }
}

/// The qcow2 `compression_type` for a level. qemu-img has no knob for the deflate level, so
/// levels 1–3 ask for zstd, which is much faster at a similar ratio, and 4–9 keep zlib, which
/// every qemu reading the image supports.
pub fn compression_type(level: u8) -> &'static str {
    if level <= 3 { "zstd" } else { "zlib" }
}

/// The argument list for a conversion (without the program name).
pub fn convert_args(src: &BlockSpec, dst: &Path, opts: &ConvertOptions) -> Vec<String> {
    let mut a: Vec<String> =
        vec!["convert".into(), "-p".into(), "-O".into(), opts.format.qemu_driver().into()];
    a.push("-m".into());
    a.push(opts.coroutines.clamp(1, 16).to_string());
    a.push("-S".into());
    a.push(opts.sparse_bytes.to_string());
    match (opts.format, opts.compress_level) {
        (ImageFormat::Qcow2, Some(level)) => {
            a.push("-c".into());
            a.push("-o".into());
            a.push(format!("compat=1.1,compression_type={}", compression_type(level)));
        }
        (ImageFormat::Qcow2, None) => {
            a.push("-o".into());
            a.push("compat=1.1".into());
        }
        _ => {}
    }
    if opts.out_of_order && opts.compress_level.is_none() {
        a.push("-W".into());
    }
    a.push(src.to_arg());
    a.push(dst.to_string_lossy().into_owned());
    a
}

/// Parses qemu-img's `-p` output, `    (45.67/100%)`, into a fraction.
fn parse_percent(chunk: &str) -> Option<f64> {
    let inner = chunk.trim().strip_prefix('(')?.strip_suffix("/100%)")?;
    inner.parse::<f64>().ok().map(|p| (p / 100.0).clamp(0.0, 1.0))
}

/// Converts `src` into a new file `dst`. `progress` receives the completed fraction (0–1).
/// When `cancel` is set the child is killed, `dst` removed, and [`ErrorKind::Cancelled`]
/// returned. The caller chooses `dst` (a temporary name) and renames it when all is done.
pub fn convert(
    src: &BlockSpec,
    dst: &Path,
    opts: &ConvertOptions,
    progress: &mut dyn FnMut(f64),
    cancel: &CancelToken,
) -> Result<()> {
    convert_observed(src, dst, opts, progress, cancel, &mut |_| {})
}

/// [`convert`], telling `started` the qemu-img process's id once it runs (to observe its
/// reads, as the fused checksum does).
pub fn convert_observed(
    src: &BlockSpec,
    dst: &Path,
    opts: &ConvertOptions,
    progress: &mut dyn FnMut(f64),
    cancel: &CancelToken,
    started: &mut dyn FnMut(u32),
) -> Result<()> {
    let mut cmd = command();
    cmd.args(convert_args(src, dst, opts)).stdout(Stdio::piped()).stderr(Stdio::piped());
    tracing::debug!("running {}", describe(&cmd));
    let mut child = cmd.spawn().map_err(spawn_error)?;
    started(child.id());
    let (tx, rx) = mpsc::channel::<f64>();
    let mut stdout =
        child.stdout.take().ok_or_else(|| Error::new(ErrorKind::Internal, "no stdout pipe"))?;
    let mut stderr =
        child.stderr.take().ok_or_else(|| Error::new(ErrorKind::Internal, "no stderr pipe"))?;
    let out_thread = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let mut pending = String::new();
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            pending.push_str(&String::from_utf8_lossy(&buf[..n]));
            while let Some(i) = pending.find(['\r', '\n']) {
                if let Some(p) = parse_percent(&pending[..i]) {
                    let _ = tx.send(p);
                }
                pending.drain(..=i);
            }
        }
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(p) => progress(p),
            Err(mpsc::RecvTimeoutError::Timeout) | Err(mpsc::RecvTimeoutError::Disconnected) => {}
        }
        if cancel.is_cancelled() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(dst);
            let _ = out_thread.join();
            let _ = err_thread.join();
            return Err(Error::new(ErrorKind::Cancelled, "conversion cancelled").with_path(dst));
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::ToolFailed,
                    format!("waiting for qemu-img: {e}"),
                )
                .with_source(ToolError::Wait { command: describe(&cmd), source: e }));
            }
        }
    };
    let _ = out_thread.join();
    while let Ok(p) = rx.try_recv() {
        progress(p);
    }
    let stderr = err_thread.join().unwrap_or_default();
    if !status.success() {
        let _ = std::fs::remove_file(dst);
        return Err(failed(&cmd, "convert", status, stderr.trim().to_string()));
    }
    progress(1.0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_lines() {
        assert_eq!(parse_percent("    (45.00/100%)"), Some(0.45));
        assert_eq!(parse_percent("(100.00/100%)"), Some(1.0));
        assert_eq!(parse_percent("garbage"), None);
    }

    #[test]
    fn compressed_conversions_keep_writes_in_order() {
        let spec = BlockSpec::file(Path::new("/in.vmdk"), ImageFormat::Vmdk);
        let mut o = ConvertOptions { compress_level: Some(2), ..ConvertOptions::default() };
        let args = convert_args(&spec, Path::new("/out"), &o);
        assert!(args.contains(&"-c".to_string()));
        assert!(!args.contains(&"-W".to_string()));
        assert!(args.iter().any(|a| a.contains("compression_type=zstd")));
        o.compress_level = None;
        let args = convert_args(&spec, Path::new("/out"), &o);
        assert!(args.contains(&"-W".to_string()));
        assert!(!args.contains(&"-c".to_string()));
    }
}
