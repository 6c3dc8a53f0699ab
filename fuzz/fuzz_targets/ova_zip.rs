//! OVA as zip (as some exporters write it): end of central directory, zip64 records, central
//! directory, local headers, then the OVF in it. Probing reaches the zip reader by the magic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hyper2kvm_fuzz::probe("vm.ova", data));
