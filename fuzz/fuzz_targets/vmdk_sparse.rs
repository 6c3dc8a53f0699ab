//! VMDK sparse extents (monolithicSparse, streamOptimized, COWD): header, footer, grain
//! directory and tables, embedded descriptor.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = hyper2kvm_fuzz::source("disk.vmdk", data);
    let _ = hyper2kvm::formats::vmdk::parse_sparse(&src, false);
    let _ = hyper2kvm::formats::vmdk::parse_sparse(&src, true);
});
