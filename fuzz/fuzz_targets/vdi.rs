//! VirtualBox VDI: pre-header, header, block map.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hyper2kvm::formats::vdi::parse(&hyper2kvm_fuzz::source("disk.vdi", data));
});
