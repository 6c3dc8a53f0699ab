//! `hyper2kvm MANIFEST` / `hyper2kvm run MANIFEST`: the Artifact Manifest pipeline, printing
//! one `Output: PATH` line per artifact (the lines HyperSDK reads); exit status 0 only on
//! success, 2 for a bad manifest, 1 when the work failed.

use std::process::ExitCode;
use std::time::Duration;

use hyper2kvm::inspect_input::inspect_and_plan;
use hyper2kvm::pipeline::{Event, Job, JobOptions, boot_order};
use hyper2kvm::validate::BootTestOptions;
use hyper2kvm::{CancelToken, ProbeOptions};
use serde_json::json;

use crate::cli::RunArgs;
use crate::output::{exit_code, print_json, report_error};

fn print_event(e: &Event, last_percent: &mut u64) {
    match e {
        Event::Started { stage } => eprintln!("stage: {} started", stage.name()),
        Event::Finished { stage, status, seconds } => {
            eprintln!("stage: {} {:?} in {seconds:.1} s", stage.name(), status);
            *last_percent = u64::MAX;
        }
        Event::Warning { stage, message } => {
            eprintln!("hyper2kvm: warning: {}: {message}", stage.name())
        }
        Event::Progress { stage, item, done, total } => {
            let pct = if *total == 0 { 100 } else { done * 100 / total };
            if *last_percent == u64::MAX
                || pct >= last_percent.saturating_add(10)
                || (pct == 100 && *last_percent != 100)
            {
                eprintln!("progress: {} {item} {pct}%", stage.name());
                *last_percent = pct;
            }
        }
    }
}

/// Runs the subcommand.
pub fn run(args: &RunArgs) -> ExitCode {
    let Some(path) = &args.manifest else {
        eprintln!("hyper2kvm: run needs a manifest");
        return ExitCode::from(2);
    };
    let opts = JobOptions {
        timeout: args.timeout.map(Duration::from_secs),
        boot_test: args.boot_test.then(BootTestOptions::default),
        ..JobOptions::default()
    };
    let job = match Job::load(path, opts) {
        Ok(j) => j,
        Err(e) => {
            report_error(&e);
            return exit_code(&e);
        }
    };
    if args.dry_run || job.manifest().manifest.options.dry_run {
        return dry_run(&job, args.json);
    }
    let cancel: CancelToken = job.cancel_token();
    crate::signals::cancel_on_interrupt(&cancel);
    let mut last = u64::MAX;
    match job.run(&mut |e| print_event(e, &mut last)) {
        Ok(outcome) => {
            for w in &outcome.report.warnings {
                log::info!("warning in report: {w}");
            }
            if args.json {
                print_json(
                    &json!({ "hyper2kvm_version": hyper2kvm::VERSION, "success": true, "report": outcome.report }),
                );
            } else {
                if let Some(f) = &outcome.report.fstab {
                    eprintln!("fstab before the fixes:\n{}", f.before.trim_end());
                    eprintln!("fstab after the fixes:\n{}", f.after.trim_end());
                }
                for a in &outcome.report.artifacts {
                    println!("Output: {}", a.path.display());
                }
                eprintln!("{}", outcome.report.summary);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            report_error(&e);
            exit_code(&e)
        }
    }
}

/// `--dry-run`: the manifest is valid (or the error said why); inspect the boot disk
/// read-only and print what would be written and changed.
fn dry_run(job: &Job, as_json: bool) -> ExitCode {
    let m = &job.manifest().manifest;
    let outputs = match job.planned_outputs() {
        Ok(o) => o,
        Err(e) => {
            report_error(&e);
            return exit_code(&e);
        }
    };
    let boot = boot_order(&m.disks)[0];
    let plan = if m.pipeline.inspect.enabled {
        let fix = hyper2kvm::fix::FixOptions {
            dry_run: true,
            configuration: m.configuration.clone(),
            ..hyper2kvm::fix::FixOptions::default()
        };
        let probe = ProbeOptions { cross_check: false, verify_manifest: true };
        match inspect_and_plan(
            &m.disks[boot].local_path,
            &probe,
            &Default::default(),
            m.pipeline.fix.enabled.then_some(&fix),
        ) {
            Ok(p) => Some(p),
            Err(e) => {
                report_error(&e);
                return exit_code(&e);
            }
        }
    } else {
        None
    };
    if as_json {
        print_json(
            &json!({ "dry_run": true, "outputs": outputs, "warnings": job.manifest().warnings, "plan": plan }),
        );
    } else {
        for w in &job.manifest().warnings {
            eprintln!("hyper2kvm: warning: {w}");
        }
        for o in &outputs {
            println!("Would write: {}", o.display());
        }
        if let Some(p) = &plan {
            for c in &p.planned_changes {
                println!("Would change: {} {} {}", c.fixer, c.action, c.file);
            }
        }
        println!("dry run: nothing written");
    }
    ExitCode::SUCCESS
}
