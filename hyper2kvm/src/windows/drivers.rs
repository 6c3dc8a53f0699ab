//! Giving a Windows guest the virtio storage driver it boots from: `viostor.sys` copied into
//! `System32\drivers` and its service registered as a boot-start SCSI miniport in the current
//! control set; for Windows before 8, the `CriticalDeviceDatabase` entries that bind it to
//! the virtio-blk PCI ids at boot.
//!
//! Not yet (issue 8 continues): the `DriverDatabase` entries Windows 8 and later use to bind
//! the boot driver, `vioscsi`, the other drivers in `%SystemRoot%\Drivers\VirtIO` with
//! `DevicePath`, the first-boot service, and disabling VMware's services.

use serde::Serialize;

use super::registry::{Hive, RegValue};
use super::virtio_win::{Arch, DriverSource};
use crate::error::{Error, ErrorKind, Result};
use crate::fix::Change;
use crate::guest::Guest;
use crate::guest::inspect::Inspection;

/// The SCSI adapter device class.
pub const SCSI_ADAPTER_CLASS: &str = "{4D36E97B-E325-11CE-BFC1-08002BE10318}";

/// virtio-blk's PCI ids (legacy and modern) as the `CriticalDeviceDatabase` names them.
pub const VIOSTOR_CDD: [&str; 2] = [
    "pci#ven_1af4&dev_1001&subsys_00021af4&rev_00",
    "pci#ven_1af4&dev_1042&subsys_11001af4&rev_01",
];

/// What was injected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Injected {
    /// The virtio-win `<os>` directory the driver came from.
    pub os_dir: String,
    /// The changes, in order.
    pub changes: Vec<Change>,
}

fn gerr(what: &str, e: guestfs::Error) -> Error {
    Error::new(ErrorKind::GuestInspection, format!("{what}: {e:?}"))
}

/// Copies `viostor.sys` from `src` into the guest and registers it as a boot driver.
pub fn inject_viostor(g: &Guest, insp: &Inspection, src: &DriverSource) -> Result<Injected> {
    let w = insp.windows.as_ref().ok_or_else(|| {
        Error::new(ErrorKind::Unsupported, "not a Windows guest (no Windows registry found)")
    })?;
    let arch = Arch::from_inspection(&insp.arch).ok_or_else(|| {
        Error::new(
            ErrorKind::Unsupported,
            format!("no virtio-win drivers for {} guests", insp.arch),
        )
    })?;
    let files = src.driver("viostor", &w.release, arch).ok_or_else(|| {
        Error::new(
            ErrorKind::Unsupported,
            format!(
                "virtio-win at {} has no viostor driver for {} ({}) or an older release",
                src.root.display(),
                w.release.os_dir().unwrap_or("this Windows"),
                arch.dir()
            ),
        )
    })?;
    let sys = files.file("viostor.sys").ok_or_else(|| {
        Error::invalid(&files.dir, "virtio-win: the viostor directory has no viostor.sys")
    })?;
    let h = g.handle();
    let drivers = h
        .case_sensitive_path(&format!("{}/system32/drivers", w.systemroot))
        .map_err(|e| gerr("System32\\drivers", e))?;
    let dest = format!("{drivers}/viostor.sys");
    let existed = g.is_file(&dest);
    h.upload(&sys.to_string_lossy(), &dest).map_err(|e| gerr(&format!("copying {dest}"), e))?;
    let mut changes = vec![Change {
        fixer: "windows-drivers",
        action: if existed { "edit" } else { "create" },
        file: dest,
        old: None,
        new: Some(format!("{} ({})", sys.display(), files.os_dir)),
    }];
    let system = h
        .inspect_get_windows_system_hive(&insp.root_device)
        .map_err(|e| gerr("the SYSTEM hive", e))?;
    let mut hive = Hive::open(g, &system, "HKLM\\SYSTEM")?;
    let ccs = w.current_control_set.as_str();
    let svc = [ccs, "Services", "viostor"];
    hive.set(&svc, "Type", RegValue::Dword(1))?;
    hive.set(&svc, "Start", RegValue::Dword(0))?;
    hive.set(&svc, "ErrorControl", RegValue::Dword(1))?;
    hive.set(&svc, "Group", RegValue::Sz("SCSI miniport".into()))?;
    hive.set(&svc, "ImagePath", RegValue::ExpandSz("system32\\drivers\\viostor.sys".into()))?;
    if w.release.before_windows_8() {
        for dev in VIOSTOR_CDD {
            let key = [ccs, "Control", "CriticalDeviceDatabase", dev];
            hive.set(&key, "Service", RegValue::Sz("viostor".into()))?;
            hive.set(&key, "ClassGUID", RegValue::Sz(SCSI_ADAPTER_CLASS.into()))?;
        }
    }
    changes.extend(hive.commit()?);
    Ok(Injected { os_dir: files.os_dir, changes })
}
