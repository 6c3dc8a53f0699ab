//! What a Windows guest is, read offline from its registry hives through libguestfs's hivex
//! calls (read-only) and from its files: the system root, the current control set, version
//! numbers, build, edition and installation type, drive letters, VMware Tools (uninstall keys
//! and services), hibernation or Fast Startup state, and BitLocker.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Guest;
use super::registry::Hive;

/// A Windows release, from the SOFTWARE hive's version numbers and installation type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WindowsRelease {
    /// `CurrentMajorVersionNumber` (or the major part of `CurrentVersion`).
    pub major: u32,
    /// `CurrentMinorVersionNumber` (or the minor part).
    pub minor: u32,
    /// `CurrentBuildNumber`.
    pub build: u32,
    /// `InstallationType` is `Server` (or `Server Core`).
    pub server: bool,
}

/// VMware's services and drivers that stop mattering on KVM (set to `Start`=4 at conversion).
pub const VMWARE_SERVICES: [&str; 14] = [
    "vmtools",
    "VMTools",
    "VGAuthService",
    "vmci",
    "vm3dmp",
    "vm3dservice",
    "vmmouse",
    "vmusbmouse",
    "vmhgfs",
    "vmrawdsk",
    "vmmemctl",
    "vsock",
    "vmxnet3ndis6",
    "vmvss",
];

/// An installed VMware Tools, from an Uninstall key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmwareTools {
    /// `DisplayName`.
    pub name: String,
    /// `DisplayVersion`.
    pub version: Option<String>,
    /// The MSI product code (the key's name, `{…}`), for `MsiExec /X`.
    pub product_code: Option<String>,
}

/// The Windows-specific part of an inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowsInfo {
    /// `/Windows` or `/WINNT`, as the guest spells it.
    pub systemroot: String,
    /// `ControlSet001`, from `SYSTEM\Select\Current`.
    pub current_control_set: String,
    /// The release (version numbers, build, server or client).
    pub release: WindowsRelease,
    /// `EditionID` (`ServerDatacenter`, `Professional`, …).
    pub edition: Option<String>,
    /// `InstallationType` (`Server`, `Server Core`, `Client`).
    pub installation_type: Option<String>,
    /// Drive letters and their devices.
    pub drive_letters: BTreeMap<String, String>,
    /// VMware Tools installations.
    pub vmware_tools: Vec<VmwareTools>,
    /// VMware services and drivers present in the current control set.
    pub vmware_services: Vec<String>,
    /// `hiberfil.sys` holds a hibernated system: writing to the volume would lose data.
    pub hibernated: bool,
    /// Fast Startup is on (`HiberbootEnabled`=1) and the last shutdown left its state.
    pub fast_startup: bool,
    /// A BitLocker-encrypted volume.
    pub bitlocker: bool,
    /// `SYSTEM\…\TimeZoneInformation\RealTimeIsUniversal` is 1.
    pub real_time_is_universal: bool,
}

/// Reads the Windows facts of the guest whose root is `root` (filesystems mounted).
pub fn inspect_windows(g: &Guest, root: &str) -> Option<WindowsInfo> {
    let h = g.handle();
    let systemroot = h.inspect_get_windows_systemroot(root).ok()?;
    let ccs =
        h.inspect_get_windows_current_control_set(root).unwrap_or_else(|_| "ControlSet001".into());
    let (mut release, mut edition, mut itype, mut tools) = (None, None, None, Vec::new());
    if let Some(sw) =
        h.inspect_get_windows_software_hive(root).ok().and_then(|p| Hive::open_read(g, &p))
    {
        let cv = ["Microsoft", "Windows NT", "CurrentVersion"];
        let (major, minor) = match (
            sw.dword(&cv, "CurrentMajorVersionNumber"),
            sw.dword(&cv, "CurrentMinorVersionNumber"),
        ) {
            (Some(a), Some(b)) => (a, b),
            _ => {
                let v = sw.string(&cv, "CurrentVersion").unwrap_or_default();
                let mut it = v.split('.').map(|x| x.parse().unwrap_or(0));
                (it.next().unwrap_or(0), it.next().unwrap_or(0))
            }
        };
        let build = sw.string(&cv, "CurrentBuildNumber").and_then(|b| b.parse().ok()).unwrap_or(0);
        itype = sw.string(&cv, "InstallationType");
        edition = sw.string(&cv, "EditionID");
        let server = itype.as_deref().is_some_and(|t| t.starts_with("Server"))
            || edition.as_deref().is_some_and(|e| e.starts_with("Server"));
        release = Some(WindowsRelease { major, minor, build, server });
        let un = ["Microsoft", "Windows", "CurrentVersion", "Uninstall"];
        for key in sw.children(&un) {
            let path = [un[0], un[1], un[2], un[3], key.as_str()];
            let Some(name) = sw.string(&path, "DisplayName") else { continue };
            if name.contains("VMware Tools") {
                tools.push(VmwareTools {
                    name,
                    version: sw.string(&path, "DisplayVersion"),
                    product_code: key.starts_with('{').then(|| key.clone()),
                });
            }
        }
    }
    let mut services = Vec::new();
    let mut hiberboot = false;
    let mut rtu = false;
    if let Some(sys) =
        h.inspect_get_windows_system_hive(root).ok().and_then(|p| Hive::open_read(g, &p))
    {
        let present: Vec<String> = sys.children(&[&ccs, "Services"]);
        for s in VMWARE_SERVICES {
            if let Some(p) = present.iter().find(|p| p.eq_ignore_ascii_case(s))
                && !services.contains(p)
            {
                services.push(p.clone());
            }
        }
        hiberboot = sys.dword(&[&ccs, "Control", "Session Manager", "Power"], "HiberbootEnabled")
            == Some(1);
        rtu =
            sys.dword(&[&ccs, "Control", "TimeZoneInformation"], "RealTimeIsUniversal") == Some(1);
    }
    // hiberfil.sys at the volume's root: "HIBR"/"hibr" while a hibernated session is in it.
    let hibernated = h
        .case_sensitive_path("/hiberfil.sys")
        .ok()
        .filter(|p| g.is_file(p))
        .and_then(|p| h.pread(&p, 4, 0).ok())
        .is_some_and(|b| b.eq_ignore_ascii_case(b"hibr"));
    let bitlocker = !bitlocker_volumes(g).is_empty();
    Some(WindowsInfo {
        systemroot,
        current_control_set: ccs,
        release: release.unwrap_or(WindowsRelease { major: 0, minor: 0, build: 0, server: false }),
        edition,
        installation_type: itype,
        drive_letters: h.inspect_get_drive_mappings(root).unwrap_or_default().into_iter().collect(),
        vmware_tools: tools,
        vmware_services: services,
        hibernated: hibernated && !hiberboot,
        fast_startup: hibernated && hiberboot,
        bitlocker,
        real_time_is_universal: rtu,
    })
}

/// Devices holding BitLocker-encrypted volumes.
pub fn bitlocker_volumes(g: &Guest) -> Vec<String> {
    // Not `list_filesystems`: it leaves encrypted volumes out. Every whole device and
    // partition is asked for its blkid type instead.
    let mut v: Vec<String> = g
        .block_devices()
        .iter()
        .filter(|d| {
            d.fs_type.eq_ignore_ascii_case("BitLocker")
                || d.fs_type.eq_ignore_ascii_case("crypto_BitLocker")
        })
        .map(|d| d.name.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

impl WindowsInfo {
    /// Why this guest must not be changed offline, if it must not: a hibernated or Fast
    /// Startup session (writing to the volume would lose it, and Windows would then resume
    /// from a file system that no longer matches) or BitLocker.
    pub fn refusal(&self) -> Option<String> {
        if self.fast_startup {
            return Some(
                "Windows was shut down with Fast Startup on, so its volume holds a hibernated \
                 session that changing the volume offline would corrupt: on the source, turn \
                 Fast Startup off (powercfg /h off) or shut down with `shutdown /s /t 0`, then \
                 export the VM again"
                    .into(),
            );
        }
        if self.hibernated {
            return Some(
                "the Windows volume is hibernated (hiberfil.sys holds a session): changing it \
                 offline would lose that session's data; on the source, resume and shut down \
                 fully (`shutdown /s /t 0`), then export the VM again"
                    .into(),
            );
        }
        if self.bitlocker {
            return Some(bitlocker_refusal());
        }
        None
    }
}

/// The message for a BitLocker volume (no key can be given yet).
pub fn bitlocker_refusal() -> String {
    "a volume is BitLocker-encrypted and hyper2kvm takes no recovery key: decrypt it on the \
     source (manage-bde -off C:), then export the VM again"
        .into()
}
