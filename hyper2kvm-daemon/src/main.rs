//! The `hyper2kvm` executable: one-shot commands over the engine (`probe`, `convert`).
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
        cli::Command::Probe(a) => commands::probe::run(&a),
        cli::Command::Convert(a) => commands::convert::run(&a),
        cli::Command::Inspect(a) => commands::inspect::run(&a),
    }
}
