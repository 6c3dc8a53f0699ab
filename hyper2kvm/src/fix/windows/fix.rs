//! Preparing a Windows guest for KVM, offline, in this order:
//! 1. find the virtio storage driver for the target disk bus (`viostor`, or `vioscsi` for
//!    virtio-scsi) for the guest's release and architecture, or refuse (unless
//!    `allow_no_virtio`, which keeps SATA disks and an e1000 NIC);
//! 2. copy every virtio driver the tree has for the guest (storage, NetKVM, Balloon, viorng,
//!    vioserial, pvpanic, fwcfg) to `%SystemRoot%\Drivers\VirtIO`, the boot driver also to
//!    `System32\drivers`, and the QEMU guest agent's installer to `C:\hyper2kvm`;
//! 3. in the SYSTEM hive: the boot driver's service and device binding ([`storage`]), VMware's
//!    services disabled and the first-boot service ([`firstboot`]);
//! 4. in the SOFTWARE hive: `%SystemRoot%\Drivers\VirtIO` appended to `DevicePath`.
//!
//! Every change is recorded; the hives are backed up first (`*.hyper2kvm.bak`) when asked.
//! Running it again on its own output changes nothing more.
//!
//! [`storage`]: super::storage
//! [`firstboot`]: super::firstboot

use serde::Serialize;

use super::firstboot::{self, FirstBoot};
use super::storage::{self, StorageDriver, VIOSCSI, VIOSTOR};
use super::virtio_win::{Arch, DriverFiles, DriverSource};
use crate::error::{Error, ErrorKind, Result};
use crate::guest::registry::{Hive, RegValue};
use std::path::Path;

use crate::fix::FixOptions;
use crate::guest::Guest;
use crate::guest::inspect::Inspection;
use crate::guest::{Action, Change};
use crate::libvirt::{DiskBus, NicModel};

const FIXER: &str = "windows-drivers";

/// The drivers copied for Plug and Play besides the storage ones, when the tree has them.
pub const PNP_DRIVERS: [&str; 6] = ["NetKVM", "Balloon", "viorng", "vioserial", "pvpanic", "fwcfg"];

/// Where the drivers go, as Windows names it.
pub const VIRTIO_DIR: &str = "%SystemRoot%\\Drivers\\VirtIO";

/// Choices for [`fix_windows`].
#[derive(Debug, Clone, Copy)]
pub struct WindowsFixOptions<'a> {
    /// The virtio-win drivers (`None` when none were found).
    pub source: Option<&'a DriverSource>,
    /// The bus the domain will give the disks.
    pub disk_bus: DiskBus,
    /// Convert without virtio drivers (SATA and e1000) instead of refusing.
    pub allow_no_virtio: bool,
    /// Keep `*.hyper2kvm.bak` copies of the hives.
    pub backup: bool,
    /// Disable VMware's services and uninstall VMware Tools at first boot.
    pub remove_vmware_tools: bool,
}

/// What was done, and what the domain may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowsFixed {
    /// The virtio-win `<os>` directory the boot driver came from.
    pub os_dir: Option<String>,
    /// The disk bus the guest can boot from now.
    pub disk_bus: DiskBus,
    /// The NIC model it has a driver for.
    pub nic_model: NicModel,
    /// The drivers copied.
    pub drivers: Vec<String>,
    /// The changes, in order.
    pub changes: Vec<Change>,
    /// What the user should know.
    pub warnings: Vec<String>,
}

fn gerr(what: &str, e: guestfs::Error) -> Error {
    Error::new(ErrorKind::GuestInspection, format!("{what}: {e:?}"))
}

/// `parent/name` in the guest, matching an existing entry's case, created when missing.
fn guest_dir(g: &Guest, parent: &str, name: &str, changes: &mut Vec<Change>) -> Result<String> {
    let h = g.handle();
    let parent = parent.trim_end_matches('/');
    let is_dir = |p: &str| h.is_dir(p, Default::default()).unwrap_or(false);
    let listing = h.ls(if parent.is_empty() { "/" } else { parent }).unwrap_or_default();
    if let Some(e) =
        listing.iter().find(|e| e.eq_ignore_ascii_case(name) && is_dir(&format!("{parent}/{e}")))
    {
        return Ok(format!("{parent}/{e}"));
    }
    let path = format!("{parent}/{name}");
    h.mkdir(&path).map_err(|e| gerr(&format!("creating {path}"), e))?;
    changes.push(Change {
        fixer: FIXER,
        action: Action::Create,
        file: format!("{path}/"),
        old: None,
        new: None,
    });
    Ok(path)
}

/// Uploads `files` into the guest directory `dir`, recording each.
fn copy_files(g: &Guest, files: &DriverFiles, dir: &str, changes: &mut Vec<Change>) -> Result<()> {
    for f in &files.files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let dest = format!("{dir}/{name}");
        let existed = g.is_file(&dest);
        g.handle()
            .upload(&f.to_string_lossy(), &dest)
            .map_err(|e| gerr(&format!("copying {dest}"), e))?;
        changes.push(Change {
            fixer: FIXER,
            action: if existed { Action::Edit } else { Action::Create },
            file: dest,
            old: None,
            new: Some(format!("{} ({} {})", files.driver, files.os_dir, name)),
        });
    }
    Ok(())
}

fn backup(g: &Guest, hive: &str, on: bool) -> Result<()> {
    if on {
        g.handle()
            .cp(hive, &format!("{hive}.hyper2kvm.bak"))
            .map_err(|e| gerr("hive backup", e))?;
    }
    Ok(())
}

/// The refusal (or, with `allow_no_virtio`, the warning) when the boot driver is missing.
fn no_driver(
    insp: &Inspection,
    w: &super::WindowsInfo,
    src: Option<&DriverSource>,
    arch: Option<Arch>,
    driver: &StorageDriver,
) -> String {
    match (src, arch) {
        (None, _) => "no virtio-win drivers found (give --virtio-win with the virtio-win ISO or \
                      its tree, set VIRTIO_WIN, or install virtio-win in /usr/share/virtio-win)"
            .to_string(),
        (_, None) => format!("no virtio-win drivers exist for {} guests", insp.arch),
        (Some(s), Some(a)) => format!(
            "virtio-win at {} has no {} driver for {} ({}) or an older release",
            s.root.display(),
            driver.name,
            w.release.os_dir().unwrap_or("this Windows"),
            a.dir()
        ),
    }
}

/// Copies the storage drivers for `disk_bus` (viostor; with vioscsi for virtio-scsi) and every
/// other driver the tree has for the guest into `%SystemRoot%\Drivers\VirtIO`, and the storage
/// ones' `.sys` into `System32\drivers`; sets the NIC model. Returns the storage drivers found.
fn copy_drivers(
    g: &Guest,
    w: &super::WindowsInfo,
    src: &DriverSource,
    arch: Arch,
    disk_bus: DiskBus,
    out: &mut WindowsFixed,
) -> Result<Vec<(StorageDriver, DriverFiles)>> {
    let boot: Vec<(StorageDriver, DriverFiles)> = storage_drivers(disk_bus)
        .iter()
        .filter_map(|d| src.driver(d.name, &w.release, arch).map(|f| (*d, f)))
        .collect();
    let mut all: Vec<DriverFiles> = boot.iter().map(|(_, f)| f.clone()).collect();
    all.extend(PNP_DRIVERS.iter().filter_map(|d| src.driver(d, &w.release, arch)));
    let sr = w.systemroot.as_str();
    let drivers_dir = guest_dir(g, sr, "Drivers", &mut out.changes)?;
    let virtio_dir = guest_dir(g, &drivers_dir, "VirtIO", &mut out.changes)?;
    for f in &all {
        copy_files(g, f, &virtio_dir, &mut out.changes)?;
        out.drivers.push(f.driver.clone());
    }
    let sys32_drivers = g
        .handle()
        .case_sensitive_path(&format!("{sr}/system32/drivers"))
        .map_err(|e| gerr("System32\\drivers", e))?;
    for (_, f) in &boot {
        out.changes.push(storage::copy_sys(g, f, &sys32_drivers)?);
    }
    out.os_dir = boot.first().map(|(_, f)| f.os_dir.clone());
    if all.iter().any(|f| f.driver.eq_ignore_ascii_case("NetKVM")) {
        out.nic_model = NicModel::Virtio;
    } else {
        out.warnings.push(format!(
            "virtio-win at {} has no NetKVM driver for this guest: the NIC is an e1000",
            src.root.display()
        ));
    }
    Ok(boot)
}

/// Copies the QEMU guest agent's installer for `arch` into `C:\hyper2kvm`, when the tree has
/// one; its file name.
fn copy_agent(
    g: &Guest,
    src: &DriverSource,
    arch: Arch,
    changes: &mut Vec<Change>,
) -> Result<Option<String>> {
    let msi = match arch {
        Arch::Amd64 => "qemu-ga-x86_64.msi",
        Arch::X86 => "qemu-ga-i386.msi",
    };
    let Some(local) = src.top_file("guest-agent", msi) else { return Ok(None) };
    let dir = guest_dir(g, "/", firstboot::DIR, changes)?;
    let f = DriverFiles {
        driver: "qemu-ga".into(),
        os_dir: "guest-agent".into(),
        dir: local.parent().map(|p| p.to_path_buf()).unwrap_or_default(),
        files: vec![local],
    };
    copy_files(g, &f, &dir, changes)?;
    Ok(Some(msi.to_string()))
}

/// Writes `C:\hyper2kvm\firstboot.cmd` (recorded when it changes).
fn write_script(g: &Guest, first: &FirstBoot, changes: &mut Vec<Change>) -> Result<()> {
    let dir = guest_dir(g, "/", firstboot::DIR, changes)?;
    let path = format!("{dir}/firstboot.cmd");
    let script = first.script();
    let old = g.read_text(&path)?;
    if old.as_deref() != Some(script.as_str()) {
        g.write(&path, script.as_bytes())?;
        changes.push(Change {
            fixer: FIXER,
            action: Action::Create,
            file: path,
            old,
            new: Some(script),
        });
    }
    Ok(())
}

/// Appends [`VIRTIO_DIR`] to the SOFTWARE hive's `DevicePath` unless it is there.
fn append_device_path(g: &Guest, software: &str) -> Result<Vec<Change>> {
    let mut hive = Hive::open(g, software, "HKLM\\SOFTWARE")?;
    let key = ["Microsoft", "Windows", "CurrentVersion"];
    let current = hive.string(&key, "DevicePath").unwrap_or_else(|| "%SystemRoot%\\inf".into());
    if !current.split(';').any(|p| p.eq_ignore_ascii_case(VIRTIO_DIR)) {
        let new = format!("{};{VIRTIO_DIR}", current.trim_end_matches(';'));
        hive.set(&key, "DevicePath", RegValue::ExpandSz(new))?;
    }
    hive.commit()
}

/// The storage driver the domain's bus needs.
fn required_driver(bus: DiskBus) -> Option<StorageDriver> {
    match bus {
        DiskBus::VirtioBlk => Some(VIOSTOR),
        DiskBus::VirtioScsi => Some(VIOSCSI),
        DiskBus::Sata => None,
    }
}

/// The storage drivers installed for the domain's bus: viostor always (when the tree has it),
/// vioscsi too for virtio-scsi.
fn storage_drivers(bus: DiskBus) -> &'static [StorageDriver] {
    if bus == DiskBus::VirtioScsi { &[VIOSTOR, VIOSCSI] } else { &[VIOSTOR] }
}

/// The Windows part of an inspection, or the error for a guest without one.
fn windows_of(insp: &Inspection) -> Result<&super::WindowsInfo> {
    insp.windows.as_ref().ok_or_else(|| {
        Error::new(ErrorKind::Unsupported, "not a Windows guest (no Windows registry found)")
    })
}

/// The drivers for a conversion with `fix`: `fix.virtio_win`, else `VIRTIO_WIN`, else the
/// defaults ([`DriverSource::locate`]); ISO files extract under `scratch`.
pub fn driver_source(fix: &FixOptions, scratch: &Path) -> Result<Option<DriverSource>> {
    let env = |k: &str| std::env::var(k).ok();
    DriverSource::locate(fix.virtio_win.as_deref(), &env, scratch)
}

impl<'a> WindowsFixOptions<'a> {
    /// The Windows choices of `fix`, with the drivers of `source`, for a domain on `disk_bus`.
    pub fn from_fix(fix: &FixOptions, source: Option<&'a DriverSource>, disk_bus: DiskBus) -> Self {
        WindowsFixOptions {
            source,
            disk_bus,
            allow_no_virtio: fix.allow_no_virtio,
            backup: fix.backup,
            remove_vmware_tools: fix.remove_vmware_tools,
        }
    }
}

/// Whether the boot driver for the domain's bus is available: `Ok(None)` when it is (or none
/// is needed), the refusal when it is not, or with `allow_no_virtio` the warning that the
/// guest keeps SATA and e1000.
fn boot_driver_check(
    insp: &Inspection,
    w: &super::WindowsInfo,
    opts: &WindowsFixOptions<'_>,
) -> Result<Option<String>> {
    let arch = Arch::from_inspection(&insp.arch);
    let Some(d) = required_driver(opts.disk_bus) else { return Ok(None) };
    if let (Some(s), Some(a)) = (opts.source, arch)
        && s.find(d.name, &w.release, a).is_some()
    {
        return Ok(None);
    }
    let why = no_driver(insp, w, opts.source, arch, &d);
    if !opts.allow_no_virtio {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{why}: the guest could not boot from a virtio disk (stop 0x7B); use \
                 --allow-no-virtio to convert it with SATA disks and an e1000 NIC"
            ),
        ));
    }
    Ok(Some(format!("{why}: keeping SATA disks and an e1000 NIC (--allow-no-virtio)")))
}

/// What [`fix_windows`] would do, as lines for a dry run's plan (a refusal included: a plan
/// only reports it, since the manifest's inspect-only runs plan too).
pub fn plan_windows(insp: &Inspection, opts: &WindowsFixOptions<'_>) -> Result<Vec<String>> {
    let w = windows_of(insp)?;
    match boot_driver_check(insp, w, opts) {
        Ok(None) => {}
        Ok(Some(warning)) => return Ok(vec![warning]),
        Err(e) => return Ok(vec![format!("Windows: converting with fixes would be refused: {e}")]),
    }
    let mut lines = Vec::new();
    if let (Some(src), Some(a)) = (opts.source, Arch::from_inspection(&insp.arch)) {
        let found: Vec<String> = storage_drivers(opts.disk_bus)
            .iter()
            .map(|d| d.name)
            .chain(PNP_DRIVERS)
            .filter_map(|d| src.find(d, &w.release, a))
            .map(|f| format!("{} ({})", f.driver, f.os_dir))
            .collect();
        lines.push(format!(
            "Windows: would install the virtio drivers {} from {} into {VIRTIO_DIR}",
            found.join(", "),
            src.root.display()
        ));
    }
    if opts.remove_vmware_tools && !w.vmware_services.is_empty() {
        lines.push(format!(
            "Windows: would disable {} and uninstall VMware Tools at first boot",
            w.vmware_services.join(", ")
        ));
    }
    Ok(lines)
}

/// Prepares the Windows guest inspected as `insp` (its filesystems mounted, writable).
pub fn fix_windows(
    g: &Guest,
    insp: &Inspection,
    opts: &WindowsFixOptions<'_>,
) -> Result<WindowsFixed> {
    let w = windows_of(insp)?;
    let arch = Arch::from_inspection(&insp.arch);
    let mut out = WindowsFixed {
        os_dir: None,
        disk_bus: opts.disk_bus,
        nic_model: NicModel::E1000,
        drivers: Vec::new(),
        changes: Vec::new(),
        warnings: Vec::new(),
    };
    let virtio = match boot_driver_check(insp, w, opts)? {
        None => true,
        Some(warning) => {
            out.warnings.push(warning);
            out.disk_bus = DiskBus::Sata;
            false
        }
    };
    let mut boot = Vec::new();
    let mut first = FirstBoot { driver_dir: None, agent_msi: None, uninstall: Vec::new() };
    if virtio && let (Some(src), Some(a)) = (opts.source, arch) {
        boot = copy_drivers(g, w, src, a, opts.disk_bus, &mut out)?;
        first.driver_dir = Some(VIRTIO_DIR.to_string());
        first.agent_msi = copy_agent(g, src, a, &mut out.changes)?;
    }
    if opts.remove_vmware_tools {
        first.uninstall = w.vmware_tools.iter().filter_map(|t| t.product_code.clone()).collect();
    }
    let h = g.handle();
    let system = h
        .inspect_get_windows_system_hive(&insp.root_device)
        .map_err(|e| gerr("the SYSTEM hive", e))?;
    backup(g, &system, opts.backup)?;
    let mut hive = Hive::open(g, &system, "HKLM\\SYSTEM")?;
    for (d, f) in &boot {
        storage::register(&mut hive, w, arch.unwrap_or(Arch::Amd64), d, f, VIRTIO_DIR)?;
    }
    if opts.remove_vmware_tools {
        firstboot::disable_vmware_services(&mut hive, w)?;
    }
    if !first.is_empty() {
        first.register(&mut hive, w)?;
    }
    out.changes.extend(hive.commit()?);
    if !first.is_empty() {
        write_script(g, &first, &mut out.changes)?;
    }
    if first.driver_dir.is_some() {
        let software = h
            .inspect_get_windows_software_hive(&insp.root_device)
            .map_err(|e| gerr("the SOFTWARE hive", e))?;
        backup(g, &software, opts.backup)?;
        out.changes.extend(append_device_path(g, &software)?);
    }
    Ok(out)
}
