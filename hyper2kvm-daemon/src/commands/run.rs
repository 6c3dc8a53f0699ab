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

use hyper2kvm::CancelToken;
use hyper2kvm::pipeline::{JobOptions, ManifestRun, RunOutcome, VmStatus};
use hyper2kvm::validate::BootTestOptions;
use serde_json::json;

use crate::cli::RunArgs;
use crate::events::{EventPrinter, Severity, say};
use crate::output::{exit_code, print_json, report_error};

/// Runs the subcommand.
pub fn run(args: &RunArgs) -> ExitCode {
    let Some(path) = args.manifest_path() else {
        eprintln!("hyper2kvm: run needs a manifest");
        return ExitCode::from(2);
    };
    let mut opts = JobOptions {
        timeout: args.timeout.map(Duration::from_secs),
        boot_test: args.boot_test.then(BootTestOptions::default),
        virtio_win: args.virtio_win.clone(),
        allow_no_virtio: args.allow_no_virtio,
        trim: !args.no_trim,
        ..JobOptions::default()
    };
    if args.target.as_deref() == Some("kubevirt") {
        opts.defaults.kubevirt = Some(Default::default());
    }
    let run = match ManifestRun::load(path, opts, CancelToken::new()) {
        Ok(r) => r,
        Err(e) => {
            report_error(&e);
            return exit_code(&e);
        }
    };
    // HyperSDK takes an Output: line's second whitespace-separated field as the path.
    if !args.json
        && let Some(dir) = run
            .output_dirs()
            .into_iter()
            .find(|d| d.to_string_lossy().contains(char::is_whitespace))
    {
        eprintln!(
            "hyper2kvm: error: {}: the output directory's path holds whitespace, which HyperSDK cannot read from an Output: line (its path is the line's second whitespace-separated field); choose output.directory without whitespace, or use --json",
            dir.display()
        );
        return ExitCode::from(2);
    }
    let dry =
        args.dry_run || matches!(&run, ManifestRun::Vm(j) if j.manifest().manifest.options.dry_run);
    if dry {
        return dry_run(&run, args.json);
    }
    crate::signals::cancel_on_interrupt(&run.cancel_token());
    let batch = matches!(run, ManifestRun::Batch(_));
    let printers: Mutex<HashMap<String, EventPrinter>> = Mutex::new(HashMap::new());
    let outcome = run.run(&|id, e| {
        let mut printers = printers.lock().unwrap_or_else(|p| p.into_inner());
        let printer = printers.entry(id.to_string()).or_default();
        printer.print(&if batch { format!("[{id}] ") } else { String::new() }, e);
    });
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            report_error(&e);
            return exit_code(&e);
        }
    };
    if let RunOutcome::Batch(b) = &outcome {
        for vm in &b.report.vms {
            if matches!(vm.status, VmStatus::Failed | VmStatus::NotRun) {
                let why = vm.error.as_deref().unwrap_or("failed");
                say(Severity::Error, &format!("hyper2kvm: error: [{}] {why}", vm.id));
            }
        }
    }
    if args.json {
        let report = match &outcome {
            RunOutcome::Vm(o) => serde_json::to_value(&o.report),
            RunOutcome::Batch(b) => serde_json::to_value(&b.report),
        }
        .unwrap_or_default();
        print_json(&json!({
            "hyper2kvm_version": hyper2kvm::VERSION,
            "success": outcome.success(),
            "report": report,
        }));
    } else {
        match &outcome {
            RunOutcome::Vm(o) => {
                if let Some(f) = &o.report.fstab {
                    say(
                        Severity::Info,
                        &format!("fstab before the fixes:\n{}", f.before.trim_end()),
                    );
                    say(Severity::Info, &format!("fstab after the fixes:\n{}", f.after.trim_end()));
                }
                say(Severity::Info, &o.report.summary);
            }
            RunOutcome::Batch(b) => say(Severity::Info, &b.report.summary),
        }
        for p in outcome.outputs() {
            println!("Output: {}", p.display());
        }
    }
    if outcome.success() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// `--dry-run`: the manifest is valid (or the error said why); inspect each boot disk
/// read-only and print what would be written and changed (prefixed with the VM in a batch).
fn dry_run(run: &ManifestRun, as_json: bool) -> ExitCode {
    let plan = match run.plan() {
        Ok(p) => p,
        Err(e) => {
            report_error(&e);
            return exit_code(&e);
        }
    };
    if as_json {
        print_json(&json!({ "dry_run": true, "warnings": run.warnings(), "plan": plan }));
        return ExitCode::SUCCESS;
    }
    for w in run.warnings() {
        say(Severity::Warning, &format!("hyper2kvm: warning: {w}"));
    }
    let batch = matches!(run, ManifestRun::Batch(_));
    for vm in &plan.vms {
        let prefix = if batch { format!("[{}] ", vm.id) } else { String::new() };
        for o in &vm.plan.outputs {
            println!("{prefix}Would write: {}", o.display());
        }
        for c in vm.plan.inspection.iter().flat_map(|i| &i.planned_changes) {
            println!("{prefix}Would change: {} {} {}", c.fixer, c.action, c.file);
        }
        for n in vm.plan.inspection.iter().flat_map(|i| &i.plan_notes) {
            println!("{prefix}Plan: {n}");
        }
        if let Some(v) = vm.plan.inspection.as_ref().and_then(|i| i.boot_verdict.as_ref()) {
            println!("{prefix}Boots on KVM as it is (virtio-blk): {}", v.line());
        }
    }
    for id in &plan.skipped {
        println!("[{id}] Would skip: enabled is false");
    }
    println!("dry run: nothing written");
    ExitCode::SUCCESS
}
