//! `hyper2kvm MANIFEST` / `hyper2kvm run MANIFEST`: the Artifact Manifest pipeline, printing
//! one `Output: PATH` line per artifact (the lines HyperSDK reads); exit status 0 only on
//! success, 2 for a bad manifest, 1 when the work failed.
//!
//! A batch manifest runs each VM's job (events prefixed with `[ID]`), prints the outputs of
//! every VM that succeeded and the batch report, and exits 0 only when every enabled VM
//! succeeded.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use hyper2kvm::inspect_input::inspect_and_plan;
use hyper2kvm::manifest::{self, ManifestFile};
use hyper2kvm::pipeline::{BatchJob, Event, Job, JobOptions, VmStatus, boot_order};
use hyper2kvm::validate::BootTestOptions;
use hyper2kvm::{CancelToken, ProbeOptions};
use serde_json::json;

use crate::cli::RunArgs;
use crate::output::{exit_code, print_json, report_error};

/// Prints an event on stderr (`prefix` names the VM in a batch); progress every 10 %.
fn print_event(prefix: &str, e: &Event, last_percent: &mut u64) {
    match e {
        Event::Started { stage } => eprintln!("{prefix}stage: {} started", stage.name()),
        Event::Finished { stage, status, seconds } => {
            eprintln!("{prefix}stage: {} {:?} in {seconds:.1} s", stage.name(), status);
            *last_percent = u64::MAX;
        }
        Event::Warning { stage, message } => {
            eprintln!("{prefix}hyper2kvm: warning: {}: {message}", stage.name())
        }
        Event::Progress { stage, item, done, total } => {
            let pct = if *total == 0 { 100 } else { done * 100 / total };
            if *last_percent == u64::MAX
                || pct >= last_percent.saturating_add(10)
                || (pct == 100 && *last_percent != 100)
            {
                eprintln!("{prefix}progress: {} {item} {pct}%", stage.name());
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
    let job = match manifest::load(path) {
        Ok(ManifestFile::Vm(m)) => Job::new(*m, opts, CancelToken::new()),
        Ok(ManifestFile::Batch(b)) => return run_batch(BatchJob::new(b, opts), args),
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
    match job.run(&mut |e| print_event("", e, &mut last)) {
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
    match plan(job, (!as_json).then_some("")) {
        Ok(p) => {
            if as_json {
                print_json(&p);
            } else {
                println!("dry run: nothing written");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            report_error(&e);
            exit_code(&e)
        }
    }
}

/// One job's plan as JSON, also printed as `Would write:`/`Would change:` lines after `print`
/// (the VM's prefix in a batch) unless that is `None`.
fn plan(job: &Job, print: Option<&str>) -> hyper2kvm::Result<serde_json::Value> {
    let m = &job.manifest().manifest;
    let outputs = job.planned_outputs()?;
    let boot = boot_order(&m.disks)[0];
    let plan = if m.pipeline.inspect.enabled {
        let fix = hyper2kvm::fix::FixOptions {
            dry_run: true,
            configuration: m.configuration.clone(),
            ..hyper2kvm::fix::FixOptions::default()
        };
        let probe = ProbeOptions { cross_check: false, verify_manifest: true };
        Some(inspect_and_plan(
            &m.disks[boot].local_path,
            &probe,
            &Default::default(),
            m.pipeline.fix.enabled.then_some(&fix),
        )?)
    } else {
        None
    };
    if let Some(prefix) = print {
        for w in &job.manifest().warnings {
            eprintln!("{prefix}hyper2kvm: warning: {w}");
        }
        for o in &outputs {
            println!("{prefix}Would write: {}", o.display());
        }
        if let Some(p) = &plan {
            for c in &p.planned_changes {
                println!("{prefix}Would change: {} {} {}", c.fixer, c.action, c.file);
            }
        }
    }
    Ok(
        json!({ "dry_run": true, "outputs": outputs, "warnings": job.manifest().warnings, "plan": plan }),
    )
}

/// A batch manifest: every enabled VM's job, or with `--dry-run` every VM's plan.
fn run_batch(batch: BatchJob, args: &RunArgs) -> ExitCode {
    let b = batch.batch();
    if args.dry_run {
        let mut plans = Vec::new();
        for &i in &b.run_order() {
            let vm = &b.vms[i];
            let Some(job) = batch.job(vm) else { continue };
            let prefix = format!("[{}] ", vm.id);
            match plan(&job, (!args.json).then_some(prefix.as_str())) {
                Ok(p) => plans.push(json!({ "id": vm.id, "plan": p })),
                Err(e) => {
                    report_error(&e);
                    return exit_code(&e);
                }
            }
        }
        if args.json {
            print_json(&json!({ "dry_run": true, "batch_id": b.batch_id, "vms": plans }));
        } else {
            for vm in b.vms.iter().filter(|v| !v.enabled) {
                println!("[{}] Would skip: enabled is false", vm.id);
            }
            println!("dry run: nothing written");
        }
        return ExitCode::SUCCESS;
    }
    crate::signals::cancel_on_interrupt(&batch.cancel_token());
    let last: Mutex<HashMap<String, u64>> = Mutex::new(HashMap::new());
    let outcome = batch.run(&|id, e| {
        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
        let pct = last.entry(id.to_string()).or_insert(u64::MAX);
        print_event(&format!("[{id}] "), e, pct);
    });
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            report_error(&e);
            return exit_code(&e);
        }
    };
    let r = &outcome.report;
    for vm in &r.vms {
        match vm.status {
            VmStatus::Failed | VmStatus::NotRun => eprintln!(
                "hyper2kvm: error: [{}] {}",
                vm.id,
                vm.error.as_deref().unwrap_or("failed")
            ),
            VmStatus::Success | VmStatus::Skipped => {}
        }
    }
    if args.json {
        print_json(
            &json!({ "hyper2kvm_version": hyper2kvm::VERSION, "success": r.success, "report": r }),
        );
    } else {
        for vm in r.vms.iter().filter(|v| v.status == VmStatus::Success) {
            for a in &vm.artifacts {
                println!("Output: {}", a.display());
            }
        }
        println!("Output: {}", outcome.report_path.display());
        eprintln!("{}", r.summary);
    }
    if r.success { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
