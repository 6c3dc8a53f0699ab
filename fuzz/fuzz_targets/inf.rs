//! A virtio-win driver's `.inf` file: install section and hardware ids.
#![no_main]
use hyper2kvm::fix::windows::storage::{VIOSCSI, read_inf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (section, ids) = read_inf(data, &VIOSCSI);
    assert!(!section.is_empty() || data.contains(&b'='), "an empty section came from nowhere");
    assert!(!ids.is_empty(), "the fallback ids are always there");
});
