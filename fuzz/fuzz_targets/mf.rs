//! OVA/OVF `.mf` checksum manifests (`SHA256(file)= hex`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = hyper2kvm_fuzz::text(data);
    let _ = hyper2kvm::appliance::manifest::parse(std::path::Path::new("vm.mf"), &text);
});
