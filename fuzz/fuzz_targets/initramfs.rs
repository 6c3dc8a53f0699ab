//! Initramfs images: concatenated cpio (newc, crc) archives, compressed or not.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(names) = hyper2kvm::guest::initramfs::list(data) {
        let _ = hyper2kvm::guest::initramfs::has_module(&names, "virtio_blk");
    }
    let _ = hyper2kvm::guest::initramfs::read_member(data, "usr/lib/modules/6.1.0/modules.dep");
});
