//! The libvirt domain of a converted guest: a typed model ([`Domain`]) chosen from the VM's
//! description, its inspection and its disks ([`build_domain`]), serialized by our own code
//! ([`to_xml`]), and written beside the disks with its UEFI variable store ([`write_domain`]).
//!
//! Defining it in libvirt through the `virt` crate lives in [`define`] (cargo feature
//! `libvirt`, on in our builds).

mod build;
#[cfg(feature = "libvirt")]
pub mod define;
pub mod firmware;
mod model;
mod xml;

use std::path::{Path, PathBuf};

pub use build::{
    DEFAULT_MEMORY_MIB, DEFAULT_VCPUS, DomainDisk, DomainOptions, SourceNic, VmDescription,
    build_domain, random_uuid, unmapped_networks,
};
pub use model::{
    Clock, Disk, DiskBus, Domain, DomainType, Firmware, Graphics, Interface, Machine, NetSource,
    NicModel, Uefi,
};
pub use xml::to_xml;

use crate::error::{Error, Result};
use crate::io::write_atomically;

/// Where the domain XML and the variable store of `name` go in `out_dir`.
pub fn domain_paths(out_dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (out_dir.join(format!("{name}.xml")), out_dir.join(format!("{name}_VARS.fd")))
}

/// Writes the domain's XML (and, for UEFI, a copy of the variable-store template as its
/// NVRAM) to the paths the domain names. Returns the files written.
pub fn write_domain(domain: &Domain, xml_path: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    if let Firmware::Uefi(u) = &domain.firmware
        && let Some(template) = &u.template
    {
        let vars = std::fs::read(template).map_err(|e| Error::io(template, "reading", e))?;
        write_atomically(&u.nvram, &vars)?;
        written.push(u.nvram.clone());
    }
    write_atomically(xml_path, to_xml(domain).as_bytes())?;
    written.push(xml_path.to_path_buf());
    Ok(written)
}
