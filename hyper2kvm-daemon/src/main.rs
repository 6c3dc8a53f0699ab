//! The `hyper2kvm` executable: one-shot commands over the engine (`probe`, `inspect`,
//! `convert`, `run`, and `hyper2kvm MANIFEST`).
//!
//! Exit status: 0 on success, 1 when the work failed, 2 for bad usage or bad input.

mod cli;
mod commands;
mod logger;
mod output;
mod signals;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    logger::init(args.verbose);
    match args.command {
        Some(cli::Command::Probe(a)) => commands::probe::run(&a),
        Some(cli::Command::Convert(a)) => commands::convert::run(&a),
        Some(cli::Command::Inspect(a)) => commands::inspect::run(&a),
        Some(cli::Command::Run(a)) => commands::run::run(&a),
        None if args.direct.manifest.is_some() => commands::run::run(&args.direct),
        None => {
            eprintln!("hyper2kvm: give a command or a manifest (hyper2kvm --help)");
            ExitCode::from(2)
        }
    }
}
