//! Probing a disk image: the format's parser on the source, its parent followed (with a depth
//! limit and loop detection), and optionally `qemu-img info` asked for a second opinion.

use std::path::{Path, PathBuf};

use super::detect::{Detected, HEAD_BYTES, detect};
use super::{CrossCheck, DiskImage, Region, allocated_bytes};
use crate::error::{Error, ErrorKind, Result};
use crate::formats::{self, Parent, Parsed, iso, qcow2, raw, vdi, vhd, vhdx, vmdk};
use crate::io::ByteSource;
use crate::qemu_img;

/// How deep a chain of deltas may go before we call it a loop or an abuse.
pub const MAX_CHAIN_DEPTH: usize = 64;

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

/// State carried through a probe: the chain being followed, and whether the current source is
/// a member of an archive.
#[derive(Debug)]
pub(crate) struct ProbeContext {
    chain: Vec<PathBuf>,
    member: bool,
}

impl ProbeContext {
    pub(crate) fn new() -> ProbeContext {
        ProbeContext { chain: Vec::new(), member: false }
    }

    /// The probed image from what its format's parser found, its parent probed in turn.
    fn image_from(&mut self, src: &ByteSource, parsed: Parsed) -> Result<DiskImage> {
        let Parsed { format, subformat, virtual_size, details, files, parent, mut warnings } =
            parsed;
        let (files, region, allocated_size) = match files {
            Some(files) => {
                let allocated = allocated_bytes(&files);
                (files, None, allocated)
            }
            None => {
                let files = vec![src.path().to_path_buf()];
                let region = self.member.then(|| Region { offset: src.base(), size: src.len() });
                let allocated = if self.member { src.len() } else { allocated_bytes(&files) };
                (files, region, allocated)
            }
        };
        let backing = match parent {
            Some(p) => {
                let parent = self.follow(src, &p)?;
                warnings.extend(formats::parent_warning(&details, &parent.details));
                Some(Box::new(parent))
            }
            None => None,
        };
        Ok(DiskImage {
            path: src.path().to_path_buf(),
            region,
            format,
            subformat,
            virtual_size,
            allocated_size,
            files,
            backing,
            details,
            cross_check: None,
            warnings,
        })
    }

    /// Probes the parent `p` of `src`, its errors said about `src` as the format asked.
    fn follow(&mut self, src: &ByteSource, p: &Parent) -> Result<DiskImage> {
        self.probe_parent(&p.path).map_err(|e| match (&p.missing, &p.context) {
            (Some(missing), _) if e.kind() == ErrorKind::NotFound => {
                Error::invalid(src.path(), missing.clone())
            }
            (_, Some(context)) => {
                Error::new(e.kind(), format!("{context}: {e}")).with_path(src.path())
            }
            _ => e,
        })
    }

    /// Probes a disk in a file of its own (the parent of a delta or overlay, or a disk an
    /// appliance names), as one more link of the chain being followed.
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

/// Probes `path`, which must be a disk image (not an archive or a VM description), and asks
/// `qemu-img` for a second opinion when `opts.cross_check`.
pub fn probe_disk(path: &Path, opts: &ProbeOptions) -> Result<DiskImage> {
    let src = ByteSource::open(path)?;
    let mut disk = probe_disk_source(&src, &mut ProbeContext::new())?;
    if opts.cross_check {
        cross_check(&mut disk);
    }
    Ok(disk)
}

/// Probes a source that must be a disk image (not an archive or descriptor of a VM).
pub(crate) fn probe_disk_source(src: &ByteSource, ctx: &mut ProbeContext) -> Result<DiskImage> {
    let parsed = parse(src, ctx)?;
    ctx.image_from(src, parsed)
}

/// The format parser's answer for `src`.
fn parse(src: &ByteSource, ctx: &ProbeContext) -> Result<Parsed> {
    let head = src.read_up_to(0, HEAD_BYTES)?;
    if head.is_empty() {
        return Err(Error::invalid(src.path(), "empty file: not a disk image"));
    }
    match detect(src, &head) {
        Detected::Qcow2 => qcow2::parse(src, ctx.member),
        Detected::VmdkSparse => vmdk::parse_sparse(src, ctx.member),
        Detected::VmdkCowd => Err(Error::unsupported(
            src.path(),
            "ESXi vmfsSparse (COWD) deltas are not supported; consolidate the snapshot first",
        )),
        Detected::Vhdx => vhdx::parse(src),
        Detected::Vdi => vdi::parse(src),
        Detected::Vhd => vhd::parse(src),
        Detected::Gzip
        | Detected::Xz
        | Detected::Tar
        | Detected::Zip
        | Detected::Xml
        | Detected::Vmx => {
            Err(Error::invalid(src.path(), "is an archive or VM description, not a disk image"))
        }
        Detected::VmdkDescriptor => vmdk::parse_descriptor(src, ctx.member),
        Detected::Iso => iso::parse(src),
        Detected::Raw => raw::parse(src),
    }
}

/// Asks `qemu-img info` about the image and records whether it agrees with our parser. A
/// disagreement or a missing tool is a warning: our parser is the authority.
pub fn cross_check(disk: &mut DiskImage) {
    let spec = match disk.block_spec() {
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
