//! A minimal Windows registry hive (`regf`), written from the format's description, for the
//! Windows stand-in guests: hivex cannot create an empty hive and none ships with Debian, but
//! once one exists `hivexregedit --merge` fills it with the keys a real install has.
//!
//! Layout: a 4 KiB base block (`regf`, sequence numbers, version 1.3, the root cell's offset,
//! the size of the bins, and the XOR checksum of its first 508 bytes), then one 4 KiB `hbin`
//! holding the root key (`nk`, flagged as the hive's root with an ASCII name), its security
//! descriptor (`sk`, a self-relative descriptor with no owner, group or ACLs), and one free
//! cell for the rest. Offsets in cells are relative to the first bin (file offset 4096).

#![allow(dead_code)]

use std::path::Path;

const BASE: usize = 4096;
const BIN: usize = 4096;

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_i32(b: &mut [u8], at: usize, v: i32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// 100 ns ticks since 1601 for 2026-11-26 (a fixed time keeps the file reproducible).
const FILETIME: u64 = 134_087_232_000_000_000;

/// The bytes of an empty hive whose root key is `root_name` (e.g. `ROOT`; Windows names the
/// SYSTEM hive's root `ROOT` too, and tools address keys below it).
pub fn empty_hive(root_name: &str) -> Vec<u8> {
    assert!(root_name.is_ascii() && !root_name.is_empty() && root_name.len() < 256);
    let mut f = vec![0u8; BASE + BIN];
    // Cells inside the bin (offsets relative to the bin's start).
    let nk_at = 0x20;
    let nk_len = (4 + 0x4C + root_name.len()).next_multiple_of(8);
    let sk_at = nk_at + nk_len;
    let descriptor = {
        // SECURITY_DESCRIPTOR, self-relative: revision 1, control SE_SELF_RELATIVE, no parts.
        let mut d = vec![0u8; 20];
        d[0] = 1;
        put_u16(&mut d, 2, 0x8000);
        d
    };
    let sk_len = (4 + 0x14 + descriptor.len()).next_multiple_of(8);
    let free_at = sk_at + sk_len;

    // Base block.
    let b = &mut f[..BASE];
    b[0..4].copy_from_slice(b"regf");
    put_u32(b, 0x04, 1); // primary sequence number
    put_u32(b, 0x08, 1); // secondary: equal, so the hive is consistent
    b[0x0C..0x14].copy_from_slice(&FILETIME.to_le_bytes());
    put_u32(b, 0x14, 1); // major version
    put_u32(b, 0x18, 3); // minor version
    put_u32(b, 0x1C, 0); // primary file
    put_u32(b, 0x20, 1); // direct memory load
    put_u32(b, 0x24, nk_at as u32); // root cell
    put_u32(b, 0x28, BIN as u32); // size of the bins
    put_u32(b, 0x2C, 1); // clustering factor
    let checksum = (0..0x1FC)
        .step_by(4)
        .fold(0u32, |x, i| x ^ u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]));
    put_u32(b, 0x1FC, checksum);

    // The bin.
    let h = &mut f[BASE..];
    h[0..4].copy_from_slice(b"hbin");
    put_u32(h, 0x04, 0); // its offset from the first bin
    put_u32(h, 0x08, BIN as u32);
    h[0x14..0x1C].copy_from_slice(&FILETIME.to_le_bytes());

    // The root key.
    put_i32(h, nk_at, -(nk_len as i32)); // allocated
    let k = nk_at + 4;
    h[k..k + 2].copy_from_slice(b"nk");
    put_u16(h, k + 0x02, 0x2C); // KEY_HIVE_ENTRY | KEY_NO_DELETE | KEY_COMP_NAME
    h[k + 0x04..k + 0x0C].copy_from_slice(&FILETIME.to_le_bytes());
    put_u32(h, k + 0x10, 0xFFFF_FFFF); // parent: none
    put_u32(h, k + 0x14, 0); // subkeys
    put_u32(h, k + 0x18, 0); // volatile subkeys
    put_u32(h, k + 0x1C, 0xFFFF_FFFF); // subkey list
    put_u32(h, k + 0x20, 0xFFFF_FFFF); // volatile subkey list
    put_u32(h, k + 0x24, 0); // values
    put_u32(h, k + 0x28, 0xFFFF_FFFF); // value list
    put_u32(h, k + 0x2C, sk_at as u32); // security
    put_u32(h, k + 0x30, 0xFFFF_FFFF); // class name
    put_u16(h, k + 0x48, root_name.len() as u16);
    put_u16(h, k + 0x4A, 0); // class name length
    h[k + 0x4C..k + 0x4C + root_name.len()].copy_from_slice(root_name.as_bytes());

    // Its security cell: a one-element list that points at itself.
    put_i32(h, sk_at, -(sk_len as i32));
    let s = sk_at + 4;
    h[s..s + 2].copy_from_slice(b"sk");
    put_u32(h, s + 0x04, sk_at as u32); // flink
    put_u32(h, s + 0x08, sk_at as u32); // blink
    put_u32(h, s + 0x0C, 1); // reference count
    put_u32(h, s + 0x10, descriptor.len() as u32);
    h[s + 0x14..s + 0x14 + descriptor.len()].copy_from_slice(&descriptor);

    // The rest of the bin is one free cell.
    put_i32(h, free_at, (BIN - free_at) as i32);
    f
}

/// Writes an empty hive to `path`, then merges `reg` (a `.reg` text: `Windows Registry Editor
/// Version 5.00` with every parent key listed) into it with `hivexregedit --merge`, keys
/// relative to the root (`--prefix` is given as the root's name).
pub fn hive_from_reg(path: &Path, root_name: &str, reg: &str) {
    std::fs::write(path, empty_hive(root_name)).unwrap();
    let reg_path = path.with_extension("reg");
    std::fs::write(&reg_path, reg).unwrap();
    let out = std::process::Command::new("hivexregedit")
        .args(["--merge", "--prefix", root_name])
        .arg(path)
        .arg(&reg_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hivexregedit --merge {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `hivexregedit --export` of the whole hive, keys prefixed with `root_name`.
pub fn export(path: &Path, root_name: &str) -> String {
    let out = std::process::Command::new("hivexregedit")
        .args(["--export", "--unsafe-printable-strings", "--prefix", root_name])
        .arg(path)
        .arg("\\")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
