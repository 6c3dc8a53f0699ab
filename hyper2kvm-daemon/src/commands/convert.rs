//! `hyper2kvm convert INPUT -o OUTDIR [--format qcow2|raw] [--compress[=LEVEL]] [--json]`.

use std::process::ExitCode;

use hyper2kvm::fix::{Action, Change, FixOptions, GuestConfiguration, InitramfsMethod};
use hyper2kvm::guest::GuestOptions;
use hyper2kvm::inspect_input::plan_conversion;
use hyper2kvm::{CancelToken, ConvertOptions, Error, ErrorKind, ProbeOptions, TargetFormat};
use serde_json::json;

use crate::cli::ConvertArgs;
use crate::output::{ProgressView, exit_code, human_bytes, peak_rss, print_json, report_error};

/// Reads and checks a `configuration` JSON file; every problem is named with its path.
fn load_configuration(path: &std::path::Path) -> hyper2kvm::Result<GuestConfiguration> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))?;
    let c: GuestConfiguration = serde_json::from_str(&text).map_err(|e| {
        Error::new(ErrorKind::InvalidInput, format!("not a configuration object: {e}"))
            .with_path(path)
    })?;
    let problems = c.problems();
    if !problems.is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, problems.join("; ")).with_path(path));
    }
    Ok(c)
}

/// Runs the subcommand.
pub fn run(args: &ConvertArgs) -> ExitCode {
    let format: TargetFormat = match args.format.parse() {
        Ok(f) => f,
        Err(e) => {
            report_error(&e);
            return ExitCode::from(2);
        }
    };
    let fstab_mode = match args.fstab_mode.parse() {
        Ok(m) => m,
        Err(e) => {
            report_error(&e);
            return ExitCode::from(2);
        }
    };
    let initramfs =
        if args.rebuild_initramfs { InitramfsMethod::Rebuild } else { InitramfsMethod::Auto };
    let configuration = match &args.configuration {
        Some(path) => match load_configuration(path) {
            Ok(c) => c,
            Err(e) => {
                report_error(&e);
                return ExitCode::from(2);
            }
        },
        None => GuestConfiguration::default(),
    };
    let fix = FixOptions {
        fstab_mode,
        backup: args.backup,
        initramfs,
        configuration,
        virtio_win: args.virtio_win.clone(),
        allow_no_virtio: args.allow_no_virtio,
        trim: !args.no_trim,
        ..FixOptions::default()
    };
    if args.dry_run {
        return dry_run(args, &fix);
    }
    let domain = match super::domain::domain_options(&args.domain)
        .and_then(|d| Ok((d, super::domain::kubevirt_options(&args.domain)?)))
    {
        Ok(d) => d,
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
        fix: (!args.no_fix).then_some(fix),
        domain: domain.0,
        kubevirt: domain.1,
        check: !args.domain.no_check,
        boot_test: super::domain::boot_test_options(&args.domain),
        ..ConvertOptions::default()
    };
    // Every Output: path is absolute (HyperSDK-style callers run us from their own directory).
    let out_dir = std::path::absolute(&args.output_dir).unwrap_or_else(|_| args.output_dir.clone());
    let cancel = CancelToken::new();
    crate::signals::cancel_on_interrupt(&cancel);
    let mut view = ProgressView::new();
    let result = hyper2kvm::convert(&args.input, &out_dir, &opts, &mut |p| view.update(p), &cancel);
    view.finish();
    let result = result.and_then(|report| {
        let defined = super::domain::define_if_asked(&args.domain, &report)?;
        Ok((report, defined))
    });
    match result {
        Ok((report, defined)) => {
            if args.json {
                print_json(
                    &json!({ "hyper2kvm_version": hyper2kvm::VERSION, "success": true, "report": report, "defined": defined, "peak_rss_bytes": peak_rss() }),
                );
            } else {
                print_changes(&report.changes);
                let input_warnings = match &report.input {
                    hyper2kvm::Probed::Appliance(a) => a.warnings.as_slice(),
                    hyper2kvm::Probed::Disk(d) => d.warnings.as_slice(),
                };
                for w in input_warnings.iter().chain(&report.warnings) {
                    eprintln!("hyper2kvm: warning: {w}");
                }
                if let Some(b) = &report.boot_test {
                    eprintln!(
                        "boot test passed in {:.0} s ({:?}): {}",
                        b.seconds,
                        b.accel,
                        b.line.as_deref().unwrap_or("")
                    );
                }
                for o in &report.outputs {
                    println!("Output: {}", o.path.display());
                }
                if let Some(d) = &report.domain {
                    if let Some(n) = &d.nvram {
                        println!("Output: {}", n.display());
                    }
                    println!("Output: {}", d.xml.display());
                    if let Some(k) = &d.kubevirt {
                        println!("Output: {}", k.display());
                    }
                }
                if let Some(d) = &defined {
                    eprintln!("defined domain {} ({}) at {}", d.name, d.uuid, d.uri);
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

/// Prints the changes made in the guest, one per line (on stderr: stdout is for `Output:`).
fn print_changes(changes: &[Change]) {
    for c in changes {
        let detail = match (&c.old, &c.new) {
            (Some(o), Some(n)) if c.action == Action::Edit => format!(": {o:?} -> {n:?}"),
            (Some(o), None) if c.action == Action::Edit => format!(": removed {o:?}"),
            (_, Some(n)) if c.action == Action::Skip => format!(" ({n})"),
            _ => String::new(),
        };
        eprintln!("change: {} {} {}{detail}", c.fixer, c.action, c.file);
    }
}

/// `--dry-run`: inspect read-only and print the plan; nothing is written.
fn dry_run(args: &ConvertArgs, fix: &FixOptions) -> ExitCode {
    let probe = ProbeOptions { cross_check: true, verify_manifest: !args.no_verify };
    match plan_conversion(
        &args.input,
        &probe,
        &GuestOptions::default(),
        (!args.no_fix).then_some(fix),
    ) {
        Ok(report) => {
            if args.json {
                print_json(
                    &json!({ "hyper2kvm_version": hyper2kvm::VERSION, "dry_run": true, "plan": report }),
                );
            } else {
                if let Some(v) = &report.boot_verdict {
                    super::inspect::print_verdict("", v);
                }
                print_changes(&report.planned_changes);
                if let hyper2kvm::Probed::Appliance(a) = &report.input {
                    for w in &a.warnings {
                        eprintln!("hyper2kvm: warning: {w}");
                    }
                }
                for n in &report.plan_notes {
                    println!("plan: {n}");
                }
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
