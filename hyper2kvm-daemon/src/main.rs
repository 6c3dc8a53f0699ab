//! The `hyper2kvm` executable: one-shot commands over the engine (`probe`, `inspect`,
//! `convert`, `run`, and `hyper2kvm MANIFEST`), the queue-watching `daemon` and its `status`.
//!
//! Exit status: 0 on success, 1 when the work failed, 2 for bad usage or bad input.

#![warn(missing_docs)]

mod cli;
mod commands;
mod daemon;
mod events;
mod logger;
mod manpages;
mod output;
mod signals;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    logger::init(args.verbose, args.log_format);
    match args.command {
        Some(cli::Command::Probe(a)) => commands::probe::run(&a),
        Some(cli::Command::Convert(a)) => commands::convert::run(&a),
        Some(cli::Command::Inspect(a)) => commands::inspect::run(&a),
        Some(cli::Command::Run(a)) => commands::run::run(&a),
        Some(cli::Command::Daemon(a)) => daemon::run(&daemon::Args {
            flags: daemon::config::Flags {
                watch_dir: a.watch_dir,
                output_dir: a.output_dir,
                log_level: a.log_level,
                instance: a.instance,
                config: a.config,
                state_dir: a.state_dir,
                workflow_dir: a.workflow_dir,
                metrics_listen: a.metrics_listen,
            },
            stop_timeout: std::time::Duration::from_secs(a.stop_timeout),
        }),
        Some(cli::Command::Status(a)) => {
            daemon::status::show(&daemon::state_dir(a.instance.as_deref(), a.state_dir), a.json)
        }
        Some(cli::Command::Completions(a)) => {
            use clap::CommandFactory;
            let mut cmd = cli::Cli::command();
            clap_complete::generate(a.shell, &mut cmd, "hyper2kvm", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Some(cli::Command::Manpages(a)) => manpages::write(&a.dir),
        None if args.direct.manifest_path().is_some() => commands::run::run(&args.direct),
        None => {
            eprintln!("hyper2kvm: give a command or a manifest (hyper2kvm --help)");
            ExitCode::from(2)
        }
    }
}
