//! Booting a disk image in qemu-system-x86_64 under TCG and watching its serial console, with a
//! hard time limit; the qemu process is always killed on the way out.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a bounded boot ended.
#[derive(Debug)]
pub struct BootResult {
    /// The marker line, when it appeared.
    pub marker: Option<String>,
    /// Everything the guest printed on its serial console.
    pub console: String,
    /// Seconds until the outcome was known.
    pub seconds: f64,
}

struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Disk controller for the boot.
#[derive(Debug, Clone, Copy)]
pub enum Bus {
    /// Legacy IDE on i440fx (what a VMware guest's initramfs can drive).
    Ide,
    /// virtio-blk on q35, with a virtio-net NIC carrying `mac`.
    Virtio,
    /// The same with UEFI firmware (OVMF; a fresh copy of its variable store per boot).
    VirtioUefi,
}

/// OVMF firmware code and variable-store template, as Debian's `ovmf` installs them.
const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// Boots `image` (opened with `snapshot=on`: never written) and waits for a console line
/// containing `marker`, for `give_up` (a line that proves failure), or for `limit`. `mac` is
/// one MAC, or several separated by commas for a NIC each (on the virtio buses).
pub fn boot(
    image: &Path,
    format: &str,
    bus: Bus,
    mac: &str,
    marker: &str,
    give_up: &[&str],
    limit: Duration,
) -> BootResult {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-m",
        "1024",
        "-nodefaults",
        "-nographic",
        "-no-reboot",
        "-display",
        "none",
        "-monitor",
        "none",
    ]);
    cmd.args(["-serial", "stdio"]);
    let drive = format!("file={},format={format},snapshot=on", image.display());
    match bus {
        Bus::Ide => cmd.args([
            "-netdev",
            "user,id=n0",
            "-machine",
            "pc,accel=tcg",
            "-drive",
            &format!("{drive},if=ide"),
        ]),
        Bus::Virtio | Bus::VirtioUefi => {
            cmd.args(["-machine", "q35,accel=tcg", "-drive", &format!("{drive},if=none,id=d0")]);
            cmd.args(["-device", "virtio-blk-pci,drive=d0"]);
            for (i, m) in mac.split(',').enumerate() {
                cmd.args(["-netdev", &format!("user,id=n{i}")]);
                cmd.args(["-device", &format!("virtio-net-pci,netdev=n{i},mac={m}")]);
            }
            &mut cmd
        }
    };
    let vars = image.with_extension("ovmf-vars.fd");
    if let Bus::VirtioUefi = bus {
        std::fs::copy(OVMF_VARS, &vars).expect("OVMF variable store template");
        cmd.args(["-drive", &format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}")]);
        cmd.args(["-drive", &format!("if=pflash,format=raw,unit=1,file={}", vars.display())]);
        // No network boot: a guest whose disk OVMF cannot boot gives up at once instead of
        // after minutes of PXE timeouts (the disk is what is tested).
        for knob in ["IPv4PXESupport", "IPv6PXESupport"] {
            cmd.args(["-fw_cfg", &format!("name=opt/org.tianocore/{knob},string=n")]);
        }
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64 runs");
    let mut guard = Killer(child);
    let mut out = guard.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut console = Vec::new();
    while started.elapsed() < limit {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(chunk) => console.extend_from_slice(&chunk),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
        let text = String::from_utf8_lossy(&console);
        // Only whole lines: the marker line may arrive in pieces.
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        if let Some(line) = complete.lines().find(|l| l.contains(marker)) {
            let line = line.trim().to_string();
            return BootResult {
                marker: Some(line),
                console: text.into_owned(),
                seconds: started.elapsed().as_secs_f64(),
            };
        }
        if give_up.iter().any(|g| text.contains(g)) {
            break;
        }
    }
    BootResult {
        marker: None,
        console: String::from_utf8_lossy(&console).into_owned(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The last `n` lines of a console, for assertion messages.
pub fn tail(console: &str, n: usize) -> String {
    let lines: Vec<&str> = console.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
