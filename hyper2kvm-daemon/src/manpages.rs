//! The manual pages, generated from the clap definitions (clap_mangen): `hyper2kvm(1)` for the
//! command and its one-shot subcommands, `hyper2kvm-daemon(8)` for the service. Written by the
//! hidden `hyper2kvm manpages DIR`, which the RPM build runs.

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;

/// The daemon page's own text: what its settings are and where they come from.
const DAEMON_SETTINGS: &str = "Settings come from the flags, then the environment, then the \
config file (/etc/hyper2kvm/hyper2kvm.conf, or hyper2kvm-NAME.conf for hyper2kvm@NAME), then \
the defaults. Besides the contract's keys (WATCH_DIR, OUTPUT_DIR, MAX_CONCURRENT, WEBHOOK_URL, \
NOTIFY_EMAIL, ...) it reads METRICS_LISTEN (Prometheus /metrics and /healthz), WEBHOOK_RETRIES, \
WEBHOOK_TIMEOUT, SMTP_HOST, SMTP_PORT and SMTP_FROM. SIGTERM stops taking jobs and requeues \
what cannot finish within --stop-timeout; SIGHUP reloads the configuration. See \
/usr/share/doc/hyper2kvm-daemon and docs/daemon.md for every key.";

fn render(cmd: clap::Command, dir: &Path, file: &str, section: &str) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd).section(section).manual("hyper2kvm");
    let mut out = Vec::new();
    man.render(&mut out)?;
    hyper2kvm::io::write_atomically(&dir.join(file), &out)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Writes both pages into `dir`.
pub fn write(dir: &Path) -> ExitCode {
    let result = std::fs::create_dir_all(dir).and_then(|()| {
        let top = crate::cli::Cli::command();
        let daemon = top
            .find_subcommand("daemon")
            .cloned()
            .unwrap_or_else(|| clap::Command::new("daemon"))
            .name("hyper2kvm-daemon")
            .bin_name("hyper2kvm daemon")
            .version(env!("CARGO_PKG_VERSION"))
            .after_long_help(DAEMON_SETTINGS);
        render(top, dir, "hyper2kvm.1", "1")?;
        render(daemon, dir, "hyper2kvm-daemon.8", "8")
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hyper2kvm: error: {}: {e}", dir.display());
            ExitCode::from(1)
        }
    }
}
