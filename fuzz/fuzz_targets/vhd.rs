//! VHD (fixed, dynamic, differencing): footer, dynamic header, BAT, parent locators.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hyper2kvm::formats::vhd::parse(&hyper2kvm_fuzz::source("disk.vhd", data));
});
