//! Builders for real test images, shared by the Rust test suites (`#[path]`-included).
//!
//! Most images are made by the real `qemu-img` (and filled with `qemu-io`); formats or
//! variants that qemu cannot write are built byte by byte here from their specifications: a
//! VMware-style stream-optimized VMDK (grain directory at the end, footer, markers), vmfs and
//! vmfsThin descriptors, a VHD differencing disk, an ISO 9660 volume, and tar archives with
//! arbitrary (also hostile) member names.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub mod regf;
pub mod windows;

/// Runs a command, panicking with its stderr on failure.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `qemu-img create -f FMT [-o OPTS] PATH SIZE`.
pub fn qemu_create(path: &Path, fmt: &str, opts: Option<&str>, size: &str) {
    let mut c = Command::new("qemu-img");
    c.args(["create", "-q", "-f", fmt]);
    if let Some(o) = opts {
        c.args(["-o", o]);
    }
    sh(c.arg(path).arg(size));
}

/// Writes `len` bytes of `pattern` at `offset` into an image through `qemu-io`.
pub fn qemu_write(path: &Path, fmt: &str, pattern: u8, offset: u64, len: u64) {
    sh(Command::new("qemu-io")
        .args(["-f", fmt, "-c", &format!("write -P {pattern} {offset} {len}")])
        .arg(path));
}

/// Deterministic pseudo-random bytes (xorshift), so compressed data is not trivially small.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A raw image of `size` bytes with distinctive data at a few offsets.
pub fn raw_with_data(path: &Path, size: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&noise(1 << 20, 7), 0).unwrap();
    f.write_all_at(&noise(300_000, 9), size / 2 + 4096).unwrap();
    f.write_all_at(b"end marker", size - 512).unwrap();
}

/// Converts a raw file to `fmt` with qemu-img.
pub fn qemu_from_raw(raw: &Path, out: &Path, fmt: &str, opts: Option<&str>) {
    let mut c = Command::new("qemu-img");
    c.args(["convert", "-q", "-f", "raw", "-O", fmt]);
    if let Some(o) = opts {
        c.args(["-o", o]);
    }
    sh(c.arg(raw).arg(out));
}

fn put_le32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_le64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn put_be32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
fn put_be64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

fn pad_to_sector(v: &mut Vec<u8>) {
    let rem = v.len() % 512;
    if rem != 0 {
        v.resize(v.len() + 512 - rem, 0);
    }
}

/// Builds a stream-optimized VMDK the way VMware's exporter writes it: header with
/// `gdOffset = GD_AT_END`, embedded descriptor, compressed grains each behind a grain marker,
/// grain tables and directory behind their markers, then footer marker, footer, end-of-stream.
/// Returns the guest-visible bytes as a raw image alongside (for comparisons).
pub fn vmware_stream_optimized(path: &Path, raw_out: &Path, capacity: u64) {
    const GRAIN: u64 = 128; // sectors
    const GTES: u64 = 512;
    let sectors = capacity / 512;
    // Guest data: noise in the first MiB, a pattern in the middle, zeros elsewhere.
    let mut disk = vec![0u8; capacity as usize];
    disk[..1 << 20].copy_from_slice(&noise(1 << 20, 3));
    let mid = (capacity / 2) as usize;
    disk[mid..mid + 200_000].fill(0xab);
    std::fs::write(raw_out, &disk).unwrap();

    let header = |gd_offset: u64| {
        let mut h = vec![0u8; 512];
        h[0..4].copy_from_slice(b"KDMV");
        put_le32(&mut h, 4, 3);
        put_le32(&mut h, 8, 1 | (1 << 16) | (1 << 17));
        put_le64(&mut h, 12, sectors);
        put_le64(&mut h, 20, GRAIN);
        put_le64(&mut h, 28, 1);
        put_le64(&mut h, 36, 20);
        put_le32(&mut h, 44, GTES as u32);
        put_le64(&mut h, 48, 0);
        put_le64(&mut h, 56, gd_offset);
        put_le64(&mut h, 64, 128);
        h[73] = b'\n';
        h[74] = b' ';
        h[75] = b'\r';
        h[76] = b'\n';
        h[77..79].copy_from_slice(&1u16.to_le_bytes());
        h
    };
    let mut out = header(u64::MAX);
    let mut desc = format!(
        "# Disk DescriptorFile\nversion=1\nCID=1a2b3c4d\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\n\n# Extent description\nRW {sectors} SPARSE \"{}\"\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\nddb.virtualHWVersion = \"14\"\n",
        path.file_name().unwrap().to_string_lossy()
    )
    .into_bytes();
    desc.resize(20 * 512, 0);
    out.extend_from_slice(&desc);
    out.resize(128 * 512, 0);
    let grains = sectors.div_ceil(GRAIN);
    let mut gt = vec![0u32; grains.next_multiple_of(GTES) as usize];
    for g in 0..grains {
        let start = (g * GRAIN * 512) as usize;
        let end = (start + (GRAIN * 512) as usize).min(disk.len());
        let chunk = &disk[start..end];
        if chunk.iter().all(|&b| b == 0) {
            continue;
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(chunk).unwrap();
        let data = z.finish().unwrap();
        gt[g as usize] = (out.len() / 512) as u32;
        out.extend_from_slice(&(g * GRAIN).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&data);
        pad_to_sector(&mut out);
    }
    let marker = |out: &mut Vec<u8>, sectors_following: u64, kind: u32| {
        let mut m = vec![0u8; 512];
        put_le64(&mut m, 0, sectors_following);
        put_le32(&mut m, 12, kind);
        out.extend_from_slice(&m);
    };
    let mut gd = Vec::new();
    for table in gt.chunks(GTES as usize) {
        marker(&mut out, 4, 1);
        gd.push((out.len() / 512) as u32);
        for e in table {
            out.extend_from_slice(&e.to_le_bytes());
        }
    }
    marker(&mut out, (gd.len() as u64 * 4).div_ceil(512), 2);
    let gd_offset = (out.len() / 512) as u64;
    for e in &gd {
        out.extend_from_slice(&e.to_le_bytes());
    }
    pad_to_sector(&mut out);
    marker(&mut out, 1, 3);
    out.extend_from_slice(&header(gd_offset));
    out.extend_from_slice(&[0u8; 512]);
    std::fs::write(path, out).unwrap();
}

/// A VMDK text descriptor of `create_type` with one flat extent of kind `extent_kind`
/// (`FLAT` or `VMFS`) on `flat` (which must exist), as ESXi writes it: a `VMFS` extent line
/// carries no offset, a `FLAT` one does.
pub fn flat_descriptor(
    path: &Path,
    create_type: &str,
    extent_kind: &str,
    flat_name: &str,
    sectors: u64,
) {
    let offset = if extent_kind == "FLAT" { " 0" } else { "" };
    let text = format!(
        "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"{create_type}\"\n\n# Extent description\nRW {sectors} {extent_kind} \"{flat_name}\"{offset}\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"pvscsi\"\nddb.thinProvisioned = \"1\"\nddb.virtualHWVersion = \"19\"\n"
    );
    std::fs::write(path, text).unwrap();
}

/// VHD checksum: one's complement of the byte sum without the checksum field.
fn vhd_checksum(b: &[u8], at: usize) -> u32 {
    let sum = b
        .iter()
        .enumerate()
        .filter(|(i, _)| !(at..at + 4).contains(i))
        .fold(0u32, |a, (_, x)| a.wrapping_add(*x as u32));
    !sum
}

/// Builds a dynamic VHD `parent` with qemu-img, then a differencing child by hand whose one
/// allocated block overrides the first 4 KiB of block 1 (bitmap bits set for those sectors).
/// Returns the child's expected guest content as a raw file at `expected_raw`.
pub fn vhd_differencing(parent: &Path, child: &Path, expected_raw: &Path) {
    let size: u64 = 16 << 20;
    let raw = parent.with_extension("parent.raw");
    raw_with_data(&raw, size);
    qemu_from_raw(&raw, parent, "vpc", Some("subformat=dynamic"));
    let pbytes = std::fs::read(parent).unwrap();
    let mut footer = pbytes[pbytes.len() - 512..].to_vec();
    put_be32(&mut footer, 60, 4); // differencing
    footer[68..84].copy_from_slice(&[0x42; 16]);
    let vsize = u64::from_be_bytes(footer[48..56].try_into().unwrap());
    let block: u64 = 2 << 20;
    let entries = vsize.div_ceil(block) as u32;
    let mut dynh = vec![0u8; 1024];
    dynh[0..8].copy_from_slice(b"cxsparse");
    put_be64(&mut dynh, 8, u64::MAX);
    let bat_at: u64 = 512 + 1024 + 1024; // footer copy, dynamic header, locator data
    put_be64(&mut dynh, 16, bat_at);
    put_be32(&mut dynh, 24, 0x0001_0000);
    put_be32(&mut dynh, 28, entries);
    put_be32(&mut dynh, 32, block as u32);
    dynh[40..56].copy_from_slice(&pbytes[pbytes.len() - 512 + 68..pbytes.len() - 512 + 84]);
    let name = parent.file_name().unwrap().to_string_lossy().into_owned();
    for (i, u) in name.encode_utf16().enumerate() {
        dynh[64 + i * 2..66 + i * 2].copy_from_slice(&u.to_be_bytes());
    }
    let rel: Vec<u8> = format!(".\\{name}").encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    dynh[576..580].copy_from_slice(b"W2ru");
    put_be32(&mut dynh, 580, 512);
    put_be32(&mut dynh, 584, rel.len() as u32);
    put_be64(&mut dynh, 592, 1536);
    let c = vhd_checksum(&dynh, 36);
    put_be32(&mut dynh, 36, c);
    let c = vhd_checksum(&footer, 64);
    put_be32(&mut footer, 64, c);
    let mut out = Vec::new();
    out.extend_from_slice(&footer);
    out.extend_from_slice(&dynh);
    let mut loc = rel.clone();
    loc.resize(1024, 0);
    out.extend_from_slice(&loc);
    let mut bat = vec![0xffu8; (entries as usize * 4).next_multiple_of(512)];
    let data_sector = ((bat_at as usize + bat.len()) / 512) as u32;
    put_be32(&mut bat, 4, data_sector); // block 1
    out.extend_from_slice(&bat);
    let mut bitmap = vec![0u8; 512];
    bitmap[0] = 0xff; // sectors 0..8 of the block come from the child
    out.extend_from_slice(&bitmap);
    let mut data = vec![0u8; block as usize];
    data[..4096].fill(0xcd);
    out.extend_from_slice(&data);
    out.extend_from_slice(&footer);
    std::fs::write(child, out).unwrap();
    let mut expected = std::fs::read(&raw).unwrap();
    expected.resize(vsize as usize, 0);
    expected[block as usize..block as usize + 4096].fill(0xcd);
    std::fs::write(expected_raw, expected).unwrap();
    std::fs::remove_file(raw).unwrap();
}

/// A minimal ISO 9660 image: system area, a primary volume descriptor, a terminator.
pub fn iso(path: &Path, blocks: u32) {
    let mut img = vec![0u8; blocks as usize * 2048];
    let pvd = &mut img[16 * 2048..17 * 2048];
    pvd[0] = 1;
    pvd[1..6].copy_from_slice(b"CD001");
    pvd[6] = 1;
    pvd[40..72].copy_from_slice(format!("{:<32}", "HYPER2KVM_TEST").as_bytes());
    pvd[80..84].copy_from_slice(&blocks.to_le_bytes());
    pvd[84..88].copy_from_slice(&blocks.to_be_bytes());
    pvd[128..130].copy_from_slice(&2048u16.to_le_bytes());
    let term = &mut img[17 * 2048..18 * 2048];
    term[0] = 255;
    term[1..6].copy_from_slice(b"CD001");
    term[6] = 1;
    std::fs::write(path, img).unwrap();
}

/// Appends one ustar member with any name (also hostile ones the tar crate would refuse).
pub fn tar_member(out: &mut Vec<u8>, name: &str, data: &[u8], typeflag: u8) {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[148..156].fill(b' ');
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    pad_to_sector(out);
}

/// Ends a tar archive.
pub fn tar_end(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0u8; 1024]);
}

/// An OVF descriptor in the shape VMware's exporter writes, for the given disks
/// (file name, capacity bytes) and NIC MACs.
pub fn vmware_ovf(name: &str, disks: &[(&str, u64, u64)], macs: &[&str], efi: bool) -> String {
    let mut refs = String::new();
    let mut disk_sec = String::new();
    let mut items = String::new();
    let mut id = 10;
    for (i, (file, capacity, size)) in disks.iter().enumerate() {
        refs.push_str(&format!(
            "    <File ovf:href=\"{file}\" ovf:id=\"file{}\" ovf:size=\"{size}\"/>\n",
            i + 1
        ));
        disk_sec.push_str(&format!(
            "    <Disk ovf:capacity=\"{}\" ovf:capacityAllocationUnits=\"byte * 2^20\" ovf:diskId=\"vmdisk{}\" ovf:fileRef=\"file{}\" ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\" ovf:populatedSize=\"{size}\"/>\n",
            capacity >> 20, i + 1, i + 1
        ));
        items.push_str(&format!(
            "      <Item>\n        <rasd:AddressOnParent>{i}</rasd:AddressOnParent>\n        <rasd:ElementName>Hard disk {}</rasd:ElementName>\n        <rasd:HostResource>ovf:/disk/vmdisk{}</rasd:HostResource>\n        <rasd:InstanceID>{id}</rasd:InstanceID>\n        <rasd:Parent>3</rasd:Parent>\n        <rasd:ResourceType>17</rasd:ResourceType>\n      </Item>\n",
            i + 1, i + 1
        ));
        id += 1;
    }
    for (i, mac) in macs.iter().enumerate() {
        items.push_str(&format!(
            "      <Item>\n        <rasd:Address>{mac}</rasd:Address>\n        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>\n        <rasd:Connection>VM Network</rasd:Connection>\n        <rasd:ElementName>Network adapter {}</rasd:ElementName>\n        <rasd:InstanceID>{id}</rasd:InstanceID>\n        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>\n        <rasd:ResourceType>10</rasd:ResourceType>\n      </Item>\n",
            i + 1
        ));
        id += 1;
    }
    let firmware = if efi { "efi" } else { "bios" };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!--Generated by VMware ovftool 4.4.3 (build-18663434), UTC time: 2026-11-01T10:00:00.000Z-->
<Envelope vmw:buildId="build-18663434" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
{refs}  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
{disk_sec}  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network">
      <Description>The VM Network network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A virtual machine</Info>
    <Name>{name}</Name>
    <OperatingSystemSection ovf:id="96" vmw:osType="debian11_64Guest">
      <Info>The kind of installed guest operating system</Info>
      <Description>Debian GNU/Linux 11 (64-bit)</Description>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{name}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-19</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of Virtual CPUs</rasd:Description>
        <rasd:ElementName>2 virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>2</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory Size</rasd:Description>
        <rasd:ElementName>2048MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>2048</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI Controller</rasd:Description>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
{items}      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="{firmware}"/>
      <vmw:Config ovf:required="false" vmw:key="uefi.secureBoot.enabled" vmw:value="false"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"#
    )
}

/// SHA-256 of a byte slice as hex, via the system's `sha256sum` (independent of our code).
pub fn sha256_hex(path: &Path) -> String {
    sh(Command::new("sha256sum").arg(path)).split_whitespace().next().unwrap().to_string()
}

/// SHA-256 of in-memory bytes via `sha256sum`.
pub fn sha256_bytes(dir: &Path, data: &[u8]) -> String {
    let p = dir.join(".hash-tmp");
    std::fs::write(&p, data).unwrap();
    let h = sha256_hex(&p);
    std::fs::remove_file(p).unwrap();
    h
}

/// Builds an uncompressed OVA named `ova` holding an OVF, a SHA256 manifest and the given
/// disk files (already made). Returns the OVF text.
pub fn build_ova(ova: &Path, vm: &str, disks: &[(&Path, u64)], macs: &[&str]) -> String {
    let dir = ova.parent().unwrap();
    let entries: Vec<(String, u64, u64, Vec<u8>)> = disks
        .iter()
        .map(|(p, cap)| {
            let data = std::fs::read(p).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), *cap, data.len() as u64, data)
        })
        .collect();
    let spec: Vec<(&str, u64, u64)> =
        entries.iter().map(|(n, c, s, _)| (n.as_str(), *c, *s)).collect();
    let ovf = vmware_ovf(vm, &spec, macs, false);
    let mut mf = format!("SHA256({vm}.ovf)= {}\n", sha256_bytes(dir, ovf.as_bytes()));
    for (n, _, _, d) in &entries {
        mf.push_str(&format!("SHA256({n})= {}\n", sha256_bytes(dir, d)));
    }
    let mut tar = Vec::new();
    tar_member(&mut tar, &format!("{vm}.ovf"), ovf.as_bytes(), b'0');
    tar_member(&mut tar, &format!("{vm}.mf"), mf.as_bytes(), b'0');
    for (n, _, _, d) in &entries {
        tar_member(&mut tar, n, d, b'0');
    }
    tar_end(&mut tar);
    std::fs::write(ova, tar).unwrap();
    ovf
}

/// A scratch directory for one test, under the target directory's tmp (cleaned on drop).
pub fn scratch() -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new().prefix("h2k-").tempdir_in(base).unwrap()
}

/// Runs `cmd` (a `guestfish` command line, under TCG) with `script` on its standard input.
pub fn guestfish(mut cmd: Command, script: &str) -> std::process::Output {
    cmd.env("LIBGUESTFS_BACKEND", "direct")
        .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(script.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap()
}

/// `qemu-img compare` of a raw reference with a qcow2 output: they must hold the same data.
pub fn same_qcow2(reference: &Path, out: &Path) {
    let o = Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", "qcow2"])
        .arg(reference)
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}: {}", out.display(), String::from_utf8_lossy(&o.stdout));
}

/// Runs `tests/kubernetes/validate.py` on `paths` (the published Kubernetes, KubeVirt and CDI
/// schemas, then `kubectl create --dry-run=client`) and asserts that every document passed;
/// returns what it printed.
pub fn kubernetes_valid(paths: &[&Path]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let o = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/kubernetes/validate.py"))
        .args(paths)
        .output()
        .expect("run tests/kubernetes/validate.py (make setup installs its tools)");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    out
}
