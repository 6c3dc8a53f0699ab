//! OVAs, OVFs and VMX files laid out the way exporters really write them (issue 15): zip
//! archives (stored, deflated, streamed with data descriptors, zip64), gzip-compressed disk
//! files, VMware snapshot member names, a folder inside the archive with its directory entry,
//! lenient manifests, VMs without NICs, a VMX generation ID and a network map. Each is
//! converted and the domain written beside the disks is read back for name, memory, vCPUs,
//! firmware, disk order (by size), MACs and NIC count.
//!
//! The zip archives are written by Python's `zipfile` (an independent implementation, the
//! one many export scripts use); the tar archives byte by byte as ustar.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use hyper2kvm::appliance::Container;
use hyper2kvm::libvirt::{DomainOptions, NetSource};
use hyper2kvm::{Appliance, CancelToken, ConvertOptions, ConvertReport, ProbeOptions, Probed};
use support::*;

const CAP1: u64 = 64 << 20;
const CAP2: u64 = 32 << 20;
const MAC: &str = "00:50:56:AB:CD:EF";

fn no_fix() -> ConvertOptions {
    ConvertOptions { fix: None, ..ConvertOptions::default() }
}

/// Two stream-optimized disks (boot disk larger) with their raw references and bytes.
struct Disks {
    files: [(PathBuf, PathBuf); 2],
}

impl Disks {
    fn new(dir: &Path) -> Disks {
        let d1 = (dir.join("web01-disk1.vmdk"), dir.join("ref1.raw"));
        let d2 = (dir.join("web01-disk2.vmdk"), dir.join("ref2.raw"));
        vmware_stream_optimized(&d1.0, &d1.1, CAP1);
        vmware_stream_optimized(&d2.0, &d2.1, CAP2);
        Disks { files: [d1, d2] }
    }

    fn bytes(&self, i: usize) -> Vec<u8> {
        std::fs::read(&self.files[i].0).unwrap()
    }
}

/// The OVF for two disks stored as `names` with the given sizes.
fn ovf(names: [&str; 2], sizes: [u64; 2], macs: &[&str]) -> String {
    vmware_ovf("web01", &[(names[0], CAP1, sizes[0]), (names[1], CAP2, sizes[1])], macs, false)
}

/// A `.mf` for `(name, data)` in the spaced form VMware writes.
fn mf(dir: &Path, files: &[(&str, &[u8])]) -> String {
    files.iter().map(|(n, d)| format!("SHA256({n})= {}\n", sha256_bytes(dir, d))).collect()
}

/// Writes a tar archive of `(name, data, typeflag)`.
fn tar(path: &Path, members: &[(&str, &[u8], u8)]) {
    let mut out = Vec::new();
    for (n, d, t) in members {
        tar_member(&mut out, n, d, *t);
    }
    tar_end(&mut out);
    std::fs::write(path, out).unwrap();
}

/// How Python's zipfile writes a member: `s` stored, `d` deflated, `/` a directory entry.
/// `stream` writes to a pipe (so every member gets a data descriptor, as streaming zippers
/// do); `zip64` forces zip64 records.
fn zip(path: &Path, members: &[(&str, &[u8], char)], stream: bool, zip64: bool) {
    let dir = path
        .parent()
        .unwrap()
        .join(format!("{}.parts", path.file_name().unwrap().to_string_lossy()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = Vec::new();
    for (i, (n, d, kind)) in members.iter().enumerate() {
        let p = dir.join(i.to_string());
        std::fs::write(&p, d).unwrap();
        args.push(format!("{n}|{}|{kind}", p.display()));
    }
    let script = r#"
import shutil, sys, zipfile
stream, zip64 = sys.argv[1] == "1", sys.argv[2] == "1"
out = sys.stdout.buffer if stream else open(sys.argv[3], "wb")
with zipfile.ZipFile(out, "w") as z:
    for spec in sys.argv[4:]:
        name, src, kind = spec.split("|")
        zi = zipfile.ZipInfo(name, (2026, 11, 1, 10, 0, 0))
        if kind == "/":
            zi.external_attr = (0o40755 << 16) | 0x10
            z.writestr(zi, b"")
            continue
        zi.external_attr = 0o100644 << 16
        zi.compress_type = zipfile.ZIP_DEFLATED if kind == "d" else zipfile.ZIP_STORED
        with z.open(zi, "w", force_zip64=zip64) as w, open(src, "rb") as r:
            shutil.copyfileobj(r, w)
"#;
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).arg(if stream { "1" } else { "0" }).arg(if zip64 {
        "1"
    } else {
        "0"
    });
    cmd.arg(path).args(&args);
    if stream {
        cmd.stdout(std::fs::File::create(path).unwrap());
    }
    let st = cmd.status().unwrap();
    assert!(st.success(), "python3 zipfile failed");
    std::fs::remove_dir_all(dir).unwrap();
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn appliance(path: &Path) -> Appliance {
    match hyper2kvm::probe(path, &ProbeOptions::default()).unwrap_or_else(|e| panic!("{e}")) {
        Probed::Appliance(a) => a,
        other => panic!("expected an appliance, got {other:?}"),
    }
}

fn convert(input: &Path, out: &Path, opts: &ConvertOptions) -> ConvertReport {
    hyper2kvm::convert(input, out, opts, &mut |_| {}, &CancelToken::new())
        .unwrap_or_else(|e| panic!("{}: {e}", input.display()))
}

fn virtual_size(p: &Path) -> u64 {
    let o = sh(Command::new("qemu-img").args(["info", "--output=json"]).arg(p));
    let key = "\"virtual-size\":";
    let at = o.find(key).unwrap() + key.len();
    o[at..].trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// Reads the domain beside the disks back and checks what the OVF said: name, 2048 MiB,
/// 2 vCPUs, BIOS, the boot disk (the larger) first, the MACs; returns the XML text.
fn check_domain(report: &ConvertReport, macs: &[&str]) -> String {
    let d = report.domain.as_ref().expect("a domain is written");
    let text = std::fs::read_to_string(&d.xml).unwrap();
    let back = hyper2kvm::appliance::domxml::parse(&d.xml, &text).unwrap();
    assert_eq!(back.name, "web01", "{text}");
    assert_eq!((back.memory_mib, back.cpus), (Some(2048), Some(2)), "{text}");
    assert_eq!(back.firmware, "bios");
    let sizes: Vec<u64> = back.files.iter().map(|f| virtual_size(Path::new(&f.href))).collect();
    assert_eq!(sizes, vec![CAP1, CAP2], "disk order by size: {text}");
    let got: Vec<String> = back.nics.iter().map(|n| n.mac.clone().unwrap_or_default()).collect();
    let want: Vec<String> = macs.iter().map(|m| m.to_ascii_lowercase()).collect();
    assert_eq!(got, want, "NICs and their MACs: {text}");
    assert_eq!(text.matches("<interface ").count(), macs.len(), "{text}");
    text
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn zip_ovas_stored_deflated_streamed_and_zip64() {
    let t = scratch();
    let disks = Disks::new(t.path());
    let (b1, b2) = (disks.bytes(0), disks.bytes(1));
    let text =
        ovf(["web01-disk1.vmdk", "web01-disk2.vmdk"], [b1.len() as u64, b2.len() as u64], &[MAC]);
    let manifest = mf(
        t.path(),
        &[("web01.ovf", text.as_bytes()), ("web01-disk1.vmdk", &b1), ("web01-disk2.vmdk", &b2)],
    );
    // (label, disk member kind, streamed, zip64, whether the disks are read in place)
    for (label, kind, stream, zip64, in_place) in [
        ("stored", 's', false, false, true),
        ("deflated", 'd', false, false, false),
        ("streamed", 'd', true, false, false),
        ("zip64", 'd', false, true, false),
        ("stored-zip64", 's', true, true, true),
    ] {
        let ova = t.path().join(format!("web01-{label}.ova"));
        zip(
            &ova,
            &[
                ("web01.ovf", text.as_bytes(), 'd'),
                ("web01.mf", manifest.as_bytes(), 'd'),
                ("web01-disk1.vmdk", &b1, kind),
                ("web01-disk2.vmdk", &b2, kind),
            ],
            stream,
            zip64,
        );
        let a = appliance(&ova);
        assert_eq!(a.container, Container::OvaZip, "{label}");
        assert!(a.manifest.as_ref().unwrap().verified, "{label}");
        assert_eq!(
            a.disks.iter().all(|d| d.image.is_some()),
            in_place,
            "{label}: {:?}",
            a.warnings
        );
        if in_place {
            let img = a.disks[0].image.as_ref().unwrap();
            assert_eq!(img.path, ova, "{label}: read from the zip itself");
            assert!(img.region.is_some());
        }
        let out = t.path().join(format!("out-{label}"));
        let report = convert(&ova, &out, &no_fix());
        same_qcow2(&disks.files[0].1, &report.outputs[0].path);
        same_qcow2(&disks.files[1].1, &report.outputs[1].path);
        check_domain(&report, &[MAC]);
        assert_eq!(
            listing(&out),
            vec!["web01-vmdisk2.qcow2", "web01.qcow2", "web01.xml"],
            "{label}: nothing unpacked is left behind"
        );
    }
    // A deflated member whose data was damaged fails with the member named, and leaves no
    // output that looks finished.
    let ova = t.path().join("web01-deflated.ova");
    let mut data = std::fs::read(&ova).unwrap();
    let at = data.len() / 2;
    data[at..at + 64].fill(0x55);
    let bad = t.path().join("damaged.ova");
    std::fs::write(&bad, data).unwrap();
    let out = t.path().join("out-damaged");
    let e =
        hyper2kvm::convert(&bad, &out, &no_fix(), &mut |_| {}, &CancelToken::new()).unwrap_err();
    assert!(e.to_string().contains("damaged.ova"), "{e}");
    assert!(!out.exists(), "refused before anything is written");
    // Without the manifest check, the zip's own CRC-32 catches it while unpacking.
    let unchecked = ConvertOptions {
        probe: ProbeOptions { verify_manifest: false, ..ProbeOptions::default() },
        ..no_fix()
    };
    let e =
        hyper2kvm::convert(&bad, &out, &unchecked, &mut |_| {}, &CancelToken::new()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("damaged.ova") && text.contains("web01-disk"), "{text}");
    assert!(listing(&out).is_empty(), "nothing left behind: {:?}", listing(&out));
}

#[test]
fn zip_links_and_hostile_names_are_refused() {
    let t = scratch();
    for (name, why) in [("../evil.ovf", "unsafe path"), ("/abs.ovf", "unsafe path")] {
        let ova = t.path().join("hostile.ova");
        zip(&ova, &[(name, b"<Envelope/>", 's')], false, false);
        let e = hyper2kvm::probe(&ova, &ProbeOptions::default()).unwrap_err();
        assert!(e.to_string().contains(why) && e.to_string().contains("hostile.ova"), "{e}");
    }
    // A symbolic link stored in a zip (unix mode 0120777).
    let ova = t.path().join("link.ova");
    let script = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    zi = zipfile.ZipInfo("web01.ovf")
    zi.external_attr = 0o120777 << 16
    z.writestr(zi, "/etc/passwd")
"#;
    sh(Command::new("python3").arg("-c").arg(script).arg(&ova));
    let e = hyper2kvm::probe(&ova, &ProbeOptions::default()).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
}

#[test]
fn gzip_compressed_disk_files_in_a_tar_ova() {
    let t = scratch();
    let disks = Disks::new(t.path());
    // ovftool --compress keeps the name; other exporters add .gz: one of each.
    let (g1, g2) = (gzip(&disks.bytes(0)), gzip(&disks.bytes(1)));
    let names = ["web01-disk1.vmdk.gz", "web01-disk2.vmdk"];
    let text = ovf(names, [g1.len() as u64, g2.len() as u64], &[MAC])
        .replace("ovf:id=\"file1\"", "ovf:compression=\"gzip\" ovf:id=\"file1\"")
        .replace("ovf:id=\"file2\"", "ovf:compression=\"gzip\" ovf:id=\"file2\"");
    let manifest =
        mf(t.path(), &[("web01.ovf", text.as_bytes()), (names[0], &g1), (names[1], &g2)]);
    let ova = t.path().join("web01.ova");
    tar(
        &ova,
        &[
            ("web01.ovf", text.as_bytes(), b'0'),
            ("web01.mf", manifest.as_bytes(), b'0'),
            (names[0], &g1, b'0'),
            (names[1], &g2, b'0'),
        ],
    );
    let a = appliance(&ova);
    assert!(a.manifest.as_ref().unwrap().verified, "the manifest covers the packed files");
    assert!(a.disks.iter().all(|d| d.image.is_none()));
    let out = t.path().join("out");
    let report = convert(&ova, &out, &no_fix());
    same_qcow2(&disks.files[0].1, &report.outputs[0].path);
    same_qcow2(&disks.files[1].1, &report.outputs[1].path);
    check_domain(&report, &[MAC]);
    assert_eq!(listing(&out), vec!["web01-vmdisk2.qcow2", "web01.qcow2", "web01.xml"]);
    // The same inside a gzip-compressed tar (compressed twice over).
    let packed = t.path().join("web01.ova.gz");
    std::fs::write(&packed, gzip(&std::fs::read(&ova).unwrap())).unwrap();
    let out = t.path().join("out-gz");
    let report = convert(&packed, &out, &no_fix());
    same_qcow2(&disks.files[0].1, &report.outputs[0].path);
    assert_eq!(listing(&out).len(), 3);
    // Other per-file compressions are refused by name.
    let xz = text.replace(
        "ovf:compression=\"gzip\" ovf:id=\"file1\"",
        "ovf:compression=\"bzip2\" ovf:id=\"file1\"",
    );
    let bad = t.path().join("bzip2.ova");
    tar(&bad, &[("web01.ovf", xz.as_bytes(), b'0'), (names[0], &g1, b'0'), (names[1], &g2, b'0')]);
    let e = hyper2kvm::probe(&bad, &ProbeOptions::default()).unwrap_err();
    assert!(e.to_string().contains("bzip2") && e.to_string().contains("bzip2.ova"), "{e}");
}

#[test]
fn snapshot_member_names_use_the_newest() {
    let t = scratch();
    let disks = Disks::new(t.path());
    let older = t.path().join("older.vmdk");
    vmware_stream_optimized(&older, &t.path().join("older.raw"), CAP1);
    let (b1, b2, old) = (disks.bytes(0), disks.bytes(1), std::fs::read(&older).unwrap());
    let text =
        ovf(["web01-disk1.vmdk", "web01-disk2.vmdk"], [b1.len() as u64, b2.len() as u64], &[MAC]);
    let ova = t.path().join("web01.ova");
    tar(
        &ova,
        &[
            ("web01.ovf", text.as_bytes(), b'0'),
            ("web01-disk1.vmdk.000000001", &old, b'0'),
            ("web01-disk1.vmdk.000000002", &b1, b'0'),
            ("web01-disk2.vmdk", &b2, b'0'),
        ],
    );
    let a = appliance(&ova);
    assert_eq!(a.disks[0].href.as_deref(), Some("web01-disk1.vmdk.000000002"));
    assert!(
        a.warnings
            .iter()
            .any(|w| w.contains("snapshot") && w.contains("web01-disk1.vmdk.000000002")),
        "{:?}",
        a.warnings
    );
    let report = convert(&ova, &t.path().join("out"), &no_fix());
    same_qcow2(&disks.files[0].1, &report.outputs[0].path);
    same_qcow2(&disks.files[1].1, &report.outputs[1].path);
    check_domain(&report, &[MAC]);
}

#[test]
fn members_in_a_folder_with_its_directory_entry() {
    let t = scratch();
    let disks = Disks::new(t.path());
    let (b1, b2) = (disks.bytes(0), disks.bytes(1));
    let text =
        ovf(["web01-disk1.vmdk", "web01-disk2.vmdk"], [b1.len() as u64, b2.len() as u64], &[MAC]);
    let manifest = mf(
        t.path(),
        &[("web01.ovf", text.as_bytes()), ("web01-disk1.vmdk", &b1), ("web01-disk2.vmdk", &b2)],
    );
    let ova = t.path().join("web01.ova");
    tar(
        &ova,
        &[
            ("web01/", b"", b'5'),
            ("web01/web01.ovf", text.as_bytes(), b'0'),
            ("web01/web01.mf", manifest.as_bytes(), b'0'),
            ("web01/web01-disk1.vmdk", &b1, b'0'),
            ("./web01/web01-disk2.vmdk", &b2, b'0'),
        ],
    );
    let a = appliance(&ova);
    assert_eq!(a.descriptor, "web01/web01.ovf");
    assert!(a.manifest.as_ref().unwrap().verified);
    let report = convert(&ova, &t.path().join("out"), &no_fix());
    same_qcow2(&disks.files[0].1, &report.outputs[0].path);
    check_domain(&report, &[MAC]);
    // The same folder layout as a zip with its directory entry and macOS junk beside it.
    let zipped = t.path().join("web01-zip.ova");
    zip(
        &zipped,
        &[
            ("web01/", b"", '/'),
            ("web01/web01.ovf", text.as_bytes(), 'd'),
            ("__MACOSX/web01/._web01.ovf", b"junk", 'd'),
            ("web01/web01.mf", manifest.as_bytes(), 's'),
            ("web01/web01-disk1.vmdk", &b1, 's'),
            ("web01/web01-disk2.vmdk", &b2, 's'),
        ],
        false,
        false,
    );
    let report = convert(&zipped, &t.path().join("out-zip"), &no_fix());
    same_qcow2(&disks.files[1].1, &report.outputs[1].path);
    check_domain(&report, &[MAC]);
    // A symbolic link member in the folder is still refused.
    let bad = t.path().join("link.ova");
    tar(&bad, &[("web01/", b"", b'5'), ("web01/web01.ovf", b"", b'2')]);
    let e = hyper2kvm::probe(&bad, &ProbeOptions::default()).unwrap_err();
    assert!(e.to_string().contains("links"), "{e}");
}

#[test]
fn manifest_lines_that_do_not_parse_are_warnings() {
    let t = scratch();
    let disks = Disks::new(t.path());
    let (b1, b2) = (disks.bytes(0), disks.bytes(1));
    let text =
        ovf(["web01-disk1.vmdk", "web01-disk2.vmdk"], [b1.len() as u64, b2.len() as u64], &[MAC]);
    let (h_ovf, h1, h2) = (
        sha256_bytes(t.path(), text.as_bytes()),
        sha256_bytes(t.path(), &b1),
        sha256_bytes(t.path(), &b2),
    );
    let build = |name: &str, manifest: String| {
        let ova = t.path().join(name);
        tar(
            &ova,
            &[
                ("web01.ovf", text.as_bytes(), b'0'),
                ("web01.mf", manifest.as_bytes(), b'0'),
                ("web01-disk1.vmdk", &b1, b'0'),
                ("web01-disk2.vmdk", &b2, b'0'),
            ],
        );
        ova
    };
    // A garbage line, and a line without the space after '='.
    let lenient = build(
        "lenient.ova",
        format!(
            "SHA256(web01.ovf)= {h_ovf}\n# exported by a script\nSHA256(web01-disk1.vmdk)={h1}\nSHA256(web01-disk2.vmdk)= {h2}\n"
        ),
    );
    let a = appliance(&lenient);
    let m = a.manifest.as_ref().unwrap();
    assert!(m.verified);
    assert_eq!(m.entries, 3, "the line without the space is checked too");
    assert!(
        a.warnings
            .iter()
            .any(|w| w.contains("web01.mf line 2") && w.contains("# exported by a script")),
        "{:?}",
        a.warnings
    );
    let report = convert(&lenient, &t.path().join("out"), &no_fix());
    check_domain(&report, &[MAC]);
    // A line that parses and does not match stays an error, even without the space.
    let wrong = build("wrong.ova", format!("garbage\nSHA256(web01-disk1.vmdk)={h2}\n"));
    let e = hyper2kvm::probe(&wrong, &ProbeOptions::default()).unwrap_err();
    assert_eq!(e.kind(), hyper2kvm::ErrorKind::Checksum, "{e}");
    assert!(e.to_string().contains("web01-disk1.vmdk") && e.to_string().contains("wrong.ova"));
}

#[test]
fn no_nics_in_the_source_means_none_in_the_domain_unless_asked() {
    let t = scratch();
    let disks = Disks::new(t.path());
    let paths: Vec<(&Path, u64)> = vec![(&disks.files[0].0, CAP1), (&disks.files[1].0, CAP2)];
    let ova = t.path().join("web01.ova");
    build_ova(&ova, "web01", &paths, &[]);
    let report = convert(&ova, &t.path().join("out"), &no_fix());
    let xml = check_domain(&report, &[]);
    assert!(!xml.contains("<interface"), "{xml}");
    // --network given: one NIC, there.
    let chosen = ConvertOptions {
        domain: Some(DomainOptions {
            network: NetSource::Network("lab".into()),
            network_chosen: true,
            ..DomainOptions::default()
        }),
        ..no_fix()
    };
    let report = convert(&ova, &t.path().join("out-chosen"), &chosen);
    let xml = std::fs::read_to_string(&report.domain.as_ref().unwrap().xml).unwrap();
    assert_eq!(xml.matches("<interface ").count(), 1, "{xml}");
    assert!(xml.contains("<source network=\"lab\"/>"), "{xml}");
    // A bare disk still gets one NIC (nothing says it had none).
    let report = convert(&disks.files[1].0, &t.path().join("out-disk"), &no_fix());
    let xml = std::fs::read_to_string(&report.domain.as_ref().unwrap().xml).unwrap();
    assert_eq!(xml.matches("<interface ").count(), 1, "{xml}");
}

#[test]
fn vmx_genid_and_network_map() {
    let t = scratch();
    let disks = Disks::new(t.path());
    let vmx = t.path().join("web01.vmx");
    std::fs::write(
        &vmx,
        format!(
            r#".encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
displayName = "web01"
guestOS = "debian11-64"
memSize = "2048"
numvcpus = "2"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "web01-disk1.vmdk"
scsi0:1.present = "TRUE"
scsi0:1.fileName = "{}"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "static"
ethernet0.address = "00:50:56:AB:CD:EF"
ethernet1.present = "TRUE"
ethernet1.virtualDev = "e1000e"
ethernet1.networkName = "Storage"
ethernet1.addressType = "generated"
ethernet1.generatedAddress = "00:0c:29:12:34:56"
ethernet2.present = "TRUE"
ethernet2.networkName = "DMZ"
ethernet2.addressType = "generated"
ethernet2.generatedAddress = "00:0c:29:12:34:57"
vm.genid = "-8536691797830587195"
vm.genidX = "-1723453263670062919"
"#,
            disks.files[1].0.display()
        ),
    )
    .unwrap();
    let opts = ConvertOptions {
        domain: Some(DomainOptions {
            network_map: vec![
                ("VM Network".into(), NetSource::Network("prod".into())),
                ("Storage".into(), NetSource::Bridge("br-storage".into())),
            ],
            ..DomainOptions::default()
        }),
        ..no_fix()
    };
    let report = convert(&vmx, &t.path().join("out"), &opts);
    let xml = check_domain(&report, &[MAC, "00:0c:29:12:34:56", "00:0c:29:12:34:57"]);
    // What the guest read on VMware (8987940a09512cc5:e81510634ff550b9), in libvirt's form.
    assert!(xml.contains("<genid>09512cc5-940a-8987-b950-f54f631015e8</genid>"), "{xml}");
    let sources: Vec<&str> = xml
        .lines()
        .filter(|l| l.contains("<source network=") || l.contains("<source bridge="))
        .map(str::trim)
        .collect();
    assert_eq!(
        sources,
        vec![
            "<source network=\"prod\"/>",
            "<source bridge=\"br-storage\"/>",
            "<source network=\"default\"/>"
        ],
        "{xml}"
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("\"DMZ\"") && w.contains("not in the network map")),
        "{:?}",
        report.warnings
    );
    // The domain is valid libvirt XML with the genid in it.
    sh(Command::new("virt-xml-validate").arg(&report.domain.as_ref().unwrap().xml).arg("domain"));
}

/// Damaged zip OVAs (truncated anywhere, bytes flipped in the central directory, the local
/// headers and the data) are refused with an error or probed, never a panic or a hang.
#[test]
fn damaged_zips_are_errors_not_panics() {
    let t = scratch();
    let disks = Disks::new(t.path());
    let (b1, b2) = (disks.bytes(0), disks.bytes(1));
    let text =
        ovf(["web01-disk1.vmdk", "web01-disk2.vmdk"], [b1.len() as u64, b2.len() as u64], &[MAC]);
    let ova = t.path().join("web01.ova");
    zip(
        &ova,
        &[
            ("web01.ovf", text.as_bytes(), 'd'),
            ("web01-disk1.vmdk", &b1, 'd'),
            ("web01-disk2.vmdk", &b2, 's'),
        ],
        true,
        true,
    );
    let good = std::fs::read(&ova).unwrap();
    let opts = ProbeOptions { cross_check: false, verify_manifest: true };
    let bad = t.path().join("bad.ova");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let (mut refused, mut probed) = (0, 0);
    for round in 0..400 {
        let mut data = good.clone();
        if round % 4 == 0 {
            data.truncate(next(good.len()));
        } else {
            // Most flips in the last 4 KiB (central directory, zip64 and end records).
            for _ in 0..1 + next(4) {
                let at = if round % 2 == 0 {
                    good.len() - 1 - next(4096.min(good.len()))
                } else {
                    next(good.len())
                };
                data[at] ^= 1 << next(8);
            }
        }
        std::fs::write(&bad, &data).unwrap();
        match hyper2kvm::probe(&bad, &opts) {
            Ok(_) => probed += 1,
            Err(e) => {
                refused += 1;
                assert!(e.to_string().contains("bad.ova"), "the error names the file: {e}");
            }
        }
    }
    assert!(refused > 100, "{refused} refused, {probed} probed");
}
