//! The one naming rule for a conversion's outputs, used by [`convert`](super::convert), the
//! manifest pipeline and every dry run: the boot disk is `{base}.{ext}`, every other disk
//! `{base}-{disk id}.{ext}`, the domain `{base}.xml` and a UEFI guest's variable store
//! `{base}_VARS.fd`, all in the output directory, each written first under a hidden
//! temporary name.

use std::path::{Path, PathBuf};

use super::ConvertOptions;
use crate::error::{Error, Result};
use crate::guest::inspect::Inspection;
use crate::image::DiskImage;
use crate::io::safe_file_stem;
use crate::libvirt::{
    Domain, DomainDisk, DomainOptions, VmDescription, build_domain, domain_paths,
};
use crate::probe::Probed;

/// The file name of the `n`th disk in boot order (0 is the boot disk).
pub(crate) fn disk_file_name(base: &str, n: usize, disk_id: &str, ext: &str) -> String {
    if n == 0 {
        format!("{base}.{ext}")
    } else {
        format!("{base}-{}.{ext}", safe_file_stem(disk_id))
    }
}

/// Every file a conversion named `base` writes in `out_dir`, in the order they appear: the
/// disks (boot disk first, `disk_ids` in boot order), then the domain and, for a UEFI guest,
/// its variable store.
pub(crate) fn output_files(
    out_dir: &Path,
    base: &str,
    disk_ids: &[&str],
    ext: &str,
    domain: bool,
    uefi: bool,
) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = disk_ids
        .iter()
        .enumerate()
        .map(|(n, id)| out_dir.join(disk_file_name(base, n, id, ext)))
        .collect();
    if domain {
        let (xml, nvram) = domain_paths(out_dir, base);
        files.push(xml);
        if uefi {
            files.push(nvram);
        }
    }
    files
}

/// One disk to convert: its source image and its final and temporary output paths.
#[derive(Debug)]
pub(crate) struct PlannedDisk {
    pub disk_id: Option<String>,
    pub image: DiskImage,
    pub final_path: PathBuf,
    pub temp_path: PathBuf,
    /// A checksum to verify in the conversion's own read of the source.
    pub checksum: Option<ExpectedChecksum>,
}

/// What a source file must hash to, and how to name it when it does not.
#[derive(Debug, Clone)]
pub(crate) struct ExpectedChecksum {
    /// The file hashed (the manifest's `local_path`).
    pub file: PathBuf,
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// `disks[0] (disk-0, /exports/web01/disk-0.vmdk)`.
    pub what: String,
    /// The manifest, named in the error.
    pub manifest: PathBuf,
}

impl PlannedDisk {
    /// `out_dir/file`, written first as `out_dir/.file.hyper2kvm-part`.
    pub fn new(disk_id: Option<String>, image: DiskImage, out_dir: &Path, file: String) -> Self {
        PlannedDisk {
            disk_id,
            image,
            temp_path: out_dir.join(format!(".{file}.hyper2kvm-part")),
            final_path: out_dir.join(file),
            checksum: None,
        }
    }
}

/// The disks of a probed input (an appliance's in its order, the first being the boot disk),
/// named after `opts.name`, else the VM's name, else the input's file stem. Refuses outputs
/// that exist (unless `opts.overwrite`) or that would overwrite an input file.
pub(crate) fn plan_disks(
    input: &Probed,
    input_path: &Path,
    out_dir: &Path,
    opts: &ConvertOptions,
) -> Result<Vec<PlannedDisk>> {
    let ext = opts.format.extension();
    let stem = |default: &str| safe_file_stem(opts.name.as_deref().unwrap_or(default));
    let disks = match input {
        Probed::Disk(d) => {
            let default = input_path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let file = disk_file_name(&stem(&default), 0, "", ext);
            vec![PlannedDisk::new(None, d.clone(), out_dir, file)]
        }
        Probed::Appliance(a) => {
            let base = stem(&a.ovf.name);
            let mut disks = Vec::new();
            for (i, d) in a.disks.iter().enumerate() {
                let Some(image) = &d.image else {
                    return Err(Error::unsupported(
                        &a.path,
                        format!("disk {:?} has no backing file (blank disk)", d.disk_id),
                    ));
                };
                let file = disk_file_name(&base, i, &d.disk_id, ext);
                disks.push(PlannedDisk::new(Some(d.disk_id.clone()), image.clone(), out_dir, file));
            }
            if disks.is_empty() {
                return Err(Error::invalid(&a.path, "the OVF describes no disks"));
            }
            disks
        }
    };
    if opts.domain.is_some()
        && let Some(stem) = disks.first().and_then(|j| j.final_path.file_stem())
    {
        let (xml, _) = domain_paths(out_dir, &stem.to_string_lossy());
        if xml.exists() && !opts.overwrite {
            return Err(Error::invalid(
                &xml,
                "output already exists (use --overwrite to replace it)",
            ));
        }
    }
    for j in &disks {
        let clash = j.image.all_files().iter().any(|f| same_file(f, &j.final_path))
            || same_file(input_path, &j.final_path);
        if clash {
            return Err(Error::invalid(&j.final_path, "output would overwrite the input"));
        }
        if j.final_path.exists() && !opts.overwrite {
            return Err(Error::invalid(
                &j.final_path,
                "output already exists (use --overwrite to replace it)",
            ));
        }
    }
    Ok(disks)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The domain for the outputs, and where its XML goes.
pub(crate) fn plan_domain(
    mut desc: VmDescription,
    out_dir: &Path,
    disks: &[PlannedDisk],
    guest: Option<&Inspection>,
    opts: &ConvertOptions,
    dopts: &DomainOptions,
) -> Result<(Domain, PathBuf)> {
    let out_abs = std::fs::canonicalize(out_dir).map_err(|e| Error::io(out_dir, "resolving", e))?;
    let name = disks[0]
        .final_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "guest".into());
    desc.name = name.clone();
    let domain_disks: Vec<DomainDisk> = disks
        .iter()
        .map(|j| DomainDisk {
            path: out_abs.join(j.final_path.file_name().unwrap_or_default()),
            format: opts.format.extension().to_string(),
        })
        .collect();
    let (xml, nvram) = domain_paths(&out_abs, &name);
    let domain = build_domain(&desc, guest, &domain_disks, nvram, dopts)?;
    Ok((domain, xml))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_naming_rule() {
        assert_eq!(disk_file_name("web", 0, "disk-0", "qcow2"), "web.qcow2");
        assert_eq!(disk_file_name("web", 1, "data/../x", "raw"), "web-data_.._x.raw");
        let files = output_files(Path::new("/o"), "web", &["a", "b"], "qcow2", true, true);
        let names: Vec<_> = files.iter().map(|f| f.to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["/o/web.qcow2", "/o/web-b.qcow2", "/o/web.xml", "/o/web_VARS.fd"]);
        assert_eq!(output_files(Path::new("/o"), "w", &["a"], "raw", false, true).len(), 1);
    }
}
