//! VHDX: file identifier, headers, region table, metadata, BAT.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hyper2kvm::formats::vhdx::parse(&hyper2kvm_fuzz::source("disk.vhdx", data));
});
