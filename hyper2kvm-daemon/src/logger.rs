//! A small stderr logger for the `log` facade. Under systemd (`JOURNAL_STREAM` set: stderr is
//! the journal) lines carry sd-daemon priority prefixes (`<3>` error … `<7>` debug) instead of a
//! timestamp, so `journalctl -p` filters them.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use log::{Level, LevelFilter, Log, Metadata, Record};

static START: OnceLock<Instant> = OnceLock::new();
static JOURNAL: AtomicBool = AtomicBool::new(false);

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record<'_>) {
        if self.enabled(r.metadata()) {
            let level = match r.level() {
                Level::Error => "error",
                Level::Warn => "warning",
                Level::Info => "info",
                Level::Debug => "debug",
                Level::Trace => "trace",
            };
            let t = START.get().map_or(0.0, |s| s.elapsed().as_secs_f64());
            if JOURNAL.load(Ordering::Relaxed) {
                let prio = match r.level() {
                    Level::Error => 3,
                    Level::Warn => 4,
                    Level::Info => 6,
                    Level::Debug | Level::Trace => 7,
                };
                eprintln!("<{prio}>{}", r.args());
            } else if log::max_level() >= LevelFilter::Info {
                eprintln!("hyper2kvm: [{t:7.1}s] {level}: {}", r.args());
            } else {
                eprintln!("hyper2kvm: {level}: {}", r.args());
            }
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

/// Installs the logger with a level from the `-v` count.
pub fn init(verbosity: u8) {
    START.get_or_init(Instant::now);
    let level = match verbosity {
        0 => LevelFilter::Warn,
        1 => LevelFilter::Info,
        2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

/// Sets the level (the daemon's `LOG_LEVEL`, also on reload) and, when stderr is the journal,
/// switches to priority prefixes.
pub fn configure(level: LevelFilter) {
    JOURNAL.store(std::env::var_os("JOURNAL_STREAM").is_some(), Ordering::Relaxed);
    log::set_max_level(level);
}
