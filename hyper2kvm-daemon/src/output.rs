//! Presenting results: human text, JSON documents, progress, and exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

use hyper2kvm::{Error, Progress};
use indicatif::{ProgressBar, ProgressStyle};

/// Exit status for an engine error: 2 when the input was at fault, else 1.
pub fn exit_code(err: &Error) -> ExitCode {
    if err.kind().is_input_error() { ExitCode::from(2) } else { ExitCode::from(1) }
}

/// Prints an error on stderr in the usual `hyper2kvm: error: …` form.
/// In the JSON log format it is a tracing event with the error's kind and path.
pub fn report_error(err: &Error) {
    if crate::logger::format() == crate::logger::LogFormat::Json {
        let path = err.path().map(|p| p.display().to_string());
        tracing::error!(
            target: crate::logger::EVENT_TARGET,
            kind = err.kind().as_str(),
            path,
            "hyper2kvm: error: {err}"
        );
    } else {
        eprintln!("hyper2kvm: error: {err}");
    }
}

/// Prints a JSON document on stdout.
pub fn print_json(value: &serde_json::Value) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("hyper2kvm: error: cannot encode JSON: {e}"),
    }
}

/// Runs `work` on every input, describing each result in text (`describe`) or collecting them
/// into one JSON document `{"hyper2kvm_version", "inputs": [{"path", "result"|"error"}]}`.
/// The exit status is that of the last failure (2 for bad input, 1 otherwise), else success.
pub fn for_each_input<T: serde::Serialize>(
    inputs: &[std::path::PathBuf],
    json: bool,
    mut work: impl FnMut(&std::path::Path) -> Result<T, Error>,
    mut describe: impl FnMut(&std::path::Path, &T),
) -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    let mut results = Vec::new();
    for path in inputs {
        match work(path) {
            Ok(r) => {
                if !json {
                    describe(path, &r);
                }
                results.push(serde_json::json!({ "path": path, "result": r }));
            }
            Err(e) => {
                report_error(&e);
                status = exit_code(&e);
                results.push(serde_json::json!({ "path": path, "error": e.to_json() }));
            }
        }
    }
    if json {
        print_json(
            &serde_json::json!({ "hyper2kvm_version": hyper2kvm::VERSION, "inputs": results }),
        );
    }
    status
}

/// Human-readable byte counts (binary units).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// Shows progress: a bar when stderr is a terminal, otherwise a plain line every 5 %.
pub struct ProgressView {
    bar: Option<ProgressBar>,
    last_step: Option<u64>,
}

impl ProgressView {
    /// A view suited to where stderr goes.
    pub fn new() -> ProgressView {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:40}] {percent:>3}% {bytes}/{total_bytes} {eta}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b
        });
        ProgressView { bar, last_step: None }
    }

    /// Takes one progress report.
    pub fn update(&mut self, p: &Progress) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(p.total);
                bar.set_position(p.done);
                bar.set_message(format!("{} {}", p.stage, p.item));
            }
            None => {
                let step = (p.fraction() * 20.0).floor() as u64;
                if self.last_step != Some(step) {
                    self.last_step = Some(step);
                    eprintln!("progress: {} {} {:.0}%", p.stage, p.item, p.fraction() * 100.0);
                }
            }
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Peak resident set size in bytes of this process (`self`) and of the largest child it has
/// waited for (`children`: qemu-img), from `getrusage`.
pub fn peak_rss() -> serde_json::Value {
    let read = |who: libc::c_int| {
        let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes a complete rusage into the buffer on success.
        let ok = unsafe { libc::getrusage(who, u.as_mut_ptr()) } == 0;
        // SAFETY: zero-initialised and, on success, filled by the kernel.
        ok.then(|| unsafe { u.assume_init() }.ru_maxrss as u64 * 1024)
    };
    serde_json::json!({ "self": read(libc::RUSAGE_SELF), "children": read(libc::RUSAGE_CHILDREN) })
}
