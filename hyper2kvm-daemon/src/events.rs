//! The one printer of job events, for the terminal (`hyper2kvm MANIFEST`) and for a daemon
//! job's `job.log`: a line per stage start and end and per warning, and progress every 10 %.
//! With `--log-format=json` the command line sends each event through `tracing` instead (one
//! JSON object with the event's fields inside the job's and the stage's spans).

use hyper2kvm::pipeline::Event;

use crate::logger::{EVENT_TARGET, LogFormat};

/// Turns events into lines, remembering the last progress printed.
#[derive(Debug)]
pub struct EventPrinter {
    last_percent: Option<u64>,
}

impl Default for EventPrinter {
    fn default() -> Self {
        EventPrinter::new()
    }
}

impl EventPrinter {
    /// A printer that has printed nothing.
    pub fn new() -> EventPrinter {
        EventPrinter { last_percent: None }
    }

    /// The line for `e`, or `None` for progress within 10 % of the last printed.
    pub fn line(&mut self, e: &Event) -> Option<String> {
        match e {
            Event::Started { stage } => Some(format!("stage: {stage} started")),
            Event::Finished { stage, status, seconds } => {
                self.last_percent = None;
                Some(format!("stage: {stage} {status:?} in {seconds:.1} s"))
            }
            Event::Warning { stage, message } => {
                Some(format!("hyper2kvm: warning: {stage}: {message}"))
            }
            Event::Progress { stage, item, done, total } => {
                let pct = if *total == 0 { 100 } else { done * 100 / total };
                let show = match self.last_percent {
                    None => true,
                    Some(last) => pct >= last.saturating_add(10) || (pct == 100 && last != 100),
                };
                show.then(|| {
                    self.last_percent = Some(pct);
                    format!("progress: {stage} {item} {pct}%")
                })
            }
        }
    }

    /// Prints `e` on stderr (`prefix` names the VM of a batch), as a line or, in the JSON log
    /// format, as a tracing event.
    pub fn print(&mut self, prefix: &str, e: &Event) {
        let Some(line) = self.line(e) else { return };
        if crate::logger::format() == LogFormat::Json {
            emit(e, &line);
        } else {
            eprintln!("{prefix}{line}");
        }
    }
}

/// How much a [`say`] line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The job failed.
    Error,
    /// Worth knowing.
    Warning,
    /// A result.
    Info,
}

/// Prints a line for people on stderr; in the JSON log format, a tracing event instead (so
/// that stderr stays one JSON object per line).
pub fn say(severity: Severity, line: &str) {
    if crate::logger::format() != LogFormat::Json {
        eprintln!("{line}");
        return;
    }
    match severity {
        Severity::Error => tracing::error!(target: EVENT_TARGET, "{line}"),
        Severity::Warning => tracing::warn!(target: EVENT_TARGET, "{line}"),
        Severity::Info => tracing::info!(target: EVENT_TARGET, "{line}"),
    }
}

/// Sends `e` through `tracing` with its fields (the spans add the job and the stage).
fn emit(e: &Event, line: &str) {
    match e {
        Event::Started { stage } => {
            tracing::info!(target: EVENT_TARGET, event = "started", stage = stage.name(), "{line}")
        }
        Event::Finished { stage, status, seconds } => tracing::info!(
            target: EVENT_TARGET,
            event = "finished",
            stage = stage.name(),
            status = ?status,
            seconds,
            "{line}"
        ),
        Event::Warning { stage, message } => tracing::warn!(
            target: EVENT_TARGET,
            event = "warning",
            stage = stage.name(),
            message = message.as_str(),
        ),
        Event::Progress { stage, item, done, total } => tracing::info!(
            target: EVENT_TARGET,
            event = "progress",
            stage = stage.name(),
            item = item.as_str(),
            done,
            total,
            "{line}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper2kvm::Stage;

    #[test]
    fn progress_every_ten_percent_and_after_each_stage() {
        let mut p = EventPrinter::new();
        let prog =
            |done| Event::Progress { stage: Stage::Convert, item: "a".into(), done, total: 100 };
        let shown: Vec<u64> = [0, 5, 10, 15, 21, 99, 100]
            .into_iter()
            .filter(|d| p.line(&prog(*d)).is_some())
            .collect();
        assert_eq!(shown, [0, 10, 21, 99, 100]);
        assert_eq!(p.line(&prog(100)), None);
        let fin = Event::Finished {
            stage: Stage::Convert,
            status: hyper2kvm::pipeline::report::StageStatus::Success,
            seconds: 1.0,
        };
        assert_eq!(p.line(&fin).as_deref(), Some("stage: convert Success in 1.0 s"));
        assert_eq!(p.line(&prog(100)).as_deref(), Some("progress: convert a 100%"));
    }
}
