//! qcow2: header, extensions, backing file name, L1/L2 tables.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = hyper2kvm_fuzz::source("disk.qcow2", data);
    let _ = hyper2kvm::formats::qcow2::parse(&src, true);
});
