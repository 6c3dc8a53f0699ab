//! OVA as tar (plain; gzip and xz are detected and decompressed the same way): members, the
//! OVF descriptor in it, the `.mf`, the disks' formats.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hyper2kvm_fuzz::probe("vm.ova", data));
