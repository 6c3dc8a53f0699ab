//! Virtual appliances: OVA archives (plain tar, zip, or tar compressed with gzip or xz), OVF
//! descriptors and directories holding one, with their `.mf` manifests.
//!
//! A disk stored uncompressed inside an OVA (a tar member, a stored zip member) is never
//! copied: it is probed (and later converted) in place as a byte range of the archive. A disk
//! that is compressed — the whole archive, a deflated zip member, or a file the OVF marks
//! `ovf:compression="gzip"` — has to be decompressed once; only [`extract_appliance`] does that, into a directory the caller chooses.
//!
//! Member names are resolved the way exporters write them: relative to the descriptor's
//! folder inside the archive, and, when the OVF names `disk1.vmdk` but only VMware snapshot
//! files `disk1.vmdk.000000001`, `…002` are there, the newest of those (with a warning).

pub mod domxml;
pub mod manifest;
mod members;
pub mod ovf;
pub mod vmx;
pub mod xml;
pub mod zip;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::formats::container;
use crate::image::DiskImage;
use crate::image::{ProbeContext, ProbeOptions, cross_check};
use crate::io::confined_relative_path;
use crate::io::source::ByteSource;
use manifest::{Algorithm, Hasher, ManifestEntry};
use members::Index;
pub(crate) use members::{Encoding, MAX_MEMBERS, Member};
use ovf::OvfDescriptor;

/// How the appliance was packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Container {
    /// An uncompressed tar archive.
    Ova,
    /// A tar archive compressed with gzip.
    OvaGzip,
    /// A tar archive compressed with xz.
    OvaXz,
    /// A zip archive.
    OvaZip,
    /// A loose OVF descriptor with its files beside it.
    Ovf,
    /// A VMware `.vmx` configuration with its disks beside it.
    Vmx,
    /// A libvirt domain XML.
    LibvirtXml,
}

/// One disk of the appliance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplianceDisk {
    /// `ovf:diskId`.
    pub disk_id: String,
    /// The file (OVA member or path relative to the OVF) holding it.
    pub href: Option<String>,
    /// Capacity declared by the OVF, in bytes.
    pub capacity: u64,
    /// The probed image; absent for a blank disk or inside a compressed OVA not yet extracted.
    pub image: Option<DiskImage>,
}

/// Result of checking the `.mf` manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestCheck {
    /// Name of the manifest file.
    pub file: String,
    /// Lines in the manifest.
    pub entries: usize,
    /// True when every listed file was hashed and matched.
    pub verified: bool,
}

/// A probed OVA or OVF.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Appliance {
    /// The archive, descriptor or directory given.
    pub path: PathBuf,
    /// How it is packaged.
    pub container: Container,
    /// File name of the OVF descriptor.
    pub descriptor: String,
    /// What the descriptor says.
    pub ovf: OvfDescriptor,
    /// Manifest verification, when there is a manifest.
    pub manifest: Option<ManifestCheck>,
    /// The disks, in descriptor order.
    pub disks: Vec<ApplianceDisk>,
    /// Non-fatal findings.
    pub warnings: Vec<String>,
}

/// What to do with a tar member of this type: `Ok(true)` for a file, `Ok(false)` to skip it
/// (directory entries, pax global headers), an error for links and devices.
fn tar_entry_is_file(archive: &Path, name: &str, kind: tar::EntryType) -> Result<bool> {
    if kind.is_file() || kind == tar::EntryType::Continuous {
        return Ok(true);
    }
    if kind.is_dir() || kind.is_pax_global_extensions() {
        return Ok(false);
    }
    Err(Error::invalid(
        archive,
        format!(
            "OVA member {name:?} is not a regular file ({kind:?}); links and devices are refused"
        ),
    ))
}

fn read_text(archive: &Path, name: &str, mut r: impl Read, limit: u64) -> Result<String> {
    let mut buf = Vec::new();
    r.by_ref()
        .take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(archive, &format!("reading member {name:?}"), e))?;
    if buf.len() as u64 > limit {
        return Err(Error::invalid(
            archive,
            format!("member {name:?} is larger than {limit} bytes"),
        ));
    }
    String::from_utf8(buf)
        .map_err(|_| Error::invalid(archive, format!("member {name:?} is not UTF-8 text")))
}

/// Junk some archivers add beside the real files (macOS resource forks).
fn is_junk(name: &str) -> bool {
    name.split('/').any(|p| p == "__MACOSX")
        || name.rsplit('/').next().is_some_and(|f| f.starts_with("._"))
}

fn find_descriptor<'a>(archive: &Path, names: impl Iterator<Item = &'a String>) -> Result<String> {
    let ovfs: Vec<&String> =
        names.filter(|n| n.to_ascii_lowercase().ends_with(".ovf") && !is_junk(n)).collect();
    match ovfs.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::invalid(archive, "no OVF descriptor (*.ovf) in the package")),
        _ => Err(Error::invalid(
            archive,
            format!(
                "{} OVF descriptors in one package ({})",
                ovfs.len(),
                ovfs.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

fn manifest_name(descriptor: &str) -> String {
    let stem = descriptor.rsplit_once('.').map_or(descriptor, |(s, _)| s);
    format!("{stem}.mf")
}

/// Verifies every manifest entry with `digest(name, algorithm)`, which returns `None` for a
/// file missing from the package.
fn verify_manifest(
    origin: &Path,
    file: &str,
    entries: &[ManifestEntry],
    mut digest: impl FnMut(&str, Algorithm) -> Result<Option<String>>,
) -> Result<ManifestCheck> {
    for e in entries {
        let got = digest(&e.file, e.algorithm)?.ok_or_else(|| {
            Error::invalid(
                origin,
                format!("manifest {file:?} lists {:?}, which is not in the package", e.file),
            )
        })?;
        manifest::check(origin, e, &got)?;
    }
    Ok(ManifestCheck { file: file.to_string(), entries: entries.len(), verified: true })
}

fn blank_disks(ovf: &OvfDescriptor) -> Vec<ApplianceDisk> {
    ovf.disks
        .iter()
        .map(|d| ApplianceDisk {
            disk_id: d.disk_id.clone(),
            href: ovf.file_of(d).map(|f| f.href.clone()),
            capacity: d.capacity,
            image: None,
        })
        .collect()
}

/// Whether the disk's file is gzip-compressed (`ovf:compression="gzip"`); any other
/// compression, or a `fileRef` missing from `References`, is an error.
fn disk_gzip(origin: &Path, ovf: &OvfDescriptor, disk: &ApplianceDisk) -> Result<bool> {
    let ovf_disk = ovf.disks.iter().find(|d| d.disk_id == disk.disk_id);
    if ovf_disk.is_some_and(|d| d.file_ref.is_some()) && disk.href.is_none() {
        return Err(Error::invalid(
            origin,
            format!("OVF disk {:?} refers to a file missing from References", disk.disk_id),
        ));
    }
    let compression = ovf_disk.and_then(|d| ovf.file_of(d)).and_then(|f| f.compression.clone());
    match compression.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("identity") => Ok(false),
        Some("gzip") => Ok(true),
        Some(other) => Err(Error::unsupported(
            origin,
            format!(
                "OVF file {:?} uses compression {other:?} (only gzip is supported)",
                disk.href.as_deref().unwrap_or_default()
            ),
        )),
    }
}

/// Finds the member holding `d`'s file (see [`members::find`]) and records it as the disk's
/// `href`; `None` for a blank disk.
fn disk_member(
    archive: &Path,
    folder: &str,
    names: &[String],
    d: &mut ApplianceDisk,
    warnings: &mut Vec<String>,
) -> Result<Option<String>> {
    let Some(href) = d.href.clone() else { return Ok(None) };
    let (name, warning) = members::find(names, &members::join(archive, folder, &href)?)
        .ok_or_else(|| {
            Error::invalid(
                archive,
                format!("disk file {href:?} named by the OVF is not in the archive"),
            )
        })?;
    warnings.extend(warning);
    d.href = Some(name.clone());
    Ok(Some(name))
}

/// The warning a probe without extraction gives for a disk that must be unpacked first.
pub const NOT_IN_PLACE: &str =
    "is compressed in the package: it is unpacked into the output directory for conversion";

/// Probes every disk of `ovf` that has a file; `open` probes one by its href.
fn probe_disks(
    origin: &Path,
    ovf: &OvfDescriptor,
    opts: &ProbeOptions,
    mut open: impl FnMut(&mut ProbeContext, &str, bool) -> Result<DiskImage>,
) -> Result<Vec<ApplianceDisk>> {
    let mut disks = blank_disks(ovf);
    let mut ctx = ProbeContext::new();
    for d in &mut disks {
        let gz = disk_gzip(origin, ovf, d)?;
        let Some(href) = &d.href else { continue };
        let mut img = open(&mut ctx, href, gz)?;
        if opts.cross_check {
            cross_check(&mut img);
        }
        d.image = Some(img);
    }
    Ok(disks)
}

impl Appliance {
    fn new(
        path: &Path,
        container: Container,
        descriptor: String,
        ovf: OvfDescriptor,
        manifest: Option<ManifestCheck>,
        disks: Vec<ApplianceDisk>,
    ) -> Appliance {
        let mut a = Appliance {
            path: path.to_path_buf(),
            container,
            descriptor,
            ovf,
            manifest,
            disks,
            warnings: Vec::new(),
        };
        capacity_warnings(&mut a);
        a
    }
}

fn capacity_warnings(a: &mut Appliance) {
    for d in &a.disks {
        if let Some(img) = &d.image
            && img.virtual_size != d.capacity
        {
            a.warnings.push(format!(
                "disk {:?}: the OVF declares {} bytes, the image holds {}",
                d.disk_id, d.capacity, img.virtual_size
            ));
        }
    }
}

/// Indexes an uncompressed tar OVA: every member's name and byte range.
fn tar_index(src: &ByteSource) -> Result<Index> {
    let archive = src.path();
    let mut index = Index::new(src);
    let mut tar = tar::Archive::new(src.file());
    let entries =
        tar.entries_with_seek().map_err(|e| Error::io(archive, "reading the tar archive", e))?;
    for entry in entries {
        let entry =
            entry.map_err(|e| Error::invalid(archive, format!("corrupt tar archive: {e}")))?;
        let path =
            entry.path().map_err(|e| Error::invalid(archive, format!("bad member name: {e}")))?;
        let name = path.to_string_lossy().into_owned();
        if !tar_entry_is_file(archive, &name, entry.header().entry_type())? {
            continue;
        }
        let member = Member {
            offset: entry.raw_file_position(),
            stored: entry.size(),
            encoding: Encoding::Stored,
        };
        index.insert(&name, member)?;
    }
    Ok(index)
}

/// Indexes a zip OVA.
fn zip_index(src: &ByteSource) -> Result<Index> {
    let mut index = Index::new(src);
    for (name, member) in zip::members(src)? {
        index.insert(&name, member)?;
    }
    Ok(index)
}

/// Probes an uncompressed tar OVA: lists its members, parses the OVF, verifies the manifest,
/// and probes every disk in place.
pub(crate) fn probe_ova(src: &ByteSource, opts: &ProbeOptions) -> Result<Appliance> {
    probe_index(&tar_index(src)?, Container::Ova, opts, None)
}

/// Probes a zip OVA: stored disks in place; deflated ones are listed, and probed only when
/// unpacked ([`extract_appliance`]).
pub(crate) fn probe_zip(src: &ByteSource, opts: &ProbeOptions) -> Result<Appliance> {
    probe_index(&zip_index(src)?, Container::OvaZip, opts, None)
}

/// Reads the manifest beside `descriptor` (when there is one), verifying it with `digest`.
fn archive_manifest(
    archive: &Path,
    descriptor: &str,
    names: &[String],
    opts: &ProbeOptions,
    text: impl FnOnce(&str) -> Result<String>,
    digest: impl FnMut(&str, Algorithm) -> Result<Option<String>>,
    warnings: &mut Vec<String>,
) -> Result<Option<ManifestCheck>> {
    let mf_name = manifest_name(descriptor);
    if !names.contains(&mf_name) {
        return Ok(None);
    }
    let parsed = manifest::parse(Path::new(&mf_name), &text(&mf_name)?);
    warnings.extend(parsed.warnings);
    if !opts.verify_manifest {
        return Ok(Some(ManifestCheck {
            file: mf_name,
            entries: parsed.entries.len(),
            verified: false,
        }));
    }
    verify_manifest(archive, &mf_name, &parsed.entries, digest).map(Some)
}

/// Probes an archive read in place. Stored disks are probed where they lie; compressed ones
/// (deflated zip members, `ovf:compression="gzip"` files) are unpacked into `extract_to`
/// when it is given and probed there, else listed without an image.
fn probe_index(
    index: &Index,
    container: Container,
    opts: &ProbeOptions,
    extract_to: Option<&Path>,
) -> Result<Appliance> {
    let archive = index.path();
    let names = index.names();
    let descriptor = find_descriptor(archive, names.iter())?;
    let folder = members::folder(&descriptor);
    let text =
        read_text(archive, &descriptor, index.reader(&descriptor)?, xml::MAX_XML_BYTES as u64)?;
    let ovf = OvfDescriptor::parse(archive, &text)
        .map_err(|e| e.context(format!("member {descriptor:?}")))?;
    let mut warnings = Vec::new();
    let manifest = archive_manifest(
        archive,
        &descriptor,
        &names,
        opts,
        |mf| read_text(archive, mf, index.reader(mf)?, 1 << 20),
        |name, alg| {
            let m = members::join(archive, folder, name)?;
            if !names.contains(&m) {
                return Ok(None);
            }
            manifest::digest_reader(index.reader(&m)?, alg)
                .map(Some)
                .map_err(|e| Error::invalid(archive, format!("reading member {m:?}: {e}")))
        },
        &mut warnings,
    )?;
    let mut disks = blank_disks(&ovf);
    let mut ctx = ProbeContext::new();
    for d in &mut disks {
        let gz = disk_gzip(archive, &ovf, d)?;
        let Some(name) = disk_member(archive, folder, &names, d, &mut warnings)? else {
            continue;
        };
        let in_place = if gz { None } else { index.in_place(&name)? };
        let mut img = match (in_place, extract_to) {
            (Some(slice), _) => ctx.probe_member(&slice),
            (None, Some(dir)) => {
                let target = dir.join(&name);
                let reader = index.reader(&name)?;
                let reader = if gz { members::gunzip(reader) } else { reader };
                members::unpack(archive, &name, reader, &target)?;
                ctx.probe_parent(&target)
            }
            (None, None) => {
                warnings.push(format!("disk {:?} ({name}) {NOT_IN_PLACE}", d.disk_id));
                continue;
            }
        }
        .map_err(|e| e.context(format!("member {name:?}")))?;
        if opts.cross_check {
            cross_check(&mut img);
        }
        d.image = Some(img);
    }
    let mut a = Appliance::new(archive, container, descriptor, ovf, manifest, disks);
    a.warnings.splice(0..0, warnings);
    Ok(a)
}

/// Probes an OVF descriptor file and the files beside it.
pub(crate) fn probe_ovf_file(path: &Path, opts: &ProbeOptions) -> Result<Appliance> {
    let text = read_descriptor(path, xml::MAX_XML_BYTES as u64, "OVF descriptor")?;
    let root = xml::parse(path, &text)?;
    if domxml::is_domain(&root) {
        return probe_described(path, Container::LibvirtXml, domxml::parse(path, &text)?, opts);
    }
    probe_described(path, Container::Ovf, OvfDescriptor::parse(path, &text)?, opts)
}

/// Probes a VMX file and the disks it names.
pub(crate) fn probe_vmx_file(path: &Path, opts: &ProbeOptions) -> Result<Appliance> {
    let text = read_descriptor(path, vmx::MAX_VMX_BYTES, "VMX file")?;
    probe_described(path, Container::Vmx, vmx::parse(path, &text)?, opts)
}

fn read_descriptor(path: &Path, limit: u64, what: &str) -> Result<String> {
    let src = ByteSource::open(path)?;
    if src.len() > limit {
        return Err(Error::invalid(path, format!("{what} is larger than {limit} bytes")));
    }
    read_text(path, "descriptor", src.reader(), limit)
}

/// Where a disk named by a descriptor lives. OVF and VMX names must stay inside the
/// descriptor's directory (a VMX may spell them as absolute paths into it); a libvirt domain
/// names its disks by absolute path anywhere.
fn resolve_disk(path: &Path, container: Container, name: &str) -> Result<PathBuf> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let named = Path::new(name);
    if named.is_absolute() {
        match container {
            Container::LibvirtXml => return Ok(named.to_path_buf()),
            Container::Vmx => {
                let canon_dir = dir.canonicalize().map_err(|e| Error::io(dir, "resolving", e))?;
                let inside = named
                    .parent()
                    .and_then(|p| p.canonicalize().ok())
                    .is_some_and(|p| p.starts_with(&canon_dir));
                if !inside {
                    return Err(Error::invalid(
                        path,
                        format!("disk {name:?} is outside the VMX file's directory"),
                    ));
                }
                return Ok(named.to_path_buf());
            }
            _ => {}
        }
    }
    let what = match container {
        Container::Vmx => "VMX disk",
        Container::LibvirtXml => "domain disk",
        _ => "OVF file reference",
    };
    Ok(dir.join(confined_relative_path(path, what, name)?))
}

/// Probes a loose descriptor (OVF, VMX, libvirt XML): its manifest, when it has one, and its
/// disks.
fn probe_described(
    path: &Path,
    container: Container,
    ovf: OvfDescriptor,
    opts: &ProbeOptions,
) -> Result<Appliance> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let descriptor = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let resolve = |name: &str| resolve_disk(path, container, name);
    let mf_name = manifest_name(&descriptor);
    let mf_path = dir.join(&mf_name);
    let mut manifest = None;
    let mut warnings = Vec::new();
    if container == Container::Ovf && mf_path.is_file() {
        let mf_src = ByteSource::open(&mf_path)?;
        let parsed =
            manifest::parse(&mf_path, &read_text(&mf_path, &mf_name, mf_src.reader(), 1 << 20)?);
        warnings = parsed.warnings;
        manifest = Some(if opts.verify_manifest {
            verify_manifest(&mf_path, &mf_name, &parsed.entries, |name, alg| {
                let p = resolve(name)?;
                if !p.exists() {
                    return Ok(None);
                }
                let s = ByteSource::open(&p)?;
                manifest::digest_reader(s.reader(), alg)
                    .map(Some)
                    .map_err(|e| Error::io(&p, "reading", e))
            })?
        } else {
            ManifestCheck { file: mf_name, entries: parsed.entries.len(), verified: false }
        });
    }
    let disks = probe_disks(path, &ovf, opts, |ctx, href, gz| {
        let disk = resolve(href)?;
        if !disk.exists() {
            return Err(Error::new(
                crate::error::ErrorKind::NotFound,
                format!("disk {href:?} named by the descriptor does not exist"),
            )
            .with_path(path));
        }
        if gz {
            return Err(Error::unsupported(
                path,
                format!(
                    "disk file {href:?} is gzip-compressed (ovf:compression) beside a loose OVF; \
                     convert the OVA it came from, or gunzip the file and drop the attribute"
                ),
            ));
        }
        ctx.probe_parent(&disk)
            .map_err(|e| e.context(format!("disk {href:?} of {}", path.display())))
    })?;
    let mut a = Appliance::new(path, container, descriptor, ovf, manifest, disks);
    a.warnings.splice(0..0, warnings);
    if container != Container::Ovf {
        // VMX and libvirt XML declare no capacities: the images say.
        a.warnings.retain(|w| !w.contains("declares"));
        for d in &mut a.disks {
            if let Some(img) = &d.image {
                d.capacity = img.virtual_size;
            }
        }
    }
    Ok(a)
}

/// Probes a directory holding exactly one OVF descriptor.
pub(crate) fn probe_directory(dir: &Path, opts: &ProbeOptions) -> Result<Appliance> {
    let read = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "cannot list directory", e))?;
    let names: Vec<String> =
        read.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    let ovf = find_descriptor(dir, names.iter()).map_err(|_| {
        Error::invalid(dir, "is a directory, not a disk image (and holds no single OVF descriptor)")
    })?;
    probe_ovf_file(&dir.join(ovf), opts)
}

fn decoder(src: &ByteSource) -> Result<(Container, Box<dyn Read>)> {
    let head = src.read_up_to(0, 6)?;
    let raw = BufReader::with_capacity(1 << 20, src.reader());
    if head.starts_with(container::GZIP_MAGIC) {
        Ok((Container::OvaGzip, Box::new(flate2::read::MultiGzDecoder::new(raw))))
    } else if head.starts_with(container::XZ_MAGIC) {
        Ok((Container::OvaXz, Box::new(liblzma::read::XzDecoder::new_multi_decoder(raw))))
    } else {
        Err(Error::invalid(src.path(), "not a gzip or xz stream"))
    }
}

/// Hashers for one member: the manifest's algorithms when known, else SHA-1 and SHA-256.
fn hashers_for(known: Option<&[ManifestEntry]>) -> Vec<(Algorithm, Hasher)> {
    let mut algs: Vec<Algorithm> = match known {
        Some(entries) => entries.iter().map(|e| e.algorithm).collect(),
        None => vec![Algorithm::Sha1, Algorithm::Sha256],
    };
    algs.dedup();
    algs.into_iter().map(|a| (a, Hasher::new(a))).collect()
}

/// Streams a compressed OVA once: parses the OVF and manifest, hashes every member, and when
/// `extract_to` is given writes the members there (only there) and probes the disks.
fn scan_compressed(
    src: &ByteSource,
    opts: &ProbeOptions,
    extract_to: Option<&Path>,
) -> Result<Appliance> {
    let archive = src.path();
    let (container, reader) = decoder(src)?;
    let mut tar = tar::Archive::new(reader);
    let entries = tar
        .entries()
        .map_err(|e| Error::invalid(archive, format!("corrupt compressed archive: {e}")))?;
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    let mut digests: BTreeMap<(String, Algorithm), String> = BTreeMap::new();
    let mut known_manifest: Option<Vec<ManifestEntry>> = None;
    let mut mf_warnings: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut names = Vec::new();
    for entry in entries {
        let mut entry = entry
            .map_err(|e| Error::invalid(archive, format!("corrupt compressed archive: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| Error::invalid(archive, format!("bad member name: {e}")))?
            .into_owned();
        let name = members::safe_name(archive, &path.to_string_lossy())?;
        if !tar_entry_is_file(archive, &name, entry.header().entry_type())? {
            continue;
        }
        if names.contains(&name) || names.len() >= MAX_MEMBERS {
            return Err(Error::invalid(
                archive,
                format!("OVA has a duplicate member {name:?} or too many members"),
            ));
        }
        names.push(name.clone());
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".ovf") || lower.ends_with(".mf") {
            let text = read_text(archive, &name, &mut entry, xml::MAX_XML_BYTES as u64)?;
            if lower.ends_with(".mf") {
                let parsed = manifest::parse(Path::new(&name), &text);
                mf_warnings.insert(name.clone(), parsed.warnings);
                known_manifest = Some(parsed.entries);
            }
            for (alg, mut h) in hashers_for(known_manifest.as_deref()) {
                h.update(text.as_bytes());
                digests.insert((name.clone(), alg), h.finish_hex());
            }
            texts.insert(name, text);
            continue;
        }
        let mut hashers =
            if opts.verify_manifest { hashers_for(known_manifest.as_deref()) } else { Vec::new() };
        let mut out = match extract_to {
            Some(dir) if !is_junk(&name) => {
                let target = dir.join(&name);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| Error::io(parent, "cannot create directory", e))?;
                }
                Some((
                    File::create_new(&target)
                        .map_err(|e| Error::io(&target, "cannot create", e))?,
                    target,
                ))
            }
            _ => None,
        };
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::invalid(
                        archive,
                        format!("corrupt compressed archive in member {name:?}: {e}"),
                    ));
                }
            };
            hashers.iter_mut().for_each(|(_, h)| h.update(&buf[..n]));
            if let Some((f, target)) = &mut out {
                f.write_all(&buf[..n])
                    .map_err(|e| Error::io(&*target, "writing extracted member", e))?;
            }
        }
        for (alg, h) in hashers {
            digests.insert((name.clone(), alg), h.finish_hex());
        }
    }
    let descriptor = find_descriptor(archive, names.iter())?;
    let folder = members::folder(&descriptor);
    let ovf = OvfDescriptor::parse(archive, &texts[&descriptor])
        .map_err(|e| e.context(format!("member {descriptor:?}")))?;
    let mf_name = manifest_name(&descriptor);
    let mut warnings = mf_warnings.remove(&mf_name).unwrap_or_default();
    let manifest = match (texts.get(&mf_name), &known_manifest) {
        (Some(_), Some(entries)) if opts.verify_manifest => {
            Some(verify_manifest(archive, &mf_name, entries, |name, alg| {
                let name = members::join(archive, folder, name)?;
                if !names.contains(&name) {
                    return Ok(None);
                }
                digests.get(&(name.clone(), alg)).cloned().map(Some).ok_or_else(|| {
                    Error::unsupported(
                        archive,
                        format!(
                            "cannot verify {name:?}: the manifest's algorithm changed mid-archive"
                        ),
                    )
                })
            })?)
        }
        (Some(_), Some(entries)) => {
            Some(ManifestCheck { file: mf_name, entries: entries.len(), verified: false })
        }
        _ => None,
    };
    let mut disks = blank_disks(&ovf);
    let mut ctx = ProbeContext::new();
    for d in &mut disks {
        let gz = disk_gzip(archive, &ovf, d)?;
        let Some(name) = disk_member(archive, folder, &names, d, &mut warnings)? else {
            continue;
        };
        let Some(dir) = extract_to else { continue };
        let mut path = dir.join(&name);
        if gz {
            // The file is itself gzip-compressed: unpack it beside, and drop the packed copy.
            let packed = ByteSource::open(&path)?;
            let target = dir.join(format!("{name}.gunzipped"));
            members::unpack(archive, &name, members::gunzip(packed.reader()), &target)?;
            drop(packed);
            let _ = std::fs::remove_file(&path);
            path = target;
        }
        let mut img = ctx.probe_parent(&path).map_err(|e| e.context(format!("member {name:?}")))?;
        if opts.cross_check {
            cross_check(&mut img);
        }
        d.image = Some(img);
    }
    let mut a = Appliance::new(archive, container, descriptor, ovf, manifest, disks);
    a.warnings.splice(0..0, warnings);
    if extract_to.is_none() {
        a.warnings.push(format!("compressed OVA: every disk {NOT_IN_PLACE}"));
    }
    Ok(a)
}

/// Probes a gzip- or xz-compressed OVA without writing anything (disks are listed from the
/// OVF, not probed).
pub(crate) fn probe_compressed_ova(src: &ByteSource, opts: &ProbeOptions) -> Result<Appliance> {
    scan_compressed(src, opts, None)
}

/// True when some disk of the appliance has to be unpacked before it can be converted (a
/// compressed archive, a deflated zip member, a gzip-compressed OVF file).
pub fn needs_unpacking(a: &Appliance) -> bool {
    matches!(a.container, Container::OvaGzip | Container::OvaXz)
        || a.disks.iter().any(|d| d.href.is_some() && d.image.is_none())
}

/// Unpacks what has to be unpacked of the OVA at `path` into `dir` (which must exist and be
/// empty) and probes the disks: a compressed archive is decompressed whole (verifying the
/// manifest on the way); from a tar or zip OVA only the compressed disk members are unpacked,
/// the others stay in place.
pub fn extract_appliance(path: &Path, dir: &Path, opts: &ProbeOptions) -> Result<Appliance> {
    let src = ByteSource::open(path)?;
    let head = src.read_up_to(0, 512)?;
    if head.starts_with(container::GZIP_MAGIC) || head.starts_with(container::XZ_MAGIC) {
        scan_compressed(&src, opts, Some(dir))
    } else if head.starts_with(container::LOCAL_MAGIC) {
        probe_index(&zip_index(&src)?, Container::OvaZip, opts, Some(dir))
    } else {
        probe_index(&tar_index(&src)?, Container::Ova, opts, Some(dir))
    }
}
