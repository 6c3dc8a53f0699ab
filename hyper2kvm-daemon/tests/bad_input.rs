//! Bad input gets a clear error naming the file and the problem, exit status 2, no output
//! under a final name, and the source left byte for byte as it was.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::*;

fn hyper2kvm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hyper2kvm"))
}

/// Hashes of every regular file under `dir` (the inputs), to prove nothing changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() && std::fs::File::open(&p).is_ok() {
            v.push((p.clone(), sha256_hex(&p)));
        }
    }
    v.sort();
    v
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Probes and converts `input`; both must fail with status 2 and a message containing
/// `names` (the file) and `why` (the problem), leave the inputs unchanged and write nothing.
fn rejected(dir: &Path, input: &Path, names: &str, why: &str) {
    rejected_with(dir, input, names, why, |c| c);
}

fn rejected_with(
    dir: &Path,
    input: &Path,
    names: &str,
    why: &str,
    wrap: impl Fn(&mut Command) -> &mut Command,
) {
    let before = snapshot(dir);
    let out = dir.join("out");
    let probe = wrap(hyper2kvm().arg("probe").arg(input)).output().unwrap();
    let conv = wrap(hyper2kvm().arg("convert").arg(input).arg("-o").arg(&out)).output().unwrap();
    for (what, o) in [("probe", &probe), ("convert", &conv)] {
        assert_eq!(o.status.code(), Some(2), "{what} {}: {}", input.display(), stderr(o));
        let msg = stderr(o);
        assert!(msg.contains(names), "{what}: message does not name {names:?}: {msg}");
        assert!(
            msg.to_lowercase().contains(&why.to_lowercase()),
            "{what}: message does not say {why:?}: {msg}"
        );
    }
    assert_eq!(snapshot(dir), before, "inputs changed");
    if out.exists() {
        let left: Vec<_> =
            std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "outputs left behind: {left:?}");
    }
}

fn sparse_vmdk_with_data(dir: &Path) -> PathBuf {
    let raw = dir.join("src.raw");
    raw_with_data(&raw, 64 << 20);
    let vmdk = dir.join("disk.vmdk");
    qemu_from_raw(&raw, &vmdk, "vmdk", None);
    std::fs::remove_file(raw).unwrap();
    vmdk
}

#[test]
fn truncated_vmdk() {
    let t = scratch();
    let vmdk = sparse_vmdk_with_data(t.path());
    let len = std::fs::metadata(&vmdk).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&vmdk).unwrap().set_len(len / 2).unwrap();
    rejected(t.path(), &vmdk, "disk.vmdk", "outside the file");

    let t = scratch();
    let (so, raw) = (t.path().join("so.vmdk"), t.path().join("so.raw"));
    vmware_stream_optimized(&so, &raw, 16 << 20);
    std::fs::remove_file(raw).unwrap();
    let len = std::fs::metadata(&so).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&so).unwrap().set_len(len - 4096).unwrap();
    rejected(t.path(), &so, "so.vmdk", "truncated stream-optimized VMDK");
}

#[test]
fn corrupt_grain_table() {
    let t = scratch();
    let vmdk = sparse_vmdk_with_data(t.path());
    let mut b = std::fs::read(&vmdk).unwrap();
    // The grain directory's first entry names the first grain table; poison its first entry.
    let gd = u64::from_le_bytes(b[56..64].try_into().unwrap()) as usize * 512;
    let gt = u32::from_le_bytes(b[gd..gd + 4].try_into().unwrap()) as usize * 512;
    b[gt..gt + 4].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    std::fs::write(&vmdk, b).unwrap();
    rejected(t.path(), &vmdk, "disk.vmdk", "corrupt VMDK grain table");
}

#[test]
fn vhd_with_bad_footer_checksum() {
    let t = scratch();
    let raw = t.path().join("src.raw");
    raw_with_data(&raw, 8 << 20);
    let vhd = t.path().join("disk.vhd");
    qemu_from_raw(&raw, &vhd, "vpc", Some("subformat=fixed"));
    std::fs::remove_file(raw).unwrap();
    let mut b = std::fs::read(&vhd).unwrap();
    let n = b.len();
    b[n - 512 + 40] ^= 0x01; // a bit of the original-size field
    std::fs::write(&vhd, b).unwrap();
    rejected(t.path(), &vhd, "disk.vhd", "footer: checksum");
}

#[test]
fn descriptor_extent_paths_that_escape() {
    for (name, why) in [("/etc/hostname", "absolute path"), ("../outside-flat.vmdk", "climbs out")]
    {
        let t = scratch();
        let d = t.path().join("esx.vmdk");
        flat_descriptor(&d, "vmfs", "VMFS", name, 2048);
        rejected(t.path(), &d, "esx.vmdk", why);
    }
}

#[test]
fn ova_member_climbing_out() {
    let t = scratch();
    let ovf = vmware_ovf("evil", &[("../x", 1 << 20, 512)], &[], false);
    let mut tar = Vec::new();
    tar_member(&mut tar, "evil.ovf", ovf.as_bytes(), b'0');
    tar_member(&mut tar, "../x", &[0u8; 512], b'0');
    tar_end(&mut tar);
    let ova = t.path().join("evil.ova");
    std::fs::write(&ova, tar).unwrap();
    rejected(t.path(), &ova, "evil.ova", "\"../x\" has an unsafe path");
    assert!(!t.path().parent().unwrap().join("x").exists());
}

#[test]
fn ova_member_that_is_a_symlink() {
    let t = scratch();
    let ovf = vmware_ovf("link", &[("d.vmdk", 1 << 20, 0)], &[], false);
    let mut tar = Vec::new();
    tar_member(&mut tar, "link.ovf", ovf.as_bytes(), b'0');
    tar_member(&mut tar, "d.vmdk", &[], b'2');
    tar_end(&mut tar);
    let ova = t.path().join("link.ova");
    std::fs::write(&ova, tar).unwrap();
    rejected(t.path(), &ova, "link.ova", "not a regular file");
}

#[test]
fn ovf_with_external_entity() {
    let t = scratch();
    let ovf = vmware_ovf("xxe", &[], &[], false)
        .replacen(
            "<Envelope",
            "<!DOCTYPE Envelope [<!ENTITY leak SYSTEM \"file:///etc/passwd\">]>\n<Envelope",
            1,
        )
        .replace("<Name>xxe</Name>", "<Name>&leak;</Name>");
    let p = t.path().join("xxe.ovf");
    std::fs::write(&p, ovf).unwrap();
    rejected(t.path(), &p, "xxe.ovf", "DOCTYPE");
}

#[test]
fn manifest_checksum_mismatch() {
    let t = scratch();
    let (d, raw) = (t.path().join("vm-disk1.vmdk"), t.path().join("r.raw"));
    vmware_stream_optimized(&d, &raw, 8 << 20);
    std::fs::remove_file(raw).unwrap();
    let ova = t.path().join("vm.ova");
    build_ova(&ova, "vm", &[(&d, 8 << 20)], &[]);
    std::fs::remove_file(&d).unwrap();
    // Flip one byte of the disk member's data (after the tar headers of ovf and mf).
    let mut b = std::fs::read(&ova).unwrap();
    let pos = b.windows(4).rposition(|w| w == b"KDMV").unwrap() + 600;
    b[pos] ^= 0xff;
    std::fs::write(&ova, b).unwrap();
    rejected(t.path(), &ova, "vm.ova", "checksum mismatch for \"vm-disk1.vmdk\"");
}

#[test]
fn empty_file_directory_fifo_and_missing_path() {
    let t = scratch();
    let empty = t.path().join("empty.vmdk");
    std::fs::write(&empty, b"").unwrap();
    rejected(t.path(), &empty, "empty.vmdk", "empty file");

    let dir = t.path().join("somedir");
    std::fs::create_dir(&dir).unwrap();
    rejected(t.path(), &dir, "somedir", "is a directory");

    let fifo = t.path().join("pipe.vmdk");
    sh(Command::new("mkfifo").arg(&fifo));
    rejected(t.path(), &fifo, "pipe.vmdk", "a FIFO");

    rejected(t.path(), &t.path().join("nope.vmdk"), "nope.vmdk", "no such file");
}

#[test]
fn unreadable_file() {
    let t = scratch();
    let vmdk = sparse_vmdk_with_data(t.path());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&vmdk, std::fs::Permissions::from_mode(0o000)).unwrap();
    // root reads anything through CAP_DAC_OVERRIDE; drop that (and DAC_READ_SEARCH) from the
    // child so the file's mode applies to it as it would to the service user.
    let is_root = unsafe_free_euid() == 0;
    rejected_with(t.path(), &vmdk, "disk.vmdk", "permission denied", |c| {
        if is_root {
            let prog = c.get_program().to_owned();
            let args: Vec<_> = c.get_args().map(|a| a.to_owned()).collect();
            let mut w = Command::new("setpriv");
            w.args(["--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--"])
                .arg(prog)
                .args(args);
            *c = w;
        }
        c
    });
    std::fs::set_permissions(&vmdk, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn unsafe_free_euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn json_errors_carry_the_kind() {
    let t = scratch();
    let o =
        hyper2kvm().args(["probe", "--json"]).arg(t.path().join("missing.vhd")).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["inputs"][0]["error"]["kind"], "not_found");
    assert!(v["inputs"][0]["error"]["message"].as_str().unwrap().contains("missing.vhd"));
}

#[test]
fn bad_usage_is_status_2() {
    let o = hyper2kvm().args(["convert", "x.vmdk"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = hyper2kvm().args(["convert", "x.vmdk", "-o", "o", "--compress=12"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn bad_configuration_file_is_refused_before_any_disk_is_touched() {
    let t = scratch();
    let src = sparse_vmdk_with_data(t.path());
    let out = t.path().join("out");
    let cases = [
        ("malformed.json", "{\"users\": [", "not a configuration object"),
        (
            "invalid.json",
            r#"{"users": {"create": [{"name": "Bad Name"}]}, "hostname": {"hostname": "-x"}}"#,
            "configuration.users.create[0].name",
        ),
    ];
    for (name, text, why) in cases {
        let conf = t.path().join(name);
        std::fs::write(&conf, text).unwrap();
        let before = sha256_hex(&src);
        let o = hyper2kvm()
            .arg("convert")
            .arg(&src)
            .arg("-o")
            .arg(&out)
            .arg("--configuration")
            .arg(&conf)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        let msg = stderr(&o);
        assert!(msg.contains(name), "{name}: the message must name the file: {msg}");
        assert!(msg.contains(why), "{name}: {msg}");
        if name == "invalid.json" {
            assert!(msg.contains("configuration.hostname.hostname"), "every problem: {msg}");
        }
        assert_eq!(sha256_hex(&src), before);
        assert!(!out.exists(), "{name}: nothing may be written");
    }
}

#[test]
fn vmx_disk_paths_outside_its_directory() {
    let t = scratch();
    let vm = t.path().join("vm");
    std::fs::create_dir(&vm).unwrap();
    let other = t.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let disk = sparse_vmdk_with_data(&other);
    let vmx = |name: &str, file: &str| {
        let p = vm.join(name);
        std::fs::write(
            &p,
            format!(
                ".encoding = \"UTF-8\"\nconfig.version = \"8\"\nvirtualHW.version = \"19\"\n\
                 displayName = \"app\"\nmemsize = \"1024\"\nscsi0.present = \"TRUE\"\n\
                 scsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"{file}\"\n"
            ),
        )
        .unwrap();
        p
    };
    let climbing = vmx("climb.vmx", "../other/src.vmdk");
    rejected(&vm, &climbing, "climb.vmx", "climbs out");
    let absolute = vmx("abs.vmx", &disk.display().to_string());
    rejected(&vm, &absolute, "abs.vmx", "outside the VMX file's directory");
}

#[test]
fn ovf_naming_a_missing_disk() {
    let t = scratch();
    let ovf =
        vmware_ovf("gone", &[("gone-disk1.vmdk", 1 << 30, 1 << 20)], &["00:50:56:00:00:01"], false);
    let p = t.path().join("gone.ovf");
    std::fs::write(&p, ovf).unwrap();
    rejected(t.path(), &p, "gone.ovf", "gone-disk1.vmdk\" named by the descriptor does not exist");
}

#[test]
fn mac_that_is_not_a_mac() {
    let t = scratch();
    let ovf = vmware_ovf("badmac", &[], &["00:50:56:zz:00:01"], false);
    let p = t.path().join("badmac.ovf");
    std::fs::write(&p, ovf).unwrap();
    rejected(t.path(), &p, "badmac.ovf", "\"00:50:56:zz:00:01\" is not a MAC address");
}

#[test]
fn libvirt_xml_that_is_not_a_domain() {
    let t = scratch();
    for (name, text) in [
        ("net.xml", "<network>\n  <name>default</name>\n</network>\n"),
        ("pool.xml", "<?xml version=\"1.0\"?>\n<pool type=\"dir\"><name>p</name></pool>\n"),
    ] {
        let p = t.path().join(name);
        std::fs::write(&p, text).unwrap();
        rejected(t.path(), &p, name, "neither an OVF <Envelope> nor a libvirt <domain>");
    }
}
