//! The validation stage: `qemu-img check` of every output, and the boot test — the converted
//! guest booted headless in `qemu-system-x86_64` with the devices of its generated domain,
//! judged by its serial console.
//!
//! The boot test never writes to the output (`-snapshot`; UEFI gets a throw-away copy of its
//! variable store), is bounded in time, and never leaves a qemu process behind: qemu runs in its
//! own process group, which is killed when the test ends however it ends. Success is a console
//! line holding the marker (default: a login prompt, `login:`); a line proving failure (a
//! kernel panic, an initramfs giving up on its root, emergency mode) ends it early.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::guest::accel::{self, Accel, AccelChoice};
use crate::libvirt::{DiskBus, Domain, Firmware, Machine};
use crate::progress::CancelToken;

/// Console lines that prove the boot failed.
pub const FAILURE_SIGNS: [&str; 7] = [
    "Kernel panic",
    "Gave up waiting for root",
    "ALERT!",
    "dracut-initqueue timeout",
    "You are in emergency mode",
    "Give root password for maintenance",
    "No bootable device",
];

/// Options of [`boot_test`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootTestOptions {
    /// Text whose appearance on the console means success.
    pub marker: String,
    /// Give up after this long.
    pub timeout: Duration,
    /// KVM or TCG (`Auto`: KVM when a bounded probe shows it works).
    pub accel: AccelChoice,
    /// Where the console log is kept (`None`: not kept).
    pub console_log: Option<PathBuf>,
    /// Memory for the test boot (MiB), capped at the domain's.
    pub max_memory_mib: u64,
}

impl Default for BootTestOptions {
    fn default() -> Self {
        BootTestOptions {
            marker: "login:".into(),
            timeout: Duration::from_secs(300),
            accel: AccelChoice::Auto,
            console_log: None,
            max_memory_mib: 2048,
        }
    }
}

/// What the boot test saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BootTestResult {
    /// The marker appeared.
    pub passed: bool,
    /// The line with the marker, or the line proving failure.
    pub line: Option<String>,
    /// Seconds until the decision.
    pub seconds: f64,
    /// How qemu ran.
    pub accel: Accel,
    /// The last console lines (for the report and the error).
    pub console_tail: Vec<String>,
}

/// Kills qemu's whole process group when dropped.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        // Only while qemu is unreaped is its pid (and so its group id) sure to be ours.
        if matches!(self.0.try_wait(), Ok(None)) {
            let pid = self.0.id() as i32;
            // SAFETY: kill(2) with a negative pid signals the process group qemu leads (it was
            // started with process_group(0)); no memory is involved.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// qemu's arguments for `domain` (disks read-only through `-snapshot`).
fn qemu_args(domain: &Domain, accel: Accel, vars_copy: Option<&Path>, memory: u64) -> Vec<String> {
    let accel = match accel {
        Accel::Kvm => "kvm",
        Accel::Tcg => "tcg",
    };
    let machine = match domain.machine {
        Machine::Q35 => "q35",
        Machine::I440fx => "pc",
    };
    let secure = matches!(&domain.firmware, Firmware::Uefi(u) if u.secure_boot);
    let mut a: Vec<String> = vec![
        "-name".into(),
        format!("hyper2kvm-boot-test-{}", domain.name),
        "-machine".into(),
        format!("{machine},accel={accel}{}", if secure { ",smm=on" } else { "" }),
        "-m".into(),
        memory.to_string(),
        "-smp".into(),
        // Emulated CPUs only slow TCG down, and qemu 7.2's multi-threaded TCG has crashed
        // here; KVM gets the domain's own count (up to 4 for a test).
        if accel == "kvm" { domain.vcpus.min(4).to_string() } else { "1".into() },
        "-nodefaults".into(),
        "-no-user-config".into(),
        "-display".into(),
        "none".into(),
        "-monitor".into(),
        "none".into(),
        "-no-reboot".into(),
        "-snapshot".into(),
        "-serial".into(),
        "stdio".into(),
        "-device".into(),
        "virtio-rng-pci".into(),
    ];
    if accel == "kvm" {
        a.extend(["-cpu".into(), "host".into()]);
    }
    if let Firmware::Uefi(u) = &domain.firmware {
        if secure {
            a.extend(["-global".into(), "driver=cfi.pflash01,property=secure,value=on".into()]);
        }
        a.extend([
            "-drive".into(),
            format!("if=pflash,format=raw,unit=0,readonly=on,file={}", u.loader.display()),
        ]);
        if let Some(v) = vars_copy {
            a.extend([
                "-drive".into(),
                format!("if=pflash,format=raw,unit=1,file={}", v.display()),
            ]);
        }
    }
    if domain.disks.iter().any(|d| d.bus == DiskBus::VirtioScsi) {
        a.extend(["-device".into(), "virtio-scsi-pci,id=scsi0".into()]);
    }
    for (i, d) in domain.disks.iter().enumerate() {
        a.extend([
            "-drive".into(),
            format!("file={},format={},if=none,id=disk{i}", d.path.display(), d.format),
        ]);
        let dev = match d.bus {
            DiskBus::VirtioBlk => {
                format!("virtio-blk-pci,drive=disk{i},bootindex={}", d.boot_order)
            }
            DiskBus::VirtioScsi => {
                format!("scsi-hd,drive=disk{i},bus=scsi0.0,bootindex={}", d.boot_order)
            }
            DiskBus::Sata => format!("ide-hd,drive=disk{i},bus=ide.{i},bootindex={}", d.boot_order),
        };
        a.extend(["-device".into(), dev]);
    }
    for (i, nic) in domain.interfaces.iter().enumerate() {
        a.extend(["-netdev".into(), format!("user,id=net{i}")]);
        let mac = nic.mac.as_ref().map(|m| format!(",mac={m}")).unwrap_or_default();
        a.extend(["-device".into(), format!("virtio-net-pci,netdev=net{i}{mac}")]);
    }
    a
}

fn tail(console: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = console.lines().map(|l| l.trim_end_matches('\r')).collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| l.to_string()).collect()
}

/// Boots the domain's disks and watches the console. `scratch` (the output directory) holds
/// the throw-away UEFI variable store.
pub fn boot_test(
    domain: &Domain,
    opts: &BootTestOptions,
    scratch: &Path,
    cancel: &CancelToken,
) -> Result<BootTestResult> {
    let accel = accel::choose(opts.accel);
    let vars = match &domain.firmware {
        Firmware::Uefi(u) => {
            let src = u.template.clone().unwrap_or_else(|| u.nvram.clone());
            let copy = scratch.join(format!(".{}-boot-test-vars.fd", domain.name));
            std::fs::copy(&src, &copy)
                .map_err(|e| Error::io(&src, "copying the UEFI variable store", e))?;
            Some(copy)
        }
        Firmware::Bios => None,
    };
    let mut result = run(domain, opts, accel, vars.as_deref(), cancel);
    if let Ok((r, true)) = &result {
        // qemu itself died from a signal: a fault of the tool, not a verdict on the guest.
        tracing::warn!(
            "boot test: {}; trying once more",
            r.line.as_deref().unwrap_or("qemu crashed")
        );
        result = run(domain, opts, accel, vars.as_deref(), cancel);
    }
    let result = result.map(|(r, _)| r);
    if let Some(v) = &vars {
        let _ = std::fs::remove_file(v);
    }
    result
}

fn run(
    domain: &Domain,
    opts: &BootTestOptions,
    accel: Accel,
    vars: Option<&Path>,
    cancel: &CancelToken,
) -> Result<(BootTestResult, bool)> {
    let memory = domain.memory_mib.min(opts.max_memory_mib).max(512);
    let args = qemu_args(domain, accel, vars, memory);
    tracing::info!("boot test ({accel:?}): qemu-system-x86_64 {}", args.join(" "));
    let child = Command::new("qemu-system-x86_64")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io("qemu-system-x86_64", "starting the boot test", e))?;
    let mut reaper = Reaper(child);
    let mut out =
        reaper.0.stdout.take().ok_or_else(|| Error::new(ErrorKind::Internal, "no stdout"))?;
    let mut err =
        reaper.0.stderr.take().ok_or_else(|| Error::new(ErrorKind::Internal, "no stderr"))?;
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let mut console = Vec::new();
    let mut decision: Option<(bool, String)> = None;
    let mut exited = false;
    while started.elapsed() < opts.timeout && decision.is_none() {
        if cancel.is_cancelled() {
            return Err(Error::new(ErrorKind::Cancelled, "boot test cancelled"));
        }
        let quiet = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(chunk) => {
                console.extend_from_slice(&chunk);
                false
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => true,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                exited = true;
                break;
            }
        };
        let text = String::from_utf8_lossy(&console);
        // Whole lines, and the unfinished last one once the console has gone quiet (a login
        // prompt ends without a newline); a marker line arriving in pieces is read whole.
        let end = if quiet { text.len() } else { text.rfind('\n').map_or(0, |i| i + 1) };
        for line in text[..end].lines() {
            if line.contains(&opts.marker) {
                decision = Some((true, line.trim().to_string()));
                break;
            }
            if FAILURE_SIGNS.iter().any(|s| line.contains(s)) {
                decision = Some((false, line.trim().to_string()));
                break;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let crashed = exited
        && decision.is_none()
        && reaper
            .0
            .wait()
            .is_ok_and(|s| std::os::unix::process::ExitStatusExt::signal(&s).is_some());
    drop(reaper);
    let stderr = errors.join().unwrap_or_default();
    let text = String::from_utf8_lossy(&console).into_owned();
    if let Some(path) = &opts.console_log {
        std::fs::write(path, &text).map_err(|e| Error::io(path, "writing the console log", e))?;
    }
    let (passed, line) = match decision {
        Some((p, l)) => (p, Some(l)),
        None if exited => {
            let why = if stderr.trim().is_empty() {
                "no message".to_string()
            } else {
                stderr.trim().to_string()
            };
            (false, Some(format!("qemu-system-x86_64 exited after {seconds:.0} s: {why}")))
        }
        None => (false, None),
    };
    Ok((BootTestResult { passed, line, seconds, accel, console_tail: tail(&text, 20) }, crashed))
}

impl BootTestResult {
    /// The failure as an error naming what was seen.
    pub fn into_error(self, what: &Path, marker: &str, timeout: Duration) -> Error {
        let why = match &self.line {
            Some(l) => format!("the guest failed to boot ({l:?})"),
            None => format!("no {marker:?} on the serial console within {} s", timeout.as_secs()),
        };
        Error::new(
            ErrorKind::ToolFailed,
            format!("boot test: {why}; last console lines:\n{}", self.console_tail.join("\n")),
        )
        .with_path(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::libvirt::{Clock, Disk, DomainType, Graphics, Interface, NetSource, Uefi};

    fn domain(firmware: Firmware, bus: DiskBus) -> Domain {
        Domain {
            domain_type: DomainType::Kvm,
            name: "g".into(),
            uuid: "6f1c2a9e-0b7d-4c55-9a43-2f8e1d0c7b10".into(),
            genid: None,
            description: String::new(),
            memory_mib: 4096,
            vcpus: 2,
            cores_per_socket: None,
            machine: Machine::Q35,
            firmware,
            windows: false,
            clock: Clock::Utc,
            disks: vec![Disk {
                path: "/o/g.qcow2".into(),
                format: "qcow2".into(),
                bus,
                target: "vda".into(),
                boot_order: 1,
            }],
            interfaces: vec![Interface {
                mac: Some("00:50:56:8a:00:01".into()),
                source: NetSource::Network("default".into()),
                model: crate::libvirt::NicModel::Virtio,
            }],
            graphics: Graphics::Vnc,
        }
    }

    #[test]
    fn qemu_gets_the_domains_devices() {
        let a = qemu_args(&domain(Firmware::Bios, DiskBus::VirtioBlk), Accel::Tcg, None, 2048)
            .join(" ");
        assert!(a.contains("-machine q35,accel=tcg"), "{a}");
        assert!(a.contains("-smp 1"), "TCG boots one CPU: {a}");
        assert!(a.contains("-snapshot"), "{a}");
        assert!(a.contains("file=/o/g.qcow2,format=qcow2,if=none,id=disk0"), "{a}");
        assert!(a.contains("virtio-blk-pci,drive=disk0,bootindex=1"), "{a}");
        assert!(a.contains("virtio-net-pci,netdev=net0,mac=00:50:56:8a:00:01"), "{a}");
        assert!(!a.contains("pflash"), "{a}");
        let uefi = Firmware::Uefi(Uefi {
            loader: "/fw/CODE.fd".into(),
            nvram: "/o/g_VARS.fd".into(),
            template: Some("/fw/VARS.fd".into()),
            secure_boot: true,
        });
        let a = qemu_args(
            &domain(uefi, DiskBus::VirtioScsi),
            Accel::Kvm,
            Some(Path::new("/o/.v.fd")),
            2048,
        )
        .join(" ");
        assert!(a.contains("q35,accel=kvm,smm=on"), "{a}");
        assert!(a.contains("if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd"), "{a}");
        assert!(a.contains("if=pflash,format=raw,unit=1,file=/o/.v.fd"), "{a}");
        assert!(a.contains("virtio-scsi-pci,id=scsi0") && a.contains("scsi-hd,drive=disk0"), "{a}");
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        assert_eq!(tail("a\r\nb\nc\n", 2), vec!["b", "c"]);
        assert_eq!(tail("", 5), Vec::<String>::new());
    }
}
