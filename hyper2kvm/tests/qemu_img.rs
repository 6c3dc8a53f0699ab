//! The typed qemu-img wrapper against the real tool: create, info, map, check, compare,
//! convert with progress, and cancellation of a running conversion.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use hyper2kvm::qemu_img::{self, BlockSpec, ConvertOptions};
use hyper2kvm::{CancelToken, ErrorKind, ImageFormat};
use support::*;

#[test]
fn create_info_map_check_compare() {
    let t = scratch();
    let base = t.path().join("base.qcow2");
    qemu_img::create(&base, ImageFormat::Qcow2, 32 << 20, None).unwrap();
    qemu_write(&base, "qcow2", 0x5a, 4 << 20, 1 << 20);
    let top = t.path().join("top.qcow2");
    qemu_img::create(&top, ImageFormat::Qcow2, 32 << 20, Some((&base, ImageFormat::Qcow2)))
        .unwrap();

    let info = qemu_img::info(&BlockSpec::file(&base, ImageFormat::Qcow2)).unwrap();
    assert_eq!((info.format.as_str(), info.virtual_size), ("qcow2", 32 << 20));

    let map = qemu_img::map(&BlockSpec::file(&base, ImageFormat::Qcow2)).unwrap();
    let data: Vec<(u64, u64)> =
        map.iter().filter(|e| e.data).map(|e| (e.start, e.length)).collect();
    assert_eq!(data, vec![(4 << 20, 1 << 20)]);

    let report = qemu_img::check(&base, ImageFormat::Qcow2).unwrap();
    assert_eq!(report.corruptions, 0);
    assert!(report.allocated_clusters.unwrap() > 0);

    // The overlay shows the base's data through its backing file.
    assert!(
        qemu_img::compare(
            &BlockSpec::file(&base, ImageFormat::Qcow2),
            &BlockSpec::file(&top, ImageFormat::Qcow2)
        )
        .unwrap()
    );
    qemu_write(&top, "qcow2", 0x01, 0, 512);
    assert!(
        !qemu_img::compare(
            &BlockSpec::file(&base, ImageFormat::Qcow2),
            &BlockSpec::file(&top, ImageFormat::Qcow2)
        )
        .unwrap()
    );
}

#[test]
fn tool_errors_keep_stderr() {
    let t = scratch();
    let junk = t.path().join("junk.qcow2");
    std::fs::write(&junk, b"not a qcow2 at all").unwrap();
    let err = qemu_img::info(&BlockSpec::file(&junk, ImageFormat::Qcow2)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ToolFailed);
    assert!(err.to_string().contains("qemu-img"), "{err}");
    assert!(err.to_string().to_lowercase().contains("qcow"), "stderr kept: {err}");
}

#[test]
fn convert_reports_progress_and_can_be_cancelled() {
    let t = scratch();
    let raw = t.path().join("big.raw");
    let f = std::fs::File::create(&raw).unwrap();
    f.set_len(256 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    for i in 0..16u64 {
        f.write_all_at(&noise(4 << 20, i + 1), i * (16 << 20)).unwrap();
    }
    drop(f);
    let spec = BlockSpec::file(&raw, ImageFormat::Raw);

    let out = t.path().join("out.qcow2");
    let mut seen = Vec::new();
    qemu_img::convert(
        &spec,
        &out,
        &ConvertOptions::default(),
        &mut |p| seen.push(p),
        &CancelToken::new(),
    )
    .unwrap();
    assert_eq!(seen.last(), Some(&1.0));
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress goes forward: {seen:?}");
    assert!(qemu_img::compare(&spec, &BlockSpec::file(&out, ImageFormat::Qcow2)).unwrap());

    let cancelled = t.path().join("cancelled.qcow2");
    let cancel = CancelToken::new();
    let err = qemu_img::convert(
        &spec,
        &cancelled,
        &ConvertOptions::default(),
        &mut |_| cancel.cancel(),
        &cancel,
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert!(!cancelled.exists(), "a cancelled conversion leaves no file");
}

#[test]
fn library_convert_cancelled_leaves_nothing() {
    let t = scratch();
    let raw = t.path().join("disk.raw");
    raw_with_data(&raw, 128 << 20);
    let out = t.path().join("out");
    let cancel = CancelToken::new();
    let err = hyper2kvm::convert(
        &raw,
        &out,
        &hyper2kvm::ConvertOptions { fix: None, ..Default::default() },
        &mut |_| cancel.cancel(),
        &cancel,
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}
