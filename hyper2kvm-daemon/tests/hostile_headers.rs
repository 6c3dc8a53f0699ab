//! No size read from a header may allocate or loop before it is checked: `hyper2kvm probe` on
//! every input of the fuzz corpus, every kept fuzz crash, and headers made hostile here (each
//! disk format's table sizes set to their maximum) ends with a result or a clear error — never a
//! panic or a signal — with a peak RSS below 64 MiB, measured by the kernel (`wait4`'s
//! `ru_maxrss`) for the probe and the qemu-img it asks, and within a 2 GiB address space, so an
//! allocation sized from a header fails even when its pages would never become resident.

#![allow(clippy::unwrap_used)]

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const LIMIT_KIB: i64 = 64 * 1024;

/// Runs `cmd` and returns (exit status, stderr, peak RSS in KiB of it and its waited children).
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also gives the rusage
fn run_measured(cmd: &mut Command) -> (std::process::ExitStatus, String, i64) {
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr.unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, not yet waited for; both pointers are valid for the call.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
    (std::process::ExitStatus::from_raw(status), reader.join().unwrap(), usage.ru_maxrss)
}

/// `hyper2kvm probe INPUT` with its address space limited to 2 GiB: an allocation sized from a
/// header fails there (an abort) even when its pages are never touched and so never resident.
fn probe(input: &Path) -> (std::process::ExitStatus, String, i64) {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hyper2kvm"));
    cmd.arg("probe").arg(input);
    // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 2 << 30, rlim_max: 2 << 30 };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    run_measured(&mut cmd)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn fuzz_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz").join(sub)
}

/// Each disk format's seed with its table sizes set to their maximum.
fn hostile_variants(dir: &Path) -> Vec<PathBuf> {
    let corpus = fuzz_dir("corpus");
    // (seed, offset, bytes): qcow2 l1_size (u32 BE at 36) and its L1 offset; VHD's
    // max_table_entries (u32 BE at 512+28); VMDK's capacity (u64 LE at 12) and grain table
    // entries per table (u32 LE at 44); VDI's block count (u32 LE at 0x180) and block size.
    let edits: &[(&str, usize, &[u8])] = &[
        ("qcow2/v3-512", 36, &[0xff; 4]),
        ("qcow2/v3-512", 40, &[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x00]),
        ("vhd/dynamic", 512 + 28, &[0xff; 4]),
        ("vmdk_sparse/monolithic", 12, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]),
        ("vmdk_sparse/monolithic", 44, &[0xff, 0xff, 0xff, 0x7f]),
        ("vdi/dynamic", 0x180, &[0xff; 4]),
        ("vdi/dynamic", 0x178, &[0x00, 0x00, 0x00, 0x80]),
    ];
    let mut out = Vec::new();
    for (i, (seed, at, bytes)) in edits.iter().enumerate() {
        let mut data = std::fs::read(corpus.join(seed)).unwrap();
        data[*at..*at + bytes.len()].copy_from_slice(bytes);
        let p = dir.join(format!("hostile-{i}-{}", seed.replace('/', "-")));
        std::fs::write(&p, data).unwrap();
        out.push(p);
    }
    out
}

#[test]
fn the_920_byte_vdi_is_refused_without_allocating_its_block_map() {
    let input = fuzz_dir("regressions/vdi/hostile-920-byte-header");
    assert_eq!(std::fs::metadata(&input).unwrap().len(), 920);
    let (status, err, rss) = probe(&input);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("hostile-920-byte-header"), "names the file: {err}");
    assert!(err.contains("block map") && err.contains("holds 920"), "says why: {err}");
    assert!(rss < LIMIT_KIB, "peak RSS {rss} KiB");
}

#[test]
fn probe_stays_under_64_mib_and_never_panics_on_any_corpus_input() {
    let t = tempfile::tempdir().unwrap();
    let mut inputs: Vec<(PathBuf, bool)> = files_under(&fuzz_dir("corpus"))
        .into_iter()
        .chain(files_under(&fuzz_dir("regressions")))
        .map(|p| (p, false))
        .collect();
    assert!(inputs.len() >= 40, "the committed corpus is missing ({} files)", inputs.len());
    inputs.extend(hostile_variants(t.path()).into_iter().map(|p| (p, true)));
    let mut worst = (0, PathBuf::new());
    for (input, hostile) in &inputs {
        let (status, err, rss) = probe(input);
        assert!(
            matches!(status.code(), Some(0 | 2)),
            "{}: exit {status:?} (a panic is 101, a signal has no code): {err}",
            input.display()
        );
        // A hostile header must be refused, not half-believed.
        assert!(!hostile || status.code() == Some(2), "{}: accepted: {err}", input.display());
        if status.code() == Some(2) {
            let name = input.file_name().unwrap().to_string_lossy();
            assert!(err.contains(name.as_ref()), "the error names the file: {err}");
        }
        assert!(rss < LIMIT_KIB, "{}: peak RSS {rss} KiB", input.display());
        if rss > worst.0 {
            worst = (rss, input.clone());
        }
    }
    eprintln!(
        "{} inputs probed; peak RSS at most {} KiB ({})",
        inputs.len(),
        worst.0,
        worst.1.display()
    );
}
