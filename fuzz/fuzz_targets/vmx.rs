//! VMware `.vmx` configuration files.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = hyper2kvm_fuzz::text(data);
    let _ = hyper2kvm::appliance::vmx::parse(std::path::Path::new("vm.vmx"), &text);
});
