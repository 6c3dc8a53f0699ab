//! Virtual appliances: OVA archives (plain tar, or compressed with gzip or xz), OVF descriptors
//! and directories holding one, with their `.mf` manifests.
//!
//! A disk inside an uncompressed OVA is never copied: it is probed (and later converted) in
//! place as a byte range of the archive. A compressed OVA has to be decompressed once; only
//! [`extract_compressed_ova`] does that, into a directory the caller chooses.

pub mod domxml;
pub mod manifest;
pub mod ovf;
pub mod vmx;
pub mod xml;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::formats::vmdk::descriptor::confined_relative_path;
use crate::image::DiskImage;
use crate::probe::{ProbeContext, ProbeOptions, cross_check};
use crate::source::ByteSource;
use manifest::{Algorithm, Hasher, ManifestEntry};
use ovf::OvfDescriptor;

/// gzip member header (RFC 1952 2.3.1).
pub const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
/// xz stream header magic (xz file format 2.1.1.1).
pub const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];
/// Most members an OVA may have; real ones have a handful.
const MAX_MEMBERS: usize = 4096;

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

/// Checks a tar member's name: relative, no `..`, not empty.
fn safe_member_name(archive: &Path, name: &Path) -> Result<String> {
    let text = name.to_string_lossy().into_owned();
    if name.is_absolute()
        || name
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::RootDir | Component::Prefix(_)))
    {
        return Err(Error::invalid(
            archive,
            format!("OVA member {text:?} has an unsafe path (absolute or climbing out with '..')"),
        ));
    }
    let clean = text.trim_start_matches("./").to_string();
    if clean.is_empty() {
        return Err(Error::invalid(archive, "OVA member with an empty name"));
    }
    Ok(clean)
}

fn check_entry_type(archive: &Path, name: &str, kind: tar::EntryType) -> Result<()> {
    if kind.is_file() || kind == tar::EntryType::Continuous {
        return Ok(());
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

fn find_descriptor<'a>(archive: &Path, names: impl Iterator<Item = &'a String>) -> Result<String> {
    let ovfs: Vec<&String> = names.filter(|n| n.to_ascii_lowercase().ends_with(".ovf")).collect();
    match ovfs.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::invalid(archive, "no OVF descriptor (*.ovf) in the package")),
        _ => Err(Error::invalid(archive, format!("{} OVF descriptors in one package", ovfs.len()))),
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

fn check_disk_file(origin: &Path, ovf: &OvfDescriptor, disk: &ApplianceDisk) -> Result<()> {
    let ovf_disk = ovf.disks.iter().find(|d| d.disk_id == disk.disk_id);
    if let Some(f) = ovf_disk.and_then(|d| ovf.file_of(d))
        && f.compression.is_some()
    {
        return Err(Error::unsupported(
            origin,
            format!("OVF file {:?} uses per-file compression", f.href),
        ));
    }
    if ovf_disk.is_some_and(|d| d.file_ref.is_some()) && disk.href.is_none() {
        return Err(Error::invalid(
            origin,
            format!("OVF disk {:?} refers to a file missing from References", disk.disk_id),
        ));
    }
    Ok(())
}

/// Probes every disk of `ovf` that has a file; `open` probes one by its href.
fn probe_disks(
    origin: &Path,
    ovf: &OvfDescriptor,
    opts: &ProbeOptions,
    mut open: impl FnMut(&mut ProbeContext, &str) -> Result<DiskImage>,
) -> Result<Vec<ApplianceDisk>> {
    let mut disks = blank_disks(ovf);
    let mut ctx = ProbeContext::new();
    for d in &mut disks {
        check_disk_file(origin, ovf, d)?;
        let Some(href) = &d.href else { continue };
        let mut img = open(&mut ctx, href)?;
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

/// Probes an uncompressed OVA: lists its members, parses the OVF, verifies the manifest, and
/// probes every disk in place.
pub(crate) fn probe_ova(src: &ByteSource, opts: &ProbeOptions) -> Result<Appliance> {
    let archive = src.path();
    let mut members: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut tar = tar::Archive::new(src.file());
    let entries =
        tar.entries_with_seek().map_err(|e| Error::io(archive, "reading the tar archive", e))?;
    for entry in entries {
        let entry =
            entry.map_err(|e| Error::invalid(archive, format!("corrupt tar archive: {e}")))?;
        let path =
            entry.path().map_err(|e| Error::invalid(archive, format!("bad member name: {e}")))?;
        let name = safe_member_name(archive, &path)?;
        check_entry_type(archive, &name, entry.header().entry_type())?;
        let (offset, size) = (entry.raw_file_position(), entry.size());
        if offset.checked_add(size).is_none_or(|end| end > src.len()) {
            return Err(Error::invalid(
                archive,
                format!("truncated OVA: member {name:?} runs past the end of the archive"),
            ));
        }
        if members.insert(name.clone(), (offset, size)).is_some() {
            return Err(Error::invalid(archive, format!("OVA has two members named {name:?}")));
        }
        if members.len() > MAX_MEMBERS {
            return Err(Error::invalid(archive, "OVA has too many members"));
        }
    }
    let descriptor = find_descriptor(archive, members.keys())?;
    let member = |name: &str| -> Result<Option<ByteSource>> {
        members.get(name).map(|&(o, s)| src.slice(o, s)).transpose()
    };
    let ovf_src =
        member(&descriptor)?.ok_or_else(|| Error::invalid(archive, "descriptor vanished"))?;
    let text = read_text(archive, &descriptor, ovf_src.reader(), xml::MAX_XML_BYTES as u64)?;
    let ovf = OvfDescriptor::parse(archive, &text)
        .map_err(|e| e.context(format!("member {descriptor:?}")))?;
    let mf_name = manifest_name(&descriptor);
    let mut manifest = None;
    if let Some(mf) = member(&mf_name)? {
        let mf_text = read_text(archive, &mf_name, mf.reader(), 1 << 20)?;
        let entries = manifest::parse(archive, &mf_text)?;
        manifest = Some(if opts.verify_manifest {
            verify_manifest(archive, &mf_name, &entries, |name, alg| {
                member(name)?
                    .map(|m| {
                        manifest::digest_reader(m.reader(), alg)
                            .map_err(|e| Error::io(archive, "reading", e))
                    })
                    .transpose()
            })?
        } else {
            ManifestCheck { file: mf_name.clone(), entries: entries.len(), verified: false }
        });
    }
    let disks = probe_disks(archive, &ovf, opts, |ctx, href| {
        let m = member(href)?.ok_or_else(|| {
            Error::invalid(
                archive,
                format!("disk file {href:?} named by the OVF is not in the archive"),
            )
        })?;
        ctx.probe_member(&m).map_err(|e| e.context(format!("member {href:?}")))
    })?;
    let a = Appliance::new(archive, Container::Ova, descriptor, ovf, manifest, disks);
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
    if container == Container::Ovf && mf_path.is_file() {
        let mf_src = ByteSource::open(&mf_path)?;
        let entries =
            manifest::parse(&mf_path, &read_text(&mf_path, &mf_name, mf_src.reader(), 1 << 20)?)?;
        manifest = Some(if opts.verify_manifest {
            verify_manifest(&mf_path, &mf_name, &entries, |name, alg| {
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
            ManifestCheck { file: mf_name, entries: entries.len(), verified: false }
        });
    }
    let disks = probe_disks(path, &ovf, opts, |ctx, href| {
        let disk = resolve(href)?;
        if !disk.exists() {
            return Err(Error::new(
                crate::error::ErrorKind::NotFound,
                format!("disk {href:?} named by the descriptor does not exist"),
            )
            .with_path(path));
        }
        ctx.probe_parent(&disk)
            .map_err(|e| e.context(format!("disk {href:?} of {}", path.display())))
    })?;
    let mut a = Appliance::new(path, container, descriptor, ovf, manifest, disks);
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
    if head.starts_with(GZIP_MAGIC) {
        Ok((Container::OvaGzip, Box::new(flate2::read::MultiGzDecoder::new(raw))))
    } else if head.starts_with(XZ_MAGIC) {
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
    let mut names = Vec::new();
    for entry in entries {
        let mut entry = entry
            .map_err(|e| Error::invalid(archive, format!("corrupt compressed archive: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| Error::invalid(archive, format!("bad member name: {e}")))?
            .into_owned();
        let name = safe_member_name(archive, &path)?;
        check_entry_type(archive, &name, entry.header().entry_type())?;
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
                known_manifest = Some(manifest::parse(archive, &text)?);
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
            Some(dir) => {
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
            None => None,
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
    let ovf = OvfDescriptor::parse(archive, &texts[&descriptor])
        .map_err(|e| e.context(format!("member {descriptor:?}")))?;
    let mf_name = manifest_name(&descriptor);
    let manifest = match (texts.get(&mf_name), &known_manifest) {
        (Some(_), Some(entries)) if opts.verify_manifest => {
            Some(verify_manifest(archive, &mf_name, entries, |name, alg| {
                if !names.iter().any(|n| n == name) {
                    return Ok(None);
                }
                digests.get(&(name.to_string(), alg)).cloned().map(Some).ok_or_else(|| {
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
    for href in blank_disks(&ovf).iter().filter_map(|d| d.href.as_ref()) {
        if !names.iter().any(|n| n == href) {
            return Err(Error::invalid(
                archive,
                format!("disk file {href:?} named by the OVF is not in the archive"),
            ));
        }
    }
    let disks = match extract_to {
        Some(dir) => probe_disks(archive, &ovf, opts, |ctx, href| {
            ctx.probe_parent(&dir.join(href)).map_err(|e| e.context(format!("member {href:?}")))
        })?,
        None => {
            let disks = blank_disks(&ovf);
            for d in &disks {
                check_disk_file(archive, &ovf, d)?;
            }
            disks
        }
    };
    let mut a = Appliance::new(archive, container, descriptor, ovf, manifest, disks);
    if extract_to.is_none() {
        a.warnings.push(
            "compressed OVA: disk images are probed only when extracted for conversion".into(),
        );
    }
    Ok(a)
}

/// Probes a gzip- or xz-compressed OVA without writing anything (disks are listed from the
/// OVF, not probed).
pub(crate) fn probe_compressed_ova(src: &ByteSource, opts: &ProbeOptions) -> Result<Appliance> {
    scan_compressed(src, opts, None)
}

/// Decompresses a gzip- or xz-compressed OVA into `dir` (which must exist and be empty),
/// verifying the manifest on the way, and probes the extracted disks.
pub fn extract_compressed_ova(path: &Path, dir: &Path, opts: &ProbeOptions) -> Result<Appliance> {
    let src = ByteSource::open(path)?;
    scan_compressed(&src, opts, Some(dir))
}
