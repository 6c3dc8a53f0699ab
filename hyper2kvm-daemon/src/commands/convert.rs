//! `hyper2kvm convert INPUT -o OUTDIR [--format qcow2|raw] [--compress[=LEVEL]] [--json]`.

use std::process::ExitCode;

use hyper2kvm::{CancelToken, ConvertOptions, ProbeOptions, TargetFormat};
use serde_json::json;

use crate::cli::ConvertArgs;
use crate::output::{ProgressView, exit_code, human_bytes, peak_rss, print_json, report_error};

/// Runs the subcommand.
pub fn run(args: &ConvertArgs) -> ExitCode {
    let format: TargetFormat = match args.format.parse() {
        Ok(f) => f,
        Err(e) => {
            report_error(&e);
            return ExitCode::from(2);
        }
    };
    let opts = ConvertOptions {
        format,
        compress: args.compress,
        overwrite: args.overwrite,
        name: args.name.clone(),
        probe: ProbeOptions { cross_check: true, verify_manifest: !args.no_verify },
        ..ConvertOptions::default()
    };
    let cancel = CancelToken::new();
    crate::signals::cancel_on_interrupt(&cancel);
    let mut view = ProgressView::new();
    let result =
        hyper2kvm::convert(&args.input, &args.output_dir, &opts, &mut |p| view.update(p), &cancel);
    view.finish();
    match result {
        Ok(report) => {
            if args.json {
                print_json(
                    &json!({ "hyper2kvm_version": hyper2kvm::VERSION, "success": true, "report": report, "peak_rss_bytes": peak_rss() }),
                );
            } else {
                for o in &report.outputs {
                    println!("Output: {}", o.path.display());
                }
                eprintln!(
                    "converted {} disk(s), {} in {:.1} s",
                    report.outputs.len(),
                    human_bytes(report.outputs.iter().map(|o| o.virtual_size).sum()),
                    report.duration_seconds
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            report_error(&e);
            if args.json {
                print_json(
                    &json!({ "hyper2kvm_version": hyper2kvm::VERSION, "success": false, "error": e.to_json() }),
                );
            }
            exit_code(&e)
        }
    }
}
