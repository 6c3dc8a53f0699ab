//! libvirt domain XML given as an input (a KVM or Xen guest to re-target).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = hyper2kvm_fuzz::text(data);
    let _ = hyper2kvm::appliance::domxml::parse(std::path::Path::new("vm.xml"), &text);
});
