//! A job's stages as the outside sees them: the typed [`Event`]s a runner hears, and the
//! [`StageClock`] that turns the converter's progress into those events, times each stage for
//! the report, and keeps a `stage` tracing span open while a stage runs (inside the job's span,
//! so every log line of the stage carries the job id, the VM name and the stage).

use std::time::Instant;

use serde::Serialize;

use super::report::{StageReport, StageStatus};
use crate::progress::{Progress, Stage};

/// What a running job reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A stage began.
    Started {
        /// Which.
        stage: Stage,
    },
    /// Bytes done of a stage's total.
    Progress {
        /// Which.
        stage: Stage,
        /// The file or disk being worked on.
        item: String,
        /// Bytes done.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// Something worth knowing that does not stop the job.
    Warning {
        /// Which stage.
        stage: Stage,
        /// What.
        message: String,
    },
    /// A stage ended.
    Finished {
        /// Which.
        stage: Stage,
        /// How.
        status: StageStatus,
        /// Its wall time.
        seconds: f64,
    },
}

/// The stage running now.
struct Running {
    stage: Stage,
    started: Instant,
    _span: tracing::span::EnteredSpan,
}

/// Times the stages of one job and reports them as [`Event`]s (on the job's thread).
pub(crate) struct StageClock<'a> {
    events: &'a mut dyn FnMut(&Event),
    current: Option<Running>,
    /// Every stage that ended, in order.
    pub stages: Vec<StageReport>,
}

impl<'a> StageClock<'a> {
    /// A clock reporting to `events`.
    pub fn new(events: &'a mut dyn FnMut(&Event)) -> Self {
        StageClock { events, current: None, stages: Vec::new() }
    }

    /// Ends the running stage (successfully) and starts `stage`, unless it is the one running.
    pub fn start(&mut self, stage: Stage) {
        if self.current.as_ref().is_some_and(|r| r.stage == stage) {
            return;
        }
        self.finish(StageStatus::Success, serde_json::Value::Null);
        let span = tracing::info_span!("stage", stage = stage.name()).entered();
        (self.events)(&Event::Started { stage });
        self.current = Some(Running { stage, started: Instant::now(), _span: span });
    }

    /// The stage running now.
    pub fn current(&self) -> Option<Stage> {
        self.current.as_ref().map(|r| r.stage)
    }

    /// Ends the running stage with `status` and `details` for the report.
    pub fn finish(&mut self, status: StageStatus, details: serde_json::Value) {
        if let Some(r) = self.current.take() {
            let seconds = r.started.elapsed().as_secs_f64();
            (self.events)(&Event::Finished { stage: r.stage, status, seconds });
            self.stages.push(StageReport {
                name: r.stage,
                status,
                duration_seconds: seconds,
                details,
            });
        }
    }

    /// Records `stage` as skipped for `why`.
    pub fn skip(&mut self, stage: Stage, why: &str) {
        self.finish(StageStatus::Success, serde_json::Value::Null);
        let _span = tracing::info_span!("stage", stage = stage.name()).entered();
        (self.events)(&Event::Started { stage });
        (self.events)(&Event::Finished { stage, status: StageStatus::Skipped, seconds: 0.0 });
        self.stages.push(StageReport {
            name: stage,
            status: StageStatus::Skipped,
            duration_seconds: 0.0,
            details: serde_json::json!({ "reason": why }),
        });
    }

    /// Reports a warning in `stage`.
    pub fn warn(&mut self, stage: Stage, message: &str) {
        (self.events)(&Event::Warning { stage, message: message.to_string() });
    }

    /// Starts the progress's stage if needed and reports the progress.
    pub fn progress(&mut self, p: &Progress) {
        self.start(p.stage);
        (self.events)(&Event::Progress {
            stage: p.stage,
            item: p.item.clone(),
            done: p.done,
            total: p.total,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_timed_in_order_and_progress_starts_its_stage() {
        let mut seen = Vec::new();
        let mut record = |e: &Event| seen.push(e.clone());
        let stages = {
            let mut clock = StageClock::new(&mut record);
            clock.start(Stage::Load);
            clock.skip(Stage::Verify, "no checksum");
            let p = |stage| Progress { stage, item: "guest".into(), done: 0, total: 1 };
            clock.progress(&p(Stage::Convert));
            clock.progress(&p(Stage::Convert));
            clock.progress(&p(Stage::Inspect));
            clock.finish(StageStatus::Success, serde_json::Value::Null);
            clock.stages
        };
        let names: Vec<_> = stages.iter().map(|s| (s.name, s.status)).collect();
        assert_eq!(
            names,
            [
                (Stage::Load, StageStatus::Success),
                (Stage::Verify, StageStatus::Skipped),
                (Stage::Convert, StageStatus::Success),
                (Stage::Inspect, StageStatus::Success),
            ]
        );
        let starts = seen.iter().filter(|e| matches!(e, Event::Started { .. })).count();
        assert_eq!(starts, 4, "{seen:?}");
    }
}
