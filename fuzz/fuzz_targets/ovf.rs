//! OVF descriptors (VMware, VirtualBox, Hyper-V exports): the XML reader and the OVF model.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = hyper2kvm_fuzz::text(data);
    let _ = hyper2kvm::appliance::ovf::OvfDescriptor::parse(std::path::Path::new("vm.ovf"), &text);
});
