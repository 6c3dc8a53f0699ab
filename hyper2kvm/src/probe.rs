//! Identifying an input from its content: a disk image ([`crate::image`]) or an appliance — an
//! OVA (plain, gzip, xz or zip), an OVF, a VMX or a libvirt domain ([`crate::appliance`]).
//! File names are never consulted.

use std::path::Path;

use serde::Serialize;

use crate::appliance::{self, Appliance};
use crate::error::{Error, Result};
use crate::image::{Detected, DiskImage, HEAD_BYTES, ProbeContext, detect, probe_disk_source};
pub use crate::image::{MAX_CHAIN_DEPTH, ProbeOptions, cross_check};
use crate::io::ByteSource;

/// What an input turned out to be.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Probed {
    /// A single disk image (possibly a chain of deltas).
    Disk(DiskImage),
    /// An OVA archive or an OVF descriptor with its disks.
    Appliance(Appliance),
}

/// Probes any input: a disk image, an OVA (plain, gzip or xz), an OVF descriptor, or a
/// directory holding one OVF.
pub fn probe(path: &Path, opts: &ProbeOptions) -> Result<Probed> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "cannot access input", e))?;
    if meta.is_dir() {
        return appliance::probe_directory(path, opts).map(Probed::Appliance);
    }
    let src = ByteSource::open(path)?;
    let head = src.read_up_to(0, HEAD_BYTES)?;
    if head.is_empty() {
        return Err(Error::invalid(path, "empty file: not a disk image"));
    }
    match detect(&src, &head) {
        Detected::Tar => appliance::probe_ova(&src, opts).map(Probed::Appliance),
        Detected::Zip => appliance::probe_zip(&src, opts).map(Probed::Appliance),
        Detected::Gzip | Detected::Xz => {
            appliance::probe_compressed_ova(&src, opts).map(Probed::Appliance)
        }
        Detected::Xml => appliance::probe_ovf_file(path, opts).map(Probed::Appliance),
        Detected::Vmx => appliance::probe_vmx_file(path, opts).map(Probed::Appliance),
        _ => {
            let mut disk = probe_disk_source(&src, &mut ProbeContext::new())?;
            if opts.cross_check {
                cross_check(&mut disk);
            }
            Ok(Probed::Disk(disk))
        }
    }
}
