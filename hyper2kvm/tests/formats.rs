//! Every supported format and sub-format, made by the real qemu-img or built by hand from its
//! specification, is probed (format, sub-format, virtual size, files, extents, chain) and
//! converted to qcow2 and to raw; the outputs must show the guest the same bytes as an
//! independent reference (`qemu-img compare` run directly, not through our wrapper).

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use hyper2kvm::formats::vmdk::descriptor::ExtentKind;
use hyper2kvm::image::FormatDetails;
use hyper2kvm::{
    CancelToken, ConvertOptions, DiskImage, ImageFormat, ProbeOptions, Probed, TargetFormat,
};
use support::*;

const SIZE: u64 = 64 << 20;

fn probe_disk(path: &Path) -> DiskImage {
    match hyper2kvm::probe(path, &ProbeOptions::default())
        .unwrap_or_else(|e| panic!("probe {}: {e}", path.display()))
    {
        Probed::Disk(d) => d,
        other => panic!("expected a disk, got {other:?}"),
    }
}

/// Reference content: a raw file, or an image qemu opens by name with an explicit format.
enum Reference<'a> {
    Raw(&'a Path),
    Image(&'a Path, &'a str),
}

fn same_content(reference: &Reference<'_>, out: &Path, out_fmt: &str) {
    let (r, rf) = match reference {
        Reference::Raw(p) => (*p, "raw"),
        Reference::Image(p, f) => (*p, *f),
    };
    let o = Command::new("qemu-img")
        .args(["compare", "-f", rf, "-F", out_fmt])
        .arg(r)
        .arg(out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{} differs from {}: {}{}",
        out.display(),
        r.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Converts `input` to qcow2 and to raw and checks both against `reference`; returns the
/// output paths (qcow2 first).
fn converts_faithfully(dir: &Path, input: &Path, reference: Reference<'_>) -> Vec<PathBuf> {
    let before = sha256_hex(input);
    let mut outs = Vec::new();
    for (format, fmt) in [(TargetFormat::Qcow2, "qcow2"), (TargetFormat::Raw, "raw")] {
        let out_dir = dir.join(format!("out-{fmt}"));
        let opts = ConvertOptions { format, fix: None, ..ConvertOptions::default() };
        let report = hyper2kvm::convert(input, &out_dir, &opts, &mut |_| {}, &CancelToken::new())
            .unwrap_or_else(|e| panic!("convert {} to {fmt}: {e}", input.display()));
        assert_eq!(report.outputs.len(), 1);
        let out = &report.outputs[0].path;
        assert!(out.starts_with(&out_dir));
        same_content(&reference, out, fmt);
        let info = Command::new("qemu-img")
            .args(["info", "--output=json", "-f", fmt])
            .arg(out)
            .output()
            .unwrap();
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(info["format"], fmt);
        outs.push(out.clone());
    }
    assert_eq!(sha256_hex(input), before, "the source was modified");
    outs
}

fn assert_probe(d: &DiskImage, format: ImageFormat, sub: &str, vsize: u64, files: usize) {
    assert_eq!(d.format, format, "{d:#?}");
    assert_eq!(d.subformat, sub, "{d:#?}");
    assert_eq!(d.virtual_size, vsize, "{d:#?}");
    assert_eq!(d.files.len(), files, "{d:#?}");
    let cc = d.cross_check.as_ref().expect("qemu-img cross-check ran");
    assert!(cc.agrees, "qemu-img disagrees: {d:#?}");
}

fn vmdk_extents(d: &DiskImage) -> Vec<(ExtentKind, u64)> {
    match &d.details {
        FormatDetails::Vmdk(v) => v.extents.iter().map(|e| (e.kind, e.size)).collect(),
        other => panic!("not vmdk: {other:?}"),
    }
}

fn from_raw(
    dir: &Path,
    fmt: &str,
    opts: Option<&str>,
    name: &str,
    size: u64,
) -> (PathBuf, PathBuf) {
    let raw = dir.join("ref.raw");
    raw_with_data(&raw, size);
    let img = dir.join(name);
    qemu_from_raw(&raw, &img, fmt, opts);
    (raw, img)
}

#[test]
fn vmdk_monolithic_sparse() {
    let t = scratch();
    let (raw, img) =
        from_raw(t.path(), "vmdk", Some("subformat=monolithicSparse"), "disk.vmdk", SIZE);
    let d = probe_disk(&img);
    assert_probe(&d, ImageFormat::Vmdk, "monolithicSparse", SIZE, 1);
    assert_eq!(vmdk_extents(&d), vec![(ExtentKind::Sparse, SIZE)]);
    converts_faithfully(t.path(), &img, Reference::Raw(&raw));
}

#[test]
fn vmdk_monolithic_flat() {
    let t = scratch();
    let (raw, img) =
        from_raw(t.path(), "vmdk", Some("subformat=monolithicFlat"), "disk.vmdk", SIZE);
    let d = probe_disk(&img);
    assert_probe(&d, ImageFormat::Vmdk, "monolithicFlat", SIZE, 2);
    assert_eq!(d.files[1], t.path().join("disk-flat.vmdk"));
    assert_eq!(vmdk_extents(&d), vec![(ExtentKind::Flat, SIZE)]);
    converts_faithfully(t.path(), &img, Reference::Raw(&raw));
}

#[test]
fn vmdk_two_gb_max_extent_sparse_and_flat() {
    let size = 3u64 << 30;
    for (sub, kind) in
        [("twoGbMaxExtentSparse", ExtentKind::Sparse), ("twoGbMaxExtentFlat", ExtentKind::Flat)]
    {
        let t = scratch();
        let (raw, img) =
            from_raw(t.path(), "vmdk", Some(&format!("subformat={sub}")), "big.vmdk", size);
        let d = probe_disk(&img);
        assert_probe(&d, ImageFormat::Vmdk, sub, size, 3);
        assert_eq!(vmdk_extents(&d), vec![(kind, 2 << 30), (kind, 1 << 30)]);
        converts_faithfully(t.path(), &img, Reference::Raw(&raw));
    }
}

#[test]
fn vmdk_stream_optimized_by_qemu() {
    let t = scratch();
    let (raw, img) =
        from_raw(t.path(), "vmdk", Some("subformat=streamOptimized"), "disk.vmdk", SIZE);
    let d = probe_disk(&img);
    assert_probe(&d, ImageFormat::Vmdk, "streamOptimized", SIZE, 1);
    converts_faithfully(t.path(), &img, Reference::Raw(&raw));
}

#[test]
fn vmdk_stream_optimized_as_vmware_writes_it() {
    let t = scratch();
    let (img, raw) = (t.path().join("vm-disk1.vmdk"), t.path().join("ref.raw"));
    vmware_stream_optimized(&img, &raw, SIZE);
    let d = probe_disk(&img);
    assert_probe(&d, ImageFormat::Vmdk, "streamOptimized", SIZE, 1);
    let FormatDetails::Vmdk(v) = &d.details else { panic!() };
    assert!(v.compressed);
    assert_eq!(v.adapter_type.as_deref(), Some("lsilogic"));
    // 1 MiB of noise (16 grains) plus 200 000 bytes of pattern across 4 grains.
    assert_eq!(v.extents[0].allocated_grains, Some(16 + 4));
    converts_faithfully(t.path(), &img, Reference::Raw(&raw));
}

#[test]
fn vmdk_vmfs_and_vmfs_thin_descriptors() {
    for create_type in ["vmfs", "vmfsThin"] {
        let t = scratch();
        let flat = t.path().join("esx-flat.vmdk");
        raw_with_data(&flat, SIZE);
        let desc = t.path().join("esx.vmdk");
        flat_descriptor(&desc, create_type, "VMFS", "esx-flat.vmdk", SIZE / 512);
        let d = probe_disk(&desc);
        assert_eq!(d.subformat, create_type);
        assert_eq!(d.virtual_size, SIZE);
        assert_eq!(d.files, vec![desc.clone(), flat.clone()]);
        assert_eq!(vmdk_extents(&d), vec![(ExtentKind::Vmfs, SIZE)]);
        // qemu reads vmfsThin only through our raw-extent path; the cross-check must agree.
        assert!(d.cross_check.as_ref().unwrap().agrees, "{d:#?}");
        converts_faithfully(t.path(), &desc, Reference::Raw(&flat));
    }
}

#[test]
fn vmdk_snapshot_delta_chain_is_flattened() {
    let t = scratch();
    let (base, d1, d2) = (
        t.path().join("base.vmdk"),
        t.path().join("snap-000001.vmdk"),
        t.path().join("snap-000002.vmdk"),
    );
    qemu_create(&base, "vmdk", None, "64M");
    qemu_write(&base, "vmdk", 0x11, 0, 3 << 20);
    sh(Command::new("qemu-img")
        .args(["create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk"])
        .arg(&d1)
        .current_dir(t.path()));
    qemu_write(&d1, "vmdk", 0x22, 1 << 20, 1 << 20);
    sh(Command::new("qemu-img")
        .args(["create", "-q", "-f", "vmdk", "-b", "snap-000001.vmdk", "-F", "vmdk"])
        .arg(&d2)
        .current_dir(t.path()));
    qemu_write(&d2, "vmdk", 0x33, 2 << 20, 4096);
    let d = probe_disk(&d2);
    let chain: Vec<&Path> = d.chain().map(|c| c.path.as_path()).collect();
    assert_eq!(chain, vec![d2.as_path(), d1.as_path(), base.as_path()]);
    let FormatDetails::Vmdk(v) = &d.details else { panic!() };
    assert_eq!(v.parent_file_name_hint.as_deref(), Some("snap-000001.vmdk"));
    let outs = converts_faithfully(t.path(), &d2, Reference::Image(&d2, "vmdk"));
    // The flattened output holds every layer's data and has no backing file.
    let out = std::fs::read(&outs[1]).unwrap();
    assert_eq!(out[0], 0x11);
    assert_eq!(out[1 << 20], 0x22);
    assert_eq!(out[2 << 20], 0x33);
    assert_eq!(out[(2 << 20) + 4096], 0x11);
    let info = sh(Command::new("qemu-img").args(["info", "--output=json"]).arg(&outs[0]));
    assert!(!info.contains("backing-filename"), "{info}");
}

#[test]
fn vhd_fixed_and_dynamic() {
    for sub in ["fixed", "dynamic"] {
        let t = scratch();
        let (raw, img) =
            from_raw(t.path(), "vpc", Some(&format!("subformat={sub}")), "disk.vhd", SIZE);
        let d = probe_disk(&img);
        // qemu rounds the size up to a whole CHS geometry and records that in the footer.
        assert_eq!(d.format, ImageFormat::Vhd);
        assert_eq!(d.subformat, sub);
        assert!(d.virtual_size >= SIZE && d.virtual_size < SIZE + (1 << 20), "{}", d.virtual_size);
        assert!(d.cross_check.as_ref().unwrap().agrees, "{d:#?}");
        let padded = t.path().join("padded.raw");
        std::fs::copy(&raw, &padded).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&padded)
            .unwrap()
            .set_len(d.virtual_size)
            .unwrap();
        converts_faithfully(t.path(), &img, Reference::Raw(&padded));
    }
}

#[test]
fn vhd_differencing_is_probed_with_its_parent() {
    let t = scratch();
    let (parent, child, expected) =
        (t.path().join("base.vhd"), t.path().join("child.vhd"), t.path().join("expected.raw"));
    vhd_differencing(&parent, &child, &expected);
    let d = probe_disk(&child);
    assert_eq!(d.format, ImageFormat::Vhd);
    assert_eq!(d.subformat, "differencing");
    let p = d.backing.as_ref().expect("parent found through the W2ru locator");
    assert_eq!(p.path, parent);
    assert_eq!(p.subformat, "dynamic");
    assert_eq!(d.virtual_size, p.virtual_size);
    converts_faithfully(t.path(), &child, Reference::Raw(&expected));
}

#[test]
fn vhdx_dynamic_and_fixed() {
    for (opts, sub) in [(None, "dynamic"), (Some("subformat=fixed"), "fixed")] {
        let t = scratch();
        let (raw, img) = from_raw(t.path(), "vhdx", opts, "disk.vhdx", SIZE);
        let d = probe_disk(&img);
        assert_probe(&d, ImageFormat::Vhdx, sub, SIZE, 1);
        converts_faithfully(t.path(), &img, Reference::Raw(&raw));
    }
}

#[test]
fn qcow2_versions_backing_and_compression() {
    let t = scratch();
    let (raw, v2) = from_raw(t.path(), "qcow2", Some("compat=0.10"), "v2.qcow2", SIZE);
    let d = probe_disk(&v2);
    assert_probe(&d, ImageFormat::Qcow2, "v2", SIZE, 1);
    converts_faithfully(t.path(), &v2, Reference::Raw(&raw));

    let t = scratch();
    let (raw, _) = from_raw(t.path(), "qcow2", None, "unused.qcow2", SIZE);
    let zc = t.path().join("z.qcow2");
    sh(Command::new("qemu-img")
        .args(["convert", "-q", "-c", "-f", "raw", "-O", "qcow2", "-o", "compression_type=zstd"])
        .arg(&raw)
        .arg(&zc));
    let d = probe_disk(&zc);
    assert_probe(&d, ImageFormat::Qcow2, "v3", SIZE, 1);
    let FormatDetails::Qcow2(q) = &d.details else { panic!() };
    assert_eq!((q.compression_type.as_str(), q.compressed_clusters), ("zstd", Some(true)));
    converts_faithfully(t.path(), &zc, Reference::Raw(&raw));

    let t = scratch();
    let base = t.path().join("base.qcow2");
    qemu_create(&base, "qcow2", None, "64M");
    qemu_write(&base, "qcow2", 0x44, 0, 2 << 20);
    let top = t.path().join("top.qcow2");
    sh(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2"])
        .arg(&top)
        .current_dir(t.path()));
    qemu_write(&top, "qcow2", 0x55, 1 << 20, 4096);
    let d = probe_disk(&top);
    let FormatDetails::Qcow2(q) = &d.details else { panic!() };
    assert_eq!(
        (q.backing_file.as_deref(), q.backing_format.as_deref()),
        (Some("base.qcow2"), Some("qcow2"))
    );
    assert_eq!(q.compressed_clusters, Some(false));
    assert_eq!(d.backing.as_ref().unwrap().path, base);
    converts_faithfully(t.path(), &top, Reference::Image(&top, "qcow2"));
}

#[test]
fn vdi_dynamic_and_fixed() {
    for (opts, sub) in [(None, "dynamic"), (Some("static=on"), "fixed")] {
        let t = scratch();
        let (raw, img) = from_raw(t.path(), "vdi", opts, "disk.vdi", SIZE);
        let d = probe_disk(&img);
        assert_probe(&d, ImageFormat::Vdi, sub, SIZE, 1);
        converts_faithfully(t.path(), &img, Reference::Raw(&raw));
    }
}

#[test]
fn raw_and_iso() {
    let t = scratch();
    let img = t.path().join("ami.img");
    raw_with_data(&img, SIZE);
    let d = probe_disk(&img);
    assert_probe(&d, ImageFormat::Raw, "none", SIZE, 1);
    converts_faithfully(t.path(), &img, Reference::Raw(&img));

    let t = scratch();
    let iso_path = t.path().join("tools.iso");
    iso(&iso_path, 64);
    let d = probe_disk(&iso_path);
    assert_probe(&d, ImageFormat::Iso, "iso9660", 64 * 2048, 1);
    let FormatDetails::Iso(i) = &d.details else { panic!() };
    assert_eq!(i.volume_id, "HYPER2KVM_TEST");
    converts_faithfully(t.path(), &iso_path, Reference::Raw(&iso_path));
}

#[test]
fn format_is_taken_from_content_not_name() {
    let t = scratch();
    let (_, img) = from_raw(t.path(), "qcow2", None, "looks-like.vmdk", SIZE);
    assert_eq!(probe_disk(&img).format, ImageFormat::Qcow2);
    let (_, img) = from_raw(t.path(), "vdi", None, "misnamed.qcow2", SIZE);
    assert_eq!(probe_disk(&img).format, ImageFormat::Vdi);
}
