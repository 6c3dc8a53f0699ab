//! VMDK text descriptors: the descriptor grammar, then the extent checks of a descriptor file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = hyper2kvm_fuzz::as_file("disk.vmdk", data);
    let _ = hyper2kvm::formats::vmdk::descriptor::VmdkDescriptor::parse(
        &path,
        &hyper2kvm_fuzz::text(data),
    );
    if let Ok(src) = hyper2kvm::io::ByteSource::open(&path) {
        let _ = hyper2kvm::formats::vmdk::parse_descriptor(&src, false);
    }
});
