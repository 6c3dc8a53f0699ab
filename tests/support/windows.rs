//! Windows stand-in guests. No real Windows can be installed or booted here, so these disks
//! are built from the real formats a Windows install consists of, as faithfully as needed for
//! inspection and for the offline changes:
//! - an MBR (BIOS) or GPT (UEFI, with an EFI system partition) disk with an NTFS volume made by
//!   libguestfs's `mkfs ntfs` (ntfs-3g's mkntfs) — no loop devices or root mounts;
//! - `Windows/System32/config/SYSTEM` and `SOFTWARE` as real registry hives: an empty hive
//!   written by our own code ([`super::regf`]) and filled by `hivexregedit --merge` with the
//!   keys the release has (version numbers, build, installation type, product name, the
//!   control set and computer name, mounted devices, VMware Tools' uninstall key and services);
//! - `Windows/System32/cmd.exe` with a real PE32+ (AMD64) or PE32 (i386) header;
//! - `Windows/System32/drivers/` and `Program Files/VMware/VMware Tools/`.
//!
//! Images are cached in `/var/tmp/hyper2kvm-test-guests`, keyed by a hash of the recipe.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{guestfish, regf};

/// Which Windows a stand-in imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Windows Server 2019 Datacenter (10.0.17763, server), BIOS.
    Server2019,
    /// Windows Server 2022 Standard (10.0.20348, server), UEFI.
    Server2022,
    /// Windows 10 Pro (10.0.19045, client), BIOS.
    Windows10,
    /// Windows 10 Pro, 32-bit.
    Windows10x86,
    /// Windows 7 Professional SP1 (6.1.7601, client; no `CurrentMajorVersionNumber`), BIOS.
    Windows7,
}

/// What a stand-in's hives and files say it is.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    /// `ProductName`.
    pub product: &'static str,
    /// Major and minor version numbers.
    pub major: u32,
    /// The minor version number.
    pub minor: u32,
    /// `CurrentBuildNumber`.
    pub build: u32,
    /// `InstallationType`.
    pub installation_type: &'static str,
    /// `EditionID`.
    pub edition: &'static str,
    /// The computer name.
    pub host: &'static str,
    /// 64-bit (`cmd.exe` is PE32+).
    pub amd64: bool,
    /// GPT with an EFI system partition.
    pub uefi: bool,
}

impl Release {
    /// What the stand-in of this release holds.
    pub fn facts(self) -> Facts {
        match self {
            Release::Server2019 => Facts {
                product: "Windows Server 2019 Datacenter",
                major: 10,
                minor: 0,
                build: 17763,
                installation_type: "Server",
                edition: "ServerDatacenter",
                host: "WIN2019",
                amd64: true,
                uefi: false,
            },
            Release::Server2022 => Facts {
                product: "Windows Server 2022 Standard",
                major: 10,
                minor: 0,
                build: 20348,
                installation_type: "Server",
                edition: "ServerStandard",
                host: "WIN2022",
                amd64: true,
                uefi: true,
            },
            Release::Windows10 => Facts {
                product: "Windows 10 Pro",
                major: 10,
                minor: 0,
                build: 19045,
                installation_type: "Client",
                edition: "Professional",
                host: "DESKTOP-W10",
                amd64: true,
                uefi: false,
            },
            Release::Windows10x86 => Facts {
                product: "Windows 10 Pro",
                major: 10,
                minor: 0,
                build: 19045,
                installation_type: "Client",
                edition: "Professional",
                host: "DESKTOP-W10X86",
                amd64: false,
                uefi: false,
            },
            Release::Windows7 => Facts {
                product: "Windows 7 Professional",
                major: 6,
                minor: 1,
                build: 7601,
                installation_type: "Client",
                edition: "Professional",
                host: "WIN7-PC",
                amd64: true,
                uefi: false,
            },
        }
    }
}

fn cache_dir() -> PathBuf {
    let d = PathBuf::from("/var/tmp/hyper2kvm-test-guests");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A PE executable's first bytes: DOS header, `PE\0\0`, the COFF header for `machine`, and an
/// optional header with the PE32+ (`0x20b`) or PE32 (`0x10b`) magic.
pub fn pe_header(amd64: bool) -> Vec<u8> {
    let mut f = vec![0u8; 1024];
    f[0..2].copy_from_slice(b"MZ");
    f[0x3C..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    f[0x80..0x84].copy_from_slice(b"PE\0\0");
    let machine: u16 = if amd64 { 0x8664 } else { 0x014C };
    f[0x84..0x86].copy_from_slice(&machine.to_le_bytes());
    f[0x86..0x88].copy_from_slice(&1u16.to_le_bytes()); // sections
    let opt_size: u16 = if amd64 { 240 } else { 224 };
    f[0x94..0x96].copy_from_slice(&opt_size.to_le_bytes());
    f[0x96..0x98].copy_from_slice(&0x0022u16.to_le_bytes()); // executable, large-address-aware
    let magic: u16 = if amd64 { 0x20B } else { 0x10B };
    f[0x98..0x9A].copy_from_slice(&magic.to_le_bytes());
    f[0x98 + 68..0x98 + 70].copy_from_slice(&3u16.to_le_bytes()); // subsystem: console
    f
}

fn utf16_hex(s: &str) -> String {
    let mut v: Vec<String> = Vec::new();
    for u in s.encode_utf16().chain(std::iter::once(0)) {
        let [a, b] = u.to_le_bytes();
        v.push(format!("{a:02x}"));
        v.push(format!("{b:02x}"));
    }
    v.join(",")
}

/// The SOFTWARE hive's `.reg` text for `r`.
pub fn software_reg(r: Release) -> String {
    let Facts { product, major, minor, build, installation_type: itype, edition, .. } = r.facts();
    format!(
        r#"Windows Registry Editor Version 5.00

[\Microsoft]

[\Microsoft\Windows NT]

[\Microsoft\Windows NT\CurrentVersion]
"ProductName"="{product}"
{version_values}"CurrentBuildNumber"="{build}"
"CurrentBuild"="{build}"
"InstallationType"="{itype}"
"EditionID"="{edition}"
"SystemRoot"="C:\\Windows"

[\Microsoft\Windows]

[\Microsoft\Windows\CurrentVersion]
"DevicePath"=hex(2):{devpath}
"ProgramFilesDir"="C:\\Program Files"

[\Microsoft\Windows\CurrentVersion\Uninstall]

[\Microsoft\Windows\CurrentVersion\Uninstall\{{9D2A5B3C-6E4F-4A11-8C1A-0E5A4C3B2D10}}]
"DisplayName"="VMware Tools"
"DisplayVersion"="12.1.5.20735119"
"Publisher"="VMware, Inc."
"UninstallString"="MsiExec.exe /X{{9D2A5B3C-6E4F-4A11-8C1A-0E5A4C3B2D10}}"
"#,
        devpath = utf16_hex("%SystemRoot%\\inf"),
        // Windows 10 keeps CurrentVersion at 6.3 and adds the numbers; Windows 7 has only it.
        version_values = if major >= 10 {
            format!(
                "\"CurrentVersion\"=\"6.3\"\n\"CurrentMajorVersionNumber\"=dword:{major:08x}\n\"CurrentMinorVersionNumber\"=dword:{minor:08x}\n"
            )
        } else {
            format!("\"CurrentVersion\"=\"{major}.{minor}\"\n")
        },
    )
}

/// The SYSTEM hive's `.reg` text for `r`: `Select`, `ControlSet001` with the computer name,
/// VMware's services, `MountedDevices` (C: on the first partition of disk 0x1234abcd), and for
/// Windows 8 and later the `DriverDatabase` (with one in-box package, as installs have).
/// Server 2022 keeps its clock in UTC (`RealTimeIsUniversal`=1), the others in local time.
pub fn system_reg(r: Release) -> String {
    let Facts { major, host, .. } = r.facts();
    let rtc =
        if r == Release::Server2022 { "\"RealTimeIsUniversal\"=dword:00000001\n" } else { "" };
    let mut s = format!(
        r#"Windows Registry Editor Version 5.00

[\Select]
"Current"=dword:00000001
"Default"=dword:00000001
"LastKnownGood"=dword:00000001

[\ControlSet001]

[\ControlSet001\Control]

[\ControlSet001\Control\ComputerName]

[\ControlSet001\Control\ComputerName\ComputerName]
"ComputerName"="{host}"

[\ControlSet001\Control\Session Manager]

[\ControlSet001\Control\Session Manager\Power]
"HiberbootEnabled"=dword:00000000

[\ControlSet001\Control\TimeZoneInformation]
"TimeZoneKeyName"="UTC"
{rtc}
[\ControlSet001\Services]

[\ControlSet001\Services\Tcpip]

[\ControlSet001\Services\Tcpip\Parameters]
"Hostname"="{host}"
"NV Hostname"="{host}"
"#
    );
    for (name, image) in [
        ("VMTools", "\"C:\\\\Program Files\\\\VMware\\\\VMware Tools\\\\vmtoolsd.exe\""),
        ("vmci", "System32\\\\drivers\\\\vmci.sys"),
        ("vm3dmp", "System32\\\\drivers\\\\vm3dmp.sys"),
        ("vmmouse", "System32\\\\drivers\\\\vmmouse.sys"),
        ("vmhgfs", "System32\\\\drivers\\\\vmhgfs.sys"),
        ("vsock", "System32\\\\drivers\\\\vsock.sys"),
        ("LSI_SAS", "System32\\\\drivers\\\\lsi_sas.sys"),
    ] {
        s.push_str(&format!(
            "\n[\\ControlSet001\\Services\\{name}]\n\"Start\"=dword:00000002\n\"Type\"=dword:00000010\n\"ImagePath\"=\"{image}\"\n"
        ));
    }
    // \DosDevices\C: → MBR signature 0x1234abcd, partition offset 1 MiB.
    s.push_str(
        "\n[\\MountedDevices]\n\"\\\\DosDevices\\\\C:\"=hex(3):cd,ab,34,12,00,00,10,00,00,00,00,00\n",
    );
    if major >= 10 {
        s.push_str(
            r#"
[\DriverDatabase]
"Version"=dword:00000001

[\DriverDatabase\DeviceIds]

[\DriverDatabase\DeviceIds\PCI]

[\DriverDatabase\DeviceIds\PCI\VEN_15AD&DEV_07C0]
"pvscsi.inf"=hex:01,ff,00,00

[\DriverDatabase\DriverInfFiles]

[\DriverDatabase\DriverInfFiles\pvscsi.inf]
"Active"="pvscsi.inf_amd64_0c5e2fa1b3d4e5f6"

[\DriverDatabase\DriverPackages]

[\DriverDatabase\DriverPackages\pvscsi.inf_amd64_0c5e2fa1b3d4e5f6]
"InfName"="pvscsi.inf"
"Provider"="VMware, Inc."
"#,
        );
    }
    s
}

/// How the stand-in's last shutdown left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Shut down fully.
    Clean,
    /// Hibernated: `hiberfil.sys` starts with `HIBR`.
    Hibernated,
    /// Shut down with Fast Startup on: `HiberbootEnabled`=1 and a `HIBR` hiberfil.sys.
    FastStartup,
    /// The system volume BitLocker-encrypted: instead of NTFS, the partition starts with a
    /// Windows 7+ BitLocker volume header (`EB 58 90 "-FVE-FS-"`, the FVE metadata block's
    /// offset at byte 176) and holds an FVE metadata block there (`-FVE-FS-`, version 2), which
    /// is what blkid (and so libguestfs) recognises as BitLocker. No key material: the stand-in
    /// cannot be decrypted, as a real one cannot without its recovery key.
    BitLocker,
}

/// The guestfish commands that write the BitLocker headers on `part` (a zeroed partition;
/// guestfish strings cannot hold NUL bytes, so only the non-zero runs are written).
fn bitlocker_headers(part: &str) -> String {
    let esc = |b: &[u8]| b.iter().map(|x| format!("\\x{x:02x}")).collect::<String>();
    let fve_at: u64 = 0x20_0000;
    let mut writes: Vec<(u64, Vec<u8>)> = vec![
        (0, [&[0xEBu8, 0x58, 0x90][..], b"-FVE-FS-"].concat()),
        (12, vec![0x02, 0x08]), // 512 bytes per sector, 8 sectors per cluster
        (160, vec![0x5A; 16]),  // the volume's GUID
        (510, vec![0x55, 0xAA]),
        (fve_at, b"-FVE-FS-".to_vec()),
        (fve_at + 10, vec![0x02]), // FVE metadata version 2
    ];
    // The FVE metadata block's offset, a little-endian u64 at byte 176: its non-zero bytes.
    for (i, byte) in fve_at.to_le_bytes().iter().enumerate() {
        if *byte != 0 {
            writes.push((176 + i as u64, vec![*byte]));
        }
    }
    writes.iter().map(|(at, b)| format!("pwrite-device {part} \"{}\" {at}\n", esc(b))).collect()
}

/// Builds (or takes from the cache) the stand-in disk for `r`, shut down cleanly.
pub fn standin(r: Release) -> PathBuf {
    standin_in(r, State::Clean)
}

/// Builds (or takes from the cache) the stand-in disk for `r` in `state`, as a raw image.
pub fn standin_in(r: Release, state: State) -> PathBuf {
    let Facts { amd64, uefi, .. } = r.facts();
    let mut system = system_reg(r);
    if state == State::FastStartup {
        system = system
            .replace("\"HiberbootEnabled\"=dword:00000000", "\"HiberbootEnabled\"=dword:00000001");
    }
    let recipe = format!("v3 {r:?} {state:?}\n{}\n{system}\n{amd64} {uefi}", software_reg(r));
    let key = super::sha256_bytes(tempfile::tempdir().unwrap().path(), recipe.as_bytes());
    let disk = cache_dir().join(format!("windows-{r:?}-{state:?}-{}.img", &key[..16]));
    if disk.is_file() {
        return disk;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    regf::hive_from_reg(&w.join("SOFTWARE"), "SOFTWARE", &software_reg(r));
    regf::hive_from_reg(&w.join("SYSTEM"), "SYSTEM", &system);
    let mut hiberfil = vec![0u8; 4096];
    hiberfil[..4].copy_from_slice(b"HIBR");
    std::fs::write(w.join("hiberfil.sys"), hiberfil).unwrap();
    let hibernate = if matches!(state, State::Hibernated | State::FastStartup) {
        "upload hiberfil.sys /hiberfil.sys\n"
    } else {
        ""
    };
    std::fs::write(w.join("cmd.exe"), pe_header(amd64)).unwrap();
    std::fs::write(w.join("placeholder"), b"stand-in file").unwrap();
    let part = if uefi {
        "part-init /dev/sda gpt\n\
         part-add /dev/sda p 2048 206847\n\
         part-add /dev/sda p 206848 -2048\n\
         part-set-gpt-type /dev/sda 1 C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n\
         part-set-gpt-type /dev/sda 2 EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n\
         mkfs vfat /dev/sda1\n\
         mkfs ntfs /dev/sda2\n\
         mount /dev/sda1 /\n\
         mkdir-p /EFI/Microsoft/Boot\n\
         upload placeholder /EFI/Microsoft/Boot/bootmgfw.efi\n\
         umount /\n\
         mount /dev/sda2 /\n"
    } else {
        "part-init /dev/sda mbr\n\
         part-add /dev/sda p 2048 -2048\n\
         part-set-bootable /dev/sda 1 true\n\
         part-set-mbr-id /dev/sda 1 0x7\n\
         pwrite-device /dev/sda \"\\xcd\\xab\\x34\\x12\" 440\n\
         mkfs ntfs /dev/sda1\n\
         mount /dev/sda1 /\n"
    };
    let script = if state == State::BitLocker {
        format!(
            "part-init /dev/sda mbr\n\
             part-add /dev/sda p 2048 -2048\n\
             part-set-mbr-id /dev/sda 1 0x7\n\
             {}",
            bitlocker_headers("/dev/sda1")
        )
    } else {
        format!(
            "{part}\
         mkdir-p /Windows/System32/config\n\
         mkdir-p /Windows/System32/drivers\n\
         mkdir-p /Windows/INF\n\
         mkdir-p \"/Program Files/VMware/VMware Tools\"\n\
         upload SOFTWARE /Windows/System32/config/SOFTWARE\n\
         upload SYSTEM /Windows/System32/config/SYSTEM\n\
         upload cmd.exe /Windows/System32/cmd.exe\n\
         upload placeholder /Windows/System32/drivers/vmci.sys\n\
         upload placeholder \"/Program Files/VMware/VMware Tools/vmtoolsd.exe\"\n\
         {hibernate}\
         umount-all\n"
        )
    };
    let tmp = disk.with_extension("img.part");
    let mut cmd = Command::new("guestfish");
    cmd.current_dir(w).arg("-N").arg(format!("{}=disk:512M", tmp.display()));
    let out = guestfish(cmd, &script);
    assert!(
        out.status.success(),
        "guestfish building the {r:?} stand-in: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &disk).unwrap();
    disk
}

/// The model lines of the storage drivers' `.inf` files, as virtio-win's are written.
fn inf_models(driver: &str) -> &'static str {
    match driver {
        "viostor" => {
            "%RHELScsi.DeviceDesc% = rhelscsi_inst, PCI\\VEN_1AF4&DEV_1001&SUBSYS_00021AF4&REV_00\r\n\
             %RHELScsi.DeviceDesc% = rhelscsi_inst, PCI\\VEN_1AF4&DEV_1042&SUBSYS_11001AF4&REV_01\r\n"
        }
        "vioscsi" => {
            "%RHELScsi.DeviceDesc% = scsi_inst, PCI\\VEN_1AF4&DEV_1004&SUBSYS_00081AF4&REV_00\r\n\
             %RHELScsi.DeviceDesc% = scsi_inst, PCI\\VEN_1AF4&DEV_1048&SUBSYS_11001AF4&REV_01\r\n"
        }
        _ => "",
    }
}

/// Makes a virtio-win tree in the ISO layout under `root`, for the drivers and os directories
/// given (`&[("viostor", "2k19", "amd64"), …]`): placeholder `.sys`, `.cat` and `.pdb` files
/// (their text names driver, os, arch and extension) and an `.inf` with the `[Version]` and,
/// for the storage drivers, the model lines virtio-win's have; a `guest-agent` directory with
/// placeholder installers when `agent` is set.
pub fn virtio_win_tree(root: &Path, entries: &[(&str, &str, &str)]) {
    virtio_win_tree_with(root, entries, false)
}

/// [`virtio_win_tree`], with the guest agent's installers when `agent` is set.
pub fn virtio_win_tree_with(root: &Path, entries: &[(&str, &str, &str)], agent: bool) {
    for (driver, os, arch) in entries {
        let d = root.join(driver).join(os).join(arch);
        std::fs::create_dir_all(&d).unwrap();
        let lower = driver.to_ascii_lowercase();
        for ext in ["sys", "cat", "pdb"] {
            std::fs::write(d.join(format!("{lower}.{ext}")), format!("{driver} {os} {arch} {ext}"))
                .unwrap();
        }
        let inf = format!(
            "; {driver} {os} {arch} inf\r\n[Version]\r\nSignature=\"$WINDOWS NT$\"\r\n\
             Provider=%RHEL%\r\n\r\n[Standard.NT{arch}]\r\n{}",
            inf_models(driver)
        );
        std::fs::write(d.join(format!("{lower}.inf")), inf).unwrap();
    }
    if agent {
        let d = root.join("guest-agent");
        std::fs::create_dir_all(&d).unwrap();
        for msi in ["qemu-ga-x86_64.msi", "qemu-ga-i386.msi"] {
            std::fs::write(d.join(msi), format!("{msi} placeholder")).unwrap();
        }
    }
}

/// Packs the tree at `tree` into an ISO 9660 image with Joliet names at `iso`, as the
/// virtio-win ISO is made (genisoimage).
pub fn virtio_win_iso(tree: &Path, iso: &Path) {
    let out = Command::new("genisoimage")
        .args(["-quiet", "-J", "-R", "-V", "virtio-win", "-o"])
        .arg(iso)
        .arg(tree)
        .output()
        .unwrap();
    assert!(out.status.success(), "genisoimage: {}", String::from_utf8_lossy(&out.stderr));
}
