//! What the fuzz targets share: the parsers read files (through `ByteSource`), so each input is
//! written to a scratch file of this process first, under the name the parser expects.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A scratch directory of this fuzzing process (removed by the OS's tmpfs cleanup, not by us:
/// libFuzzer exits without running destructors).
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::var_os("HYPER2KVM_FUZZ_SCRATCH")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let d = base.join(format!("hyper2kvm-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch directory");
        d
    })
}

/// Writes `data` to the scratch file `name` and returns its path.
pub fn as_file(name: &str, data: &[u8]) -> PathBuf {
    let p = scratch().join(name);
    std::fs::write(&p, data).expect("scratch file");
    p
}

/// Opens `data` as a byte source named `name`.
pub fn source(name: &str, data: &[u8]) -> hyper2kvm::io::ByteSource {
    hyper2kvm::io::ByteSource::open(&as_file(name, data)).expect("scratch file opens")
}

/// Probes `data` as the input file `name`, without the qemu-img cross-check and without
/// checksumming members (the parsers, not the hashes, are under test).
pub fn probe(name: &str, data: &[u8]) {
    let opts = hyper2kvm::ProbeOptions { cross_check: false, verify_manifest: true };
    let _ = hyper2kvm::probe(&as_file(name, data), &opts);
}

/// The input as text, the way the text parsers receive it (lossy UTF-8).
pub fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}
