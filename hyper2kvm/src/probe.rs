//! Identifying an input from its content: which format, and everything the format's own
//! headers say. File names are never consulted.
//!
//! [`probe`] reads the first block and tests magics in a fixed order — qcow2, VMDK sparse,
//! VHDX, VDI, VHD, archives (gzip, xz, tar, zip), XML (OVF), VMDK text descriptor, ISO — and falls
//! back to raw. Parents of deltas and overlays are probed recursively, with a depth limit and
//! loop detection. Optionally `qemu-img info` is asked for a second opinion.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::appliance::{self, Appliance};
use crate::error::{Error, Result};
use crate::formats::{iso, qcow2, raw, vdi, vhd, vhdx, vmdk};
use crate::image::{CrossCheck, DiskImage, FormatDetails, ImageFormat, Region, allocated_bytes};
use crate::io::source::ByteSource;
use crate::qemu_img;

/// How deep a chain of deltas may go before we call it a loop or an abuse.
pub const MAX_CHAIN_DEPTH: usize = 64;
/// Bytes read for magic detection.
const HEAD_BYTES: usize = 4096;

/// What to do while probing.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Ask `qemu-img info` for a second opinion on each disk (default true).
    pub cross_check: bool,
    /// Verify the checksums of an OVA/OVF `.mf` manifest (default true).
    pub verify_manifest: bool,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions { cross_check: true, verify_manifest: true }
    }
}

/// What an input turned out to be.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Probed {
    /// A single disk image (possibly a chain of deltas).
    Disk(DiskImage),
    /// An OVA archive or an OVF descriptor with its disks.
    Appliance(Appliance),
}

/// State carried through a probe: options, the chain being followed, and whether the current
/// source is a member of an archive.
#[derive(Debug)]
pub(crate) struct ProbeContext {
    chain: Vec<PathBuf>,
    member: bool,
}

impl ProbeContext {
    pub(crate) fn new() -> ProbeContext {
        ProbeContext { chain: Vec::new(), member: false }
    }

    /// True while probing a disk stored inside an archive.
    pub(crate) fn in_archive(&self, _src: &ByteSource) -> bool {
        self.member
    }

    /// The region of the archive holding `src`, when it is a member.
    pub(crate) fn region_of(&self, src: &ByteSource) -> Option<Region> {
        self.member.then(|| Region { offset: src.base(), size: src.len() })
    }

    /// The probe result for an image held in one file (or one archive member): its path,
    /// region, allocated size and files filled in; no backing, no warnings.
    pub(crate) fn single_file(
        &self,
        src: &ByteSource,
        format: ImageFormat,
        subformat: impl Into<String>,
        virtual_size: u64,
        details: FormatDetails,
    ) -> DiskImage {
        let files = vec![src.path().to_path_buf()];
        DiskImage {
            path: src.path().to_path_buf(),
            region: self.region_of(src),
            format,
            subformat: subformat.into(),
            virtual_size,
            allocated_size: if self.member { src.len() } else { allocated_bytes(&files) },
            files,
            backing: None,
            details,
            cross_check: None,
            warnings: Vec::new(),
        }
    }

    /// Probes the parent of a delta or overlay (a separate file).
    pub(crate) fn probe_parent(&mut self, path: &Path) -> Result<DiskImage> {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if self.chain.contains(&key) {
            return Err(Error::invalid(path, "backing chain loops back to this file"));
        }
        if self.chain.len() >= MAX_CHAIN_DEPTH {
            return Err(Error::invalid(
                path,
                format!("backing chain is deeper than {MAX_CHAIN_DEPTH}"),
            ));
        }
        self.chain.push(key);
        let src = ByteSource::open(path)?;
        let result = probe_disk_source(&src, self);
        self.chain.pop();
        result
    }

    /// Probes a disk that is a member of an archive.
    pub(crate) fn probe_member(&mut self, src: &ByteSource) -> Result<DiskImage> {
        self.member = true;
        let result = probe_disk_source(src, self);
        self.member = false;
        result
    }
}

/// What the first bytes say the data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detected {
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

fn detect(src: &ByteSource, head: &[u8]) -> Detected {
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
    } else if head.starts_with(appliance::GZIP_MAGIC) {
        Detected::Gzip
    } else if head.starts_with(appliance::XZ_MAGIC) {
        Detected::Xz
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Detected::Tar
    } else if head.starts_with(appliance::zip::LOCAL_MAGIC) {
        Detected::Zip
    } else if appliance::ovf::looks_like_xml(head) {
        Detected::Xml
    } else if appliance::vmx::looks_like_vmx(head) {
        Detected::Vmx
    } else if vmdk::descriptor::looks_like_descriptor(head) {
        Detected::VmdkDescriptor
    } else if iso::detect(src) {
        Detected::Iso
    } else {
        Detected::Raw
    }
}

/// Probes a source that must be a disk image (not an archive or descriptor of a VM).
pub(crate) fn probe_disk_source(src: &ByteSource, ctx: &mut ProbeContext) -> Result<DiskImage> {
    let head = src.read_up_to(0, HEAD_BYTES)?;
    if head.is_empty() {
        return Err(Error::invalid(src.path(), "empty file: not a disk image"));
    }
    match detect(src, &head) {
        Detected::Qcow2 => qcow2::probe(src, ctx),
        Detected::VmdkSparse => vmdk::probe_sparse(src, ctx),
        Detected::VmdkCowd => Err(Error::unsupported(
            src.path(),
            "ESXi vmfsSparse (COWD) deltas are not supported; consolidate the snapshot first",
        )),
        Detected::Vhdx => vhdx::probe(src, ctx),
        Detected::Vdi => vdi::probe(src, ctx),
        Detected::Vhd => vhd::probe(src, ctx),
        Detected::Gzip
        | Detected::Xz
        | Detected::Tar
        | Detected::Zip
        | Detected::Xml
        | Detected::Vmx => {
            Err(Error::invalid(src.path(), "is an archive or VM description, not a disk image"))
        }
        Detected::VmdkDescriptor => vmdk::probe_descriptor(src, ctx),
        Detected::Iso => iso::probe(src, ctx),
        Detected::Raw => raw::probe(src, ctx),
    }
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
    let mut ctx = ProbeContext::new();
    match detect(&src, &head) {
        Detected::Tar => appliance::probe_ova(&src, opts).map(Probed::Appliance),
        Detected::Zip => appliance::probe_zip(&src, opts).map(Probed::Appliance),
        Detected::Gzip | Detected::Xz => {
            appliance::probe_compressed_ova(&src, opts).map(Probed::Appliance)
        }
        Detected::Xml => appliance::probe_ovf_file(path, opts).map(Probed::Appliance),
        Detected::Vmx => appliance::probe_vmx_file(path, opts).map(Probed::Appliance),
        _ => {
            let mut disk = probe_disk_source(&src, &mut ctx)?;
            if opts.cross_check {
                cross_check(&mut disk);
            }
            Ok(Probed::Disk(disk))
        }
    }
}

/// Asks `qemu-img info` about the image and records whether it agrees with our parser. A
/// disagreement or a missing tool is a warning: our parser is the authority.
pub fn cross_check(disk: &mut DiskImage) {
    let spec = match qemu_img::BlockSpec::for_image(disk) {
        Ok(spec) => spec,
        Err(e) => {
            disk.warnings.push(format!("qemu-img cross-check skipped: {}", e.message()));
            return;
        }
    };
    match qemu_img::info(&spec) {
        Ok(info) => {
            let agrees = info.format == spec.driver() && info.virtual_size == disk.virtual_size;
            if !agrees {
                disk.warnings.push(format!(
                    "qemu-img sees format {} with virtual size {}, our parser found {} with {}",
                    info.format,
                    info.virtual_size,
                    spec.driver(),
                    disk.virtual_size
                ));
            }
            disk.cross_check =
                Some(CrossCheck { format: info.format, virtual_size: info.virtual_size, agrees });
        }
        Err(e) => disk.warnings.push(format!("qemu-img cross-check failed: {e}")),
    }
}
