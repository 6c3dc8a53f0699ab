//! Artifact Manifests (JSON or YAML, single VM or batch): reading, the contract's checks, and
//! path resolution.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = hyper2kvm_fuzz::as_file("manifest.json", data);
    let _ = hyper2kvm::manifest::load(&path);
    let path = hyper2kvm_fuzz::as_file("manifest.yaml", data);
    let _ = hyper2kvm::manifest::LoadedManifest::load(&path);
});
