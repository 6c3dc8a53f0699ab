//! Logging through `tracing` on stderr, in one of two formats:
//!
//! - `text` (the default): `hyper2kvm: warning: job{job_id=web01 vm_name=web01} stage{stage=fix}:
//!   message` lines, with the time since start at `-v` and above. When stderr is the journal
//!   (`JOURNAL_STREAM` names stderr's device and inode, as systemd sets it) lines carry sd-daemon
//!   priority prefixes (`<3>` error … `<7>` debug) instead, so `journalctl -p` filters them.
//! - `json`: one JSON object per line with the event's fields, its innermost span (`span`) and
//!   every enclosing span (`spans`: the job with its id and VM name, the stage, the disk).
//!
//! The level comes from `-v` and can be changed while running (the daemon's `LOG_LEVEL`, also
//! on reload). Job events ([`EVENT_TARGET`]) pass at `info` whatever the level, so a JSON
//! consumer always sees the stages.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

/// The target of the job events the command line prints (see [`crate::events`]).
pub const EVENT_TARGET: &str = "hyper2kvm_event";

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people (or the journal).
    #[default]
    Text,
    /// One JSON object per line, with the span fields.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("{s:?} is not one of text, json")),
        }
    }
}

static RELOAD: OnceLock<reload::Handle<Targets, Registry>> = OnceLock::new();
static FORMAT: OnceLock<LogFormat> = OnceLock::new();
/// True while the level shows `info`: text lines then carry the time since start.
static VERBOSE: AtomicBool = AtomicBool::new(false);

fn targets(level: LevelFilter) -> Targets {
    Targets::new().with_default(level).with_target(EVENT_TARGET, LevelFilter::INFO)
}

/// The level for a `-v` count.
pub fn level_for(verbosity: u8) -> LevelFilter {
    match verbosity {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Installs the subscriber (once per process).
pub fn init(verbosity: u8, format: LogFormat) {
    VERBOSE.store(level_for(verbosity) >= LevelFilter::INFO, Ordering::Relaxed);
    let (filter, handle) = reload::Layer::new(targets(level_for(verbosity)));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(TextFormat {
                        start: Instant::now(),
                        journal: stderr_is_journal(),
                    })
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    if installed.is_ok() {
        let _ = RELOAD.set(handle);
        let _ = FORMAT.set(format);
    }
}

/// The format chosen at [`init`].
pub fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or_default()
}

/// Sets the level (the daemon's `LOG_LEVEL`, also on reload).
pub fn configure(level: LevelFilter) {
    VERBOSE.store(level >= LevelFilter::INFO, Ordering::Relaxed);
    if let Some(h) = RELOAD.get() {
        let _ = h.reload(targets(level));
    }
}

/// True when systemd connected stderr to the journal: `JOURNAL_STREAM` is `DEV:INODE` of it.
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = v.to_str().and_then(|s| s.split_once(':')) else { return false };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else { return false };
    let Ok(meta) = std::fs::File::from(fd).metadata() else { return false };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// The `text` format.
struct TextFormat {
    start: Instant,
    journal: bool,
}

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let level = *event.metadata().level();
        if self.journal {
            let prio = match level {
                Level::ERROR => 3,
                Level::WARN => 4,
                Level::INFO => 6,
                _ => 7,
            };
            write!(w, "<{prio}>")?;
        } else {
            let name = match level {
                Level::ERROR => "error",
                Level::WARN => "warning",
                Level::INFO => "info",
                Level::DEBUG => "debug",
                _ => "trace",
            };
            if VERBOSE.load(Ordering::Relaxed) {
                let t = self.start.elapsed().as_secs_f64();
                write!(w, "hyper2kvm: [{t:7.1}s] {name}: ")?;
            } else {
                write!(w, "hyper2kvm: {name}: ")?;
            }
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                w.write_str(span.name())?;
                let ext = span.extensions();
                if let Some(f) = ext.get::<FormattedFields<N>>().filter(|f| !f.is_empty()) {
                    write!(w, "{{{f}}}")?;
                }
                w.write_str(": ")?;
            }
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_levels_parse() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!("xml".parse::<LogFormat>().is_err());
        assert_eq!(level_for(0), LevelFilter::WARN);
        assert_eq!(level_for(9), LevelFilter::TRACE);
    }
}
