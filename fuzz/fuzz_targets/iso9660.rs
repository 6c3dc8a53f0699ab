//! ISO 9660 (with Joliet): the disk-format probe, and the virtio-win reader's directory walk.
#![no_main]
use hyper2kvm::fix::windows::iso9660::IsoImage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = hyper2kvm_fuzz::as_file("virtio-win.iso", data);
    if let Ok(src) = hyper2kvm::io::ByteSource::open(&path) {
        let _ = hyper2kvm::formats::iso::parse(&src);
    }
    let Ok(iso) = IsoImage::open(&path) else { return };
    // Walk a bounded number of directories, as the driver lookup does.
    let mut todo = vec![iso.root().clone()];
    let mut seen = 0;
    while let Some(dir) = todo.pop() {
        seen += 1;
        if seen > 64 {
            break;
        }
        if let Ok(entries) = iso.read_dir(&dir) {
            todo.extend(entries.into_iter().filter(|e| e.dir));
        }
    }
    let _ = iso.lookup(&["viostor", "w10", "amd64", "viostor.inf"]);
});
