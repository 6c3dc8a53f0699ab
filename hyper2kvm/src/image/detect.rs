//! Which format the first bytes say the data is: the magics tested in a fixed order — qcow2,
//! VMDK sparse, VHDX, VDI, VHD, archives (gzip, xz, tar, zip), XML (OVF), VMX, VMDK text
//! descriptor, ISO — falling back to raw. File names are never consulted.

use crate::formats::{container, iso, qcow2, vdi, vhd, vhdx, vmdk};
use crate::io::ByteSource;

/// Bytes read for magic detection.
pub(crate) const HEAD_BYTES: usize = 4096;

/// What the first bytes say the data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detected {
    Qcow2,
    VmdkSparse,
    VmdkCowd,
    Vhdx,
    Vdi,
    Vhd,
    Gzip,
    Xz,
    Tar,
    Zip,
    Xml,
    Vmx,
    VmdkDescriptor,
    Iso,
    Raw,
}

pub(crate) fn detect(src: &ByteSource, head: &[u8]) -> Detected {
    if head.starts_with(qcow2::MAGIC) {
        Detected::Qcow2
    } else if head.starts_with(vmdk::sparse::SPARSE_MAGIC) {
        Detected::VmdkSparse
    } else if head.starts_with(vmdk::sparse::COWD_MAGIC) {
        Detected::VmdkCowd
    } else if head.starts_with(vhdx::FILE_SIGNATURE) {
        Detected::Vhdx
    } else if vdi::detect(head) {
        Detected::Vdi
    } else if vhd::detect(src, head) {
        Detected::Vhd
    } else if head.starts_with(container::GZIP_MAGIC) {
        Detected::Gzip
    } else if head.starts_with(container::XZ_MAGIC) {
        Detected::Xz
    } else if container::is_tar(head) {
        Detected::Tar
    } else if head.starts_with(container::LOCAL_MAGIC) {
        Detected::Zip
    } else if container::looks_like_xml(head) {
        Detected::Xml
    } else if container::looks_like_vmx(head) {
        Detected::Vmx
    } else if vmdk::descriptor::looks_like_descriptor(head) {
        Detected::VmdkDescriptor
    } else if iso::detect(src) {
        Detected::Iso
    } else {
        Detected::Raw
    }
}
