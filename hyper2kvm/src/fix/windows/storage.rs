//! Giving a Windows guest the virtio storage driver it boots from (`viostor` for virtio-blk,
//! `vioscsi` for virtio-scsi): the `.sys` copied into `System32\drivers`, its service
//! registered as a boot-start SCSI miniport in the current control set, and the entries that
//! bind it to the virtio PCI ids before Plug and Play runs: the `CriticalDeviceDatabase`
//! before Windows 8, the `DriverDatabase` (driver store index) from Windows 8 on.

use sha2::{Digest, Sha256};

use super::virtio_win::{Arch, DriverFiles};
use crate::error::{Error, ErrorKind, Result};
use crate::guest::Guest;
use crate::guest::registry::{Hive, RegValue};
use crate::guest::windows::WindowsInfo;
use crate::guest::{Action, Change};

/// The SCSI adapter device class.
pub const SCSI_ADAPTER_CLASS: &str = "{4D36E97B-E325-11CE-BFC1-08002BE10318}";

/// A virtio storage driver and the PCI devices it drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageDriver {
    /// `viostor` or `vioscsi`.
    pub name: &'static str,
    /// Legacy and modern hardware ids, as the driver's `.inf` lists them.
    pub hardware_ids: [&'static str; 2],
    /// The `.inf` install section (when the `.inf` does not say).
    pub section: &'static str,
    /// The device description.
    pub description: &'static str,
}

/// virtio-blk.
pub const VIOSTOR: StorageDriver = StorageDriver {
    name: "viostor",
    hardware_ids: [
        "PCI\\VEN_1AF4&DEV_1001&SUBSYS_00021AF4&REV_00",
        "PCI\\VEN_1AF4&DEV_1042&SUBSYS_11001AF4&REV_01",
    ],
    section: "rhelscsi_inst",
    description: "Red Hat VirtIO SCSI controller",
};

/// virtio-scsi.
pub const VIOSCSI: StorageDriver = StorageDriver {
    name: "vioscsi",
    hardware_ids: [
        "PCI\\VEN_1AF4&DEV_1004&SUBSYS_00081AF4&REV_00",
        "PCI\\VEN_1AF4&DEV_1048&SUBSYS_11001AF4&REV_01",
    ],
    section: "scsi_inst",
    description: "Red Hat VirtIO SCSI pass-through controller",
};

impl StorageDriver {
    /// `PCI\VEN_1AF4&DEV_1001&…` → `VEN_1AF4&DEV_1001`.
    fn ven_dev(id: &str) -> String {
        let tail = id.trim_start_matches("PCI\\");
        tail.split('&').take(2).collect::<Vec<_>>().join("&")
    }

    /// The `CriticalDeviceDatabase` key names (`pci#ven_1af4&dev_1001&subsys_00021af4&rev_00`).
    pub fn cdd_keys(&self) -> Vec<String> {
        self.hardware_ids.iter().map(|id| id.replace('\\', "#").to_ascii_lowercase()).collect()
    }
}

/// What the driver's `.inf` says: its install section and hardware ids (virtio ones only).
pub fn read_inf(inf: &[u8], fallback: &StorageDriver) -> (String, Vec<String>) {
    let text = String::from_utf8_lossy(inf);
    let mut section = None;
    let mut ids = Vec::new();
    for line in text.lines() {
        let line = line.split(';').next().unwrap_or_default();
        let Some((_, rhs)) = line.split_once('=') else { continue };
        let parts: Vec<&str> = rhs.split(',').map(str::trim).collect();
        if parts.len() < 2 || !parts[1].to_ascii_uppercase().starts_with("PCI\\VEN_1AF4&") {
            continue;
        }
        section.get_or_insert_with(|| parts[0].to_string());
        for id in &parts[1..] {
            if !ids.iter().any(|i: &String| i.eq_ignore_ascii_case(id)) {
                ids.push(id.to_string());
            }
        }
    }
    if ids.is_empty() {
        ids = fallback.hardware_ids.iter().map(|s| s.to_string()).collect();
    }
    (section.unwrap_or_else(|| fallback.section.to_string()), ids)
}

fn gerr(what: &str, e: guestfs::Error) -> Error {
    Error::new(ErrorKind::GuestInspection, format!("{what}: {e:?}"))
}

/// Copies the driver's `.sys` into `System32\drivers` (the guest's `drivers` directory at
/// `drivers_dir`) and records it.
pub fn copy_sys(g: &Guest, files: &DriverFiles, drivers_dir: &str) -> Result<Change> {
    let name = format!("{}.sys", files.driver.to_ascii_lowercase());
    let sys = files.file(&name).ok_or_else(|| {
        Error::invalid(
            &files.dir,
            format!("virtio-win: the {} directory has no {name}", files.driver),
        )
    })?;
    let dest = format!("{drivers_dir}/{name}");
    let existed = g.is_file(&dest);
    g.handle()
        .upload(&sys.to_string_lossy(), &dest)
        .map_err(|e| gerr(&format!("copying {dest}"), e))?;
    Ok(Change {
        fixer: "windows-drivers",
        action: if existed { Action::Edit } else { Action::Create },
        file: dest,
        old: None,
        new: Some(format!("{} ({})", sys.display(), files.os_dir)),
    })
}

/// Registers `driver` (whose files are `files`) as a boot driver in the SYSTEM hive `hive`.
/// `driver_store` is the Windows path the package's `.inf` was copied to.
pub fn register(
    hive: &mut Hive<'_>,
    w: &WindowsInfo,
    arch: Arch,
    driver: &StorageDriver,
    files: &DriverFiles,
    driver_store: &str,
) -> Result<()> {
    let ccs = w.current_control_set.as_str();
    let svc = [ccs, "Services", driver.name];
    hive.set(&svc, "Type", RegValue::Dword(1))?;
    hive.set(&svc, "Start", RegValue::Dword(0))?;
    hive.set(&svc, "ErrorControl", RegValue::Dword(1))?;
    hive.set(&svc, "Group", RegValue::Sz("SCSI miniport".into()))?;
    let image = format!("system32\\drivers\\{}.sys", driver.name);
    hive.set(&svc, "ImagePath", RegValue::ExpandSz(image))?;
    // StorPort asks the miniport for its PnP interface: 5 = PCI.
    hive.set(
        &[ccs, "Services", driver.name, "Parameters", "PnpInterface"],
        "5",
        RegValue::Dword(1),
    )?;
    let inf_bytes = match files.inf() {
        Some(p) => std::fs::read(p).map_err(|e| Error::io(p, "reading the driver's .inf", e))?,
        None => Vec::new(),
    };
    let (section, ids) = read_inf(&inf_bytes, driver);
    if hive.node(&["DriverDatabase"]).is_none() {
        for key in driver.cdd_keys() {
            let k = [ccs, "Control", "CriticalDeviceDatabase", key.as_str()];
            hive.set(&k, "Service", RegValue::Sz(driver.name.into()))?;
            hive.set(&k, "ClassGUID", RegValue::Sz(SCSI_ADAPTER_CLASS.into()))?;
        }
        return Ok(());
    }
    let inf = format!("{}.inf", driver.name);
    let hash = Sha256::digest(&inf_bytes);
    let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let label = format!("{inf}_{}_{hex}", arch.dir());
    let db = "DriverDatabase";
    hive.set(&[db, "DriverInfFiles", &inf], "", RegValue::MultiSz(vec![label.clone()]))?;
    hive.set(&[db, "DriverInfFiles", &inf], "Active", RegValue::Sz(label.clone()))?;
    hive.set(
        &[db, "DriverInfFiles", &inf],
        "Configurations",
        RegValue::MultiSz(vec![section.clone()]),
    )?;
    // The rank Plug and Play gives the match: a signed in-box-class driver, hardware id 0.
    let rank = RegValue::Binary(vec![0x01, 0xff, 0x00, 0x00]);
    let mut keys: Vec<String> = ids.iter().map(|i| StorageDriver::ven_dev(i)).collect();
    keys.extend(ids.iter().map(|i| i.trim_start_matches("PCI\\").to_string()));
    keys.dedup();
    for k in &keys {
        hive.set(&[db, "DeviceIds", "PCI", k], &inf, rank.clone())?;
    }
    let pkg = [db, "DriverPackages", label.as_str()];
    hive.set(&pkg, "", RegValue::Sz(inf.clone()))?;
    hive.set(&pkg, "InfName", RegValue::Sz(inf.clone()))?;
    hive.set(&pkg, "OemPath", RegValue::Sz(driver_store.into()))?;
    hive.set(&pkg, "Provider", RegValue::Sz("Red Hat, Inc.".into()))?;
    hive.set(&pkg, "F6", RegValue::Dword(1))?;
    hive.set(&pkg, "SignerScore", RegValue::Dword(0x0d00_0005))?;
    hive.set(&pkg, "StatusFlags", RegValue::Dword(0x12))?;
    let conf = [db, "DriverPackages", label.as_str(), "Configurations", section.as_str()];
    hive.set(&conf, "ConfigFlags", RegValue::Dword(0))?;
    hive.set(&conf, "Service", RegValue::Sz(driver.name.into()))?;
    for id in &ids {
        let hw = id.trim_start_matches("PCI\\");
        let d = [db, "DriverPackages", label.as_str(), "Descriptors", "PCI", hw];
        hive.set(&d, "Configuration", RegValue::Sz(section.clone()))?;
        hive.set(&d, "Manufacturer", RegValue::Sz("Red Hat, Inc.".into()))?;
        hive.set(&d, "Description", RegValue::Sz(driver.description.into()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inf_sections_and_ids_are_read_with_fallbacks() {
        let inf = b"[Version]\r\nSignature=\"$WINDOWS NT$\"\r\n[Standard.NTamd64]\r\n\
            %RHELScsi.DeviceDesc% = rhelscsi_inst, PCI\\VEN_1AF4&DEV_1001&SUBSYS_00021AF4&REV_00 ; legacy\r\n\
            %RHELScsi.DeviceDesc% = rhelscsi_inst, PCI\\VEN_1AF4&DEV_1042&SUBSYS_11001AF4&REV_01\r\n";
        let (s, ids) = read_inf(inf, &VIOSCSI);
        assert_eq!(s, "rhelscsi_inst");
        assert_eq!(
            ids,
            [
                "PCI\\VEN_1AF4&DEV_1001&SUBSYS_00021AF4&REV_00",
                "PCI\\VEN_1AF4&DEV_1042&SUBSYS_11001AF4&REV_01"
            ]
        );
        let (s, ids) = read_inf(b"placeholder", &VIOSCSI);
        assert_eq!((s.as_str(), ids.len()), ("scsi_inst", 2));
        assert_eq!(StorageDriver::ven_dev(&ids[1]), "VEN_1AF4&DEV_1048");
        assert_eq!(VIOSTOR.cdd_keys()[0], "pci#ven_1af4&dev_1001&subsys_00021af4&rev_00");
    }
}
