//! Running a planned conversion: the guest inspected, fixed and trimmed on throw-away
//! overlays of the sources, every disk copied from its overlay through `qemu-img` (so the copy
//! skips what the trim discarded), `qemu-img check` and the boot test, then everything but the
//! boot disk renamed into place and the domain written. VHD differencing chains, which qemu
//! cannot read, are merged by the copy and the guest fixed on the outputs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};

use super::guest::{FixOutcome, FixRequest, FstabBeforeAfter, fix_outputs};
use super::plan::{ExpectedChecksum, PlannedDisk, plan_domain};
use super::staging::{Staging, sync_file};
use super::{ConvertOptions, ConvertOutput, DomainReport};
use crate::bootchain::Verdict;
use crate::error::{Error, ErrorKind, Result};
use crate::fix::Change;
use crate::formats::vhd;
use crate::guest::GuestDisk;
use crate::guest::inspect::Inspection;
use crate::image::{DiskImage, ImageFormat};
use crate::io::in_threads;
use crate::io::sha256::{HashOptions, PACE_WINDOW, hash_file, process_read_bytes};
use crate::kubevirt;
use crate::libvirt::{Firmware, VmDescription, write_domain};
use crate::progress::{CancelToken, Progress, Stage};
use crate::qemu_img::{self, BlockSpec, CheckReport};
use crate::validate::{BootTestResult, boot_test};

/// Converts a chain that contains VHD differencing disks: the first layer qemu can read is
/// converted to raw at `merged`, each differencing layer's sectors are written over it from the
/// bottom up, and the result is converted to the target at `dst` (or renamed, for raw).
fn convert_vhd_chain(
    image: &DiskImage,
    merged: &Path,
    dst: &Path,
    opts: &qemu_img::ConvertOptions,
    progress: &mut dyn FnMut(f64),
    cancel: &CancelToken,
) -> Result<()> {
    let layers: Vec<&DiskImage> =
        image.chain().take_while(|d| vhd::is_differencing(&d.details)).collect();
    let base = image
        .chain()
        .nth(layers.len())
        .ok_or_else(|| Error::new(ErrorKind::Internal, "differencing chain without a base"))?;
    let raw =
        qemu_img::ConvertOptions { format: ImageFormat::Raw, compress_level: None, ..opts.clone() };
    qemu_img::convert(&base.block_spec()?, merged, &raw, &mut |f| progress(f * 0.5), cancel)?;
    let out = std::fs::OpenOptions::new()
        .write(true)
        .open(merged)
        .map_err(|e| Error::io(merged, "cannot open merged image", e))?;
    out.set_len(image.virtual_size)
        .map_err(|e| Error::io(merged, "cannot size merged image", e))?;
    for layer in layers.iter().rev() {
        vhd::apply_differencing(&layer.path, &layer.details, layer.virtual_size, &out)?;
    }
    drop(out);
    if opts.format == ImageFormat::Raw {
        std::fs::rename(merged, dst).map_err(|e| Error::io(dst, "cannot rename", e))?;
        progress(1.0);
        return Ok(());
    }
    let result = qemu_img::convert(
        &BlockSpec::file(merged, ImageFormat::Raw),
        dst,
        opts,
        &mut |f| progress(0.5 + f * 0.5),
        cancel,
    );
    let _ = std::fs::remove_file(merged);
    result
}

/// What [`execute`] did.
#[derive(Debug)]
pub(crate) struct Executed {
    pub outputs: Vec<ConvertOutput>,
    pub guest: Option<Inspection>,
    pub changes: Vec<Change>,
    pub warnings: Vec<String>,
    pub domain: Option<DomainReport>,
    pub checks: Vec<CheckReport>,
    pub boot_test: Option<BootTestResult>,
    pub fstab: Option<FstabBeforeAfter>,
    pub verdict: Option<Verdict>,
}

/// A planned conversion: what [`execute`] runs.
pub(crate) struct Execution<'a> {
    /// The disks, boot disk first.
    pub disks: &'a [PlannedDisk],
    /// Where the outputs go.
    pub out_dir: &'a Path,
    /// How.
    pub opts: &'a ConvertOptions,
    /// Disks converted at once.
    pub parallel: usize,
    /// Stops the work.
    pub cancel: &'a CancelToken,
}

/// Converts one disk to its temporary output.
fn convert_one(
    j: &PlannedDisk,
    overlay: Option<&Path>,
    qopts: &qemu_img::ConvertOptions,
    report: &mut dyn FnMut(f64),
    cancel: &CancelToken,
) -> Result<()> {
    // The source as the guest fixes left it (its overlay), else the source itself.
    let spec = || match overlay {
        Some(o) => Ok(BlockSpec::file(o, ImageFormat::Qcow2)),
        None => j.image.block_spec(),
    };
    let result = if is_vhd_chain(j) {
        let merged = j.temp_path.with_extension("merge-part");
        convert_vhd_chain(&j.image, &merged, &j.temp_path, qopts, report, cancel)
    } else if let Some(sum) = &j.checksum {
        convert_hashed(j, &spec()?, sum, qopts, report, cancel)
    } else {
        qemu_img::convert(&spec()?, &j.temp_path, qopts, report, cancel)
    };
    result.map_err(|e| if e.path().is_none() { e.with_path(&j.image.path) } else { e })
}

/// A temporary output flushed to disk: its size, and its SHA-256 when asked for.
#[derive(Debug)]
struct Sealed {
    bytes: u64,
    sha256: Option<String>,
}

/// Flushes a finished output and (with `hash`) hashes it at the same time: the hash reads the
/// pages just written from the page cache while the kernel writes them back.
fn seal(path: &Path, hash: bool, cancel: &CancelToken) -> Result<Sealed> {
    std::thread::scope(|s| {
        let hasher = hash.then(|| {
            s.spawn(|| {
                let o = HashOptions { pace: None, window: 0, report: &mut |_| {}, cancel };
                hash_file(path, o)
            })
        });
        let bytes = sync_file(path);
        let sha256 = match hasher {
            Some(h) => Some(h.join().unwrap_or_else(|_| {
                Err(Error::new(ErrorKind::Internal, "the hashing thread panicked"))
            })?),
            None => None,
        };
        Ok(Sealed { bytes: bytes?, sha256 })
    })
}

/// Converts one disk while hashing its source in the same pass: the hash is paced to stay
/// within [`PACE_WINDOW`] of what qemu-img has read, so one of them reads each block from
/// storage and the other finds it in the page cache. A mismatch removes the output.
fn convert_hashed(
    j: &PlannedDisk,
    spec: &BlockSpec,
    sum: &ExpectedChecksum,
    qopts: &qemu_img::ConvertOptions,
    report: &mut dyn FnMut(f64),
    cancel: &CancelToken,
) -> Result<()> {
    let pid = AtomicU32::new(0);
    let finished = AtomicBool::new(false);
    // qemu-img's position: what it has read, or (for holes it skips without reading) the share
    // of the image it reports done, whichever is further.
    let fraction = AtomicU64::new(0f64.to_bits());
    let file_len = std::fs::metadata(&sum.file).map(|m| m.len()).unwrap_or(0);
    let pace = || {
        if finished.load(Ordering::SeqCst) {
            return None;
        }
        let reported = (f64::from_bits(fraction.load(Ordering::SeqCst)) * file_len as f64) as u64;
        match pid.load(Ordering::SeqCst) {
            0 => Some(0),
            p => process_read_bytes(p).map(|read| read.max(reported)),
        }
    };
    // The hash stops with the job, and as soon as the conversion has failed.
    let hash_cancel = cancel.child();
    let (converted, hashed) = std::thread::scope(|s| {
        let hasher = s.spawn(|| {
            let o = HashOptions {
                pace: Some(&pace),
                window: PACE_WINDOW,
                report: &mut |_| {},
                cancel: &hash_cancel,
            };
            hash_file(&sum.file, o)
        });
        let converted = qemu_img::convert_observed(
            spec,
            &j.temp_path,
            qopts,
            &mut |f| {
                fraction.store(f.to_bits(), Ordering::SeqCst);
                report(f);
            },
            cancel,
            &mut |p| pid.store(p, Ordering::SeqCst),
        );
        finished.store(true, Ordering::SeqCst);
        if converted.is_err() {
            hash_cancel.cancel();
        }
        let hashed = hasher.join().unwrap_or_else(|_| {
            Err(Error::new(ErrorKind::Internal, "the hashing thread panicked"))
        });
        (converted, hashed)
    });
    let checked = hashed.and_then(|got| {
        if got == sum.sha256 {
            tracing::info!("{}: sha256 verified in the conversion's read", sum.what);
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Checksum,
                format!("{}: sha256 is {got}, the manifest says {}", sum.what, sum.sha256),
            )
            .with_path(&sum.manifest))
        }
    });
    converted?;
    if checked.is_err() {
        let _ = std::fs::remove_file(&j.temp_path);
    }
    checked
}

/// Converts every disk to its temporary output, up to `parallel` at once; progress is
/// reported from this thread. Disk `i` is read from `overlays[i]` when there is one (the
/// guest fixed before the copy), else from its source. With `seal_hash` (the outputs are final as converted: no fixes,
/// no boot test), each output is also [sealed](seal) by its worker as soon as it is written,
/// while the other disks are still converting. The first failure (in disk order) is returned.
fn convert_all(
    jobs: &[PlannedDisk],
    overlays: &[PathBuf],
    qopts: &qemu_img::ConvertOptions,
    parallel: usize,
    seal_hash: Option<bool>,
    progress: &mut dyn FnMut(&Progress),
    cancel: &CancelToken,
) -> Result<Vec<Option<Sealed>>> {
    let total: u64 = jobs.iter().map(|j| j.image.virtual_size).sum();
    let next = AtomicUsize::new(0);
    type Done = Option<Result<Option<Sealed>>>;
    let results: Mutex<Vec<Done>> = Mutex::new(jobs.iter().map(|_| None).collect());
    let (tx, rx) = mpsc::channel::<(usize, f64)>();
    let file_name = |j: &PlannedDisk| {
        j.final_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    };
    // The stage begins before the first byte is copied, so the disks' spans are inside it.
    let item = jobs.first().map(file_name).unwrap_or_default();
    progress(&Progress { stage: Stage::Convert, item, done: 0, total });
    let stage_span = tracing::Span::current();
    std::thread::scope(|scope| {
        for _ in 0..parallel.clamp(1, jobs.len().max(1)) {
            let tx = tx.clone();
            let (next, results, stage_span) = (&next, &results, &stage_span);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(j) = jobs.get(i) else { break };
                    let _disk =
                        tracing::info_span!(parent: stage_span, "disk", disk = %file_name(j))
                            .entered();
                    let r = if cancel.is_cancelled() {
                        Err(Error::new(ErrorKind::Cancelled, "conversion cancelled"))
                    } else {
                        convert_one(
                            j,
                            overlays.get(i).map(PathBuf::as_path),
                            qopts,
                            &mut |f| {
                                let _ = tx.send((i, f));
                            },
                            cancel,
                        )
                        .and_then(|()| seal_hash.map(|h| seal(&j.temp_path, h, cancel)).transpose())
                    };
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(r);
                    }
                }
            });
        }
        drop(tx);
        let mut fractions = vec![0.0f64; jobs.len()];
        for (i, f) in rx {
            fractions[i] = f;
            let done: f64 =
                jobs.iter().zip(&fractions).map(|(j, f)| f * j.image.virtual_size as f64).sum();
            let item = file_name(&jobs[i]);
            progress(&Progress { stage: Stage::Convert, item, done: done as u64, total });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| Error::new(ErrorKind::Internal, "a conversion thread panicked"))?;
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| Err(Error::new(ErrorKind::Internal, "a disk was not converted")))
        })
        .collect()
}

/// True when the disk's chain has VHD differencing layers (merged by our own code).
fn is_vhd_chain(j: &PlannedDisk) -> bool {
    j.image.chain().any(|d| vhd::is_differencing(&d.details))
}

/// Inspects and fixes the guest on `disks` (the sources' overlays or the outputs).
fn fix_guest(
    disks: &[GuestDisk],
    desc: &VmDescription,
    x: &Execution<'_>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<FixOutcome> {
    let Some(fix) = &x.opts.fix else { return Ok(FixOutcome::default()) };
    if x.cancel.is_cancelled() {
        return Err(Error::new(ErrorKind::Cancelled, "conversion cancelled"));
    }
    let source_macs: Vec<String> = desc.nics.iter().filter_map(|n| n.mac.clone()).collect();
    let req = FixRequest {
        disks,
        scratch: x.out_dir,
        fix,
        guest: &x.opts.guest,
        print_fstab: x.opts.print_fstab,
        disk_bus: x.opts.domain.as_ref().map(|d| d.disk_bus).unwrap_or_default(),
        source_macs: &source_macs,
    };
    let fixed = fix_outputs(&req, progress)?;
    tracing::info!("guest fixed ({} changes)", fixed.changes.len());
    Ok(fixed)
}

/// Converts, fixes, validates and renames the planned disks (all but the boot disk, which
/// `staging` holds for the caller to publish last), then writes the domain. Used by
/// [`convert`](super::convert) and the manifest pipeline.
pub(crate) fn execute(
    x: &Execution<'_>,
    mut desc: VmDescription,
    progress: &mut dyn FnMut(&Progress),
    staging: &mut Staging,
) -> Result<Executed> {
    let (jobs, out_dir, opts, cancel) = (x.disks, x.out_dir, x.opts, x.cancel);
    let cancelled = || Error::new(ErrorKind::Cancelled, "conversion cancelled");
    let qopts = qemu_img::ConvertOptions {
        format: opts.format.image_format(),
        compress_level: opts.compress,
        coroutines: opts.coroutines,
        ..qemu_img::ConvertOptions::default()
    };
    for j in jobs {
        staging.track(j.temp_path.clone());
        staging.track(j.temp_path.with_extension("merge-part"));
    }
    if opts.kubevirt.is_some() && opts.domain.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the KubeVirt target is built from the domain (not --no-domain)",
        ));
    }
    if cancel.is_cancelled() {
        return Err(cancelled());
    }
    // The guest is inspected, fixed and trimmed before the copy, on a throw-away qcow2 overlay
    // of each source (the source itself is only read): the copy then takes the fixes with it
    // and skips the blocks the trim discarded. A VHD differencing chain, which qemu cannot
    // read, is merged by the copy and fixed after it.
    let before_copy = opts.fix.is_some() && !jobs.iter().any(is_vhd_chain);
    let mut fixed = FixOutcome::default();
    let mut overlays = Vec::new();
    if before_copy {
        for j in jobs {
            let overlay = j.temp_path.with_extension("overlay");
            staging.track(overlay.clone());
            qemu_img::create_overlay(&overlay, &j.image.block_spec()?, j.image.virtual_size)?;
            overlays.push(overlay);
        }
        let disks: Vec<GuestDisk> = overlays
            .iter()
            .map(|o| GuestDisk { path: o.clone(), format: ImageFormat::Qcow2 })
            .collect();
        tracing::info!("inspecting and fixing the guest on overlays of the sources");
        fixed = fix_guest(&disks, &desc, x, progress)?;
    }
    // Outputs nothing writes to after the conversion are flushed (and hashed) right away.
    let final_as_converted = opts.boot_test.is_none() && (opts.fix.is_none() || before_copy);
    let seal_hash = final_as_converted.then_some(opts.hash_outputs);
    let sealed = convert_all(jobs, &overlays, &qopts, x.parallel, seal_hash, progress, cancel);
    for o in &overlays {
        let _ = std::fs::remove_file(o);
    }
    let sealed = sealed?;
    if !before_copy && opts.fix.is_some() {
        let disks: Vec<GuestDisk> = jobs
            .iter()
            .map(|j| GuestDisk { path: j.temp_path.clone(), format: opts.format.image_format() })
            .collect();
        tracing::info!("converted; inspecting and fixing the guest");
        fixed = fix_guest(&disks, &desc, x, progress)?;
    }
    if opts.fix.is_some() && desc.nics.is_empty() && !desc.nics_declared {
        // The source said nothing about NICs: the domain's keep the MACs the guest's own
        // configuration is written for.
        desc.nics = std::mem::take(&mut fixed.guest_macs)
            .into_iter()
            .map(|m| crate::libvirt::SourceNic { mac: Some(m), network: None })
            .collect();
    }
    let checks = check_outputs(jobs, opts, progress)?;
    let mut warnings = std::mem::take(&mut fixed.warnings);
    let domain = match &opts.domain {
        Some(dopts) => {
            // A Windows guest gets only the devices it now has drivers for.
            let mut dopts = dopts.clone();
            if let Some((bus, nic)) = fixed.devices {
                dopts.disk_bus = bus;
                dopts.nic_model = nic;
            }
            warnings.extend(crate::libvirt::unmapped_networks(&desc, &dopts));
            Some(plan_domain(desc, out_dir, jobs, fixed.guest.as_ref(), opts, &dopts)?)
        }
        None => None,
    };
    let mut boot = None;
    if let (Some(bt), Some((d, _))) = (&opts.boot_test, &domain) {
        // Boot what is about to be renamed: the same domain on the temporary files.
        let mut on_temps = d.clone();
        for (disk, j) in on_temps.disks.iter_mut().zip(jobs) {
            disk.path = j.temp_path.clone();
        }
        let item = format!("boot test {}", d.name);
        progress(&Progress { stage: Stage::Validate, item: item.clone(), done: 0, total: 1 });
        let r = boot_test(&on_temps, bt, out_dir, cancel)?;
        progress(&Progress { stage: Stage::Validate, item, done: 1, total: 1 });
        if !r.passed {
            return Err(r.into_error(&jobs[0].final_path, &bt.marker, bt.timeout));
        }
        boot = Some(r);
    } else if opts.boot_test.is_some() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "a boot test needs the domain (not --no-domain)",
        ));
    }
    // The others now, several at once.
    let mut outputs = Vec::new();
    let todo: Vec<(usize, &PlannedDisk)> =
        jobs.iter().enumerate().filter(|(i, _)| sealed[*i].is_none()).collect();
    let mut late =
        in_threads(&todo, x.parallel, |(_, j)| seal(&j.temp_path, opts.hash_outputs, cancel))
            .into_iter();
    for (j, done) in jobs.iter().zip(sealed) {
        let Sealed { bytes, sha256 } = match done {
            Some(s) => s,
            None => late.next().unwrap_or_else(|| {
                Err(Error::new(ErrorKind::Internal, "an output was not flushed"))
            })?,
        };
        outputs.push(ConvertOutput {
            disk_id: j.disk_id.clone(),
            source: j.image.path.clone(),
            path: j.final_path.clone(),
            format: opts.format,
            virtual_size: j.image.virtual_size,
            bytes,
            sha256,
        });
    }
    // Every other file first; the boot disk, which HyperSDK takes as "done", last of all
    // (`Staging::finish`).
    for j in &jobs[1..] {
        staging.publish(&j.temp_path, &j.final_path)?;
    }
    staging.hold_last(jobs[0].temp_path.clone(), jobs[0].final_path.clone());
    let domain = match domain {
        Some((d, xml)) => {
            write_domain(&d, &xml)?;
            let nvram = match &d.firmware {
                Firmware::Uefi(u) => Some(u.nvram.clone()),
                Firmware::Bios => None,
            };
            let kubevirt = match &opts.kubevirt {
                Some(k) => Some(write_kubevirt(&d, &xml, jobs, k, &mut warnings)?),
                None => None,
            };
            Some(DomainReport { xml, nvram, kubevirt, domain: d })
        }
        None => None,
    };
    Ok(Executed {
        outputs,
        guest: fixed.guest,
        changes: fixed.changes,
        warnings,
        domain,
        checks,
        boot_test: boot,
        fstab: fixed.fstab,
        verdict: fixed.verdict,
    })
}

/// Writes `NAME.kubevirt.yaml` beside the domain's `xml`; what KubeVirt cannot express goes
/// to `warnings`.
fn write_kubevirt(
    d: &crate::libvirt::Domain,
    xml: &Path,
    jobs: &[PlannedDisk],
    opts: &kubevirt::KubeVirtOptions,
    warnings: &mut Vec<String>,
) -> Result<PathBuf> {
    let disks: Vec<kubevirt::KubeDisk> = jobs
        .iter()
        .map(|j| kubevirt::KubeDisk {
            file: j.final_path.file_name().unwrap_or_default().to_string_lossy().into_owned(),
            virtual_size: j.image.virtual_size,
        })
        .collect();
    let guest = kubevirt::build(d, &disks, opts);
    let path = kubevirt::kubevirt_path(xml.parent().unwrap_or(Path::new(".")), &d.name);
    kubevirt::write(&guest, &path)?;
    warnings.extend(guest.warnings);
    Ok(path)
}

/// `qemu-img check` of every temporary output (when `opts.check`); corruption fails the job.
fn check_outputs(
    jobs: &[PlannedDisk],
    opts: &ConvertOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Vec<CheckReport>> {
    let mut checks = Vec::new();
    if !opts.check {
        return Ok(checks);
    }
    let n = jobs.len() as u64;
    let item = || "qemu-img check".to_string();
    progress(&Progress { stage: Stage::Validate, item: item(), done: 0, total: n });
    for j in jobs {
        let c = qemu_img::check(&j.temp_path, opts.format.image_format())
            .map_err(|e| e.with_path(&j.final_path))?;
        if c.corruptions > 0 || c.check_errors > 0 {
            return Err(Error::new(
                ErrorKind::ToolFailed,
                format!(
                    "qemu-img check found {} corruption(s) and {} error(s) in the output",
                    c.corruptions, c.check_errors
                ),
            )
            .with_path(&j.final_path));
        }
        checks.push(c);
    }
    progress(&Progress { stage: Stage::Validate, item: item(), done: n, total: n });
    Ok(checks)
}
