//! What runs once when the converted Windows guest first boots on KVM: a service that installs
//! the copied virtio drivers with `pnputil`, installs the QEMU guest agent when it was copied,
//! uninstalls VMware Tools with `MsiExec /X{product code} /qn` (3010, "reboot required",
//! counts as success), logs everything to `C:\hyper2kvm\firstboot.log`, and deletes itself.
//! Until then VMware's services and drivers are set to `Start`=4 (disabled) so they do not
//! start on hardware they cannot find.
//!
//! The service runs `cmd.exe`, which is not a service program: the service control manager
//! gives up waiting for it after 30 s and records error 1053, so the script is started detached
//! (`start /b`) and keeps running. This was not tried on a real Windows here (none can be
//! booted on these machines); the tests check the files and registry entries it consists of.

use crate::error::Result;
use crate::guest::registry::{Hive, RegValue};
use crate::guest::windows::WindowsInfo;

/// The service's name.
pub const SERVICE: &str = "hyper2kvm-firstboot";
/// The folder on the system drive that holds the script, its log and the agent's installer.
pub const DIR: &str = "hyper2kvm";

/// What the first boot does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstBoot {
    /// Install the drivers in this Windows folder (`%SystemRoot%\Drivers\VirtIO`).
    pub driver_dir: Option<String>,
    /// The QEMU guest agent's installer, by its file name in `C:\hyper2kvm`.
    pub agent_msi: Option<String>,
    /// The MSI product codes of the VMware Tools to uninstall.
    pub uninstall: Vec<String>,
}

impl FirstBoot {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.driver_dir.is_none() && self.agent_msi.is_none() && self.uninstall.is_empty()
    }

    /// The batch script (CRLF line ends, as `cmd.exe` expects).
    pub fn script(&self) -> String {
        let mut s = vec![
            "@echo off".to_string(),
            "rem Written by hyper2kvm: runs once at the first boot on KVM, then removes itself."
                .to_string(),
            "setlocal".to_string(),
            format!("set LOG=%SystemDrive%\\{DIR}\\firstboot.log"),
            "echo hyper2kvm first boot started %DATE% %TIME% >> \"%LOG%\"".to_string(),
        ];
        if let Some(dir) = &self.driver_dir {
            s.push(format!("echo installing the drivers in {dir} >> \"%LOG%\""));
            s.push(format!(
                "for %%f in (\"{dir}\\*.inf\") do pnputil -i -a \"%%f\" >> \"%LOG%\" 2>&1"
            ));
        }
        if let Some(msi) = &self.agent_msi {
            s.push(format!("echo installing {msi} >> \"%LOG%\""));
            s.push(format!(
                "msiexec.exe /i \"%SystemDrive%\\{DIR}\\{msi}\" /qn /norestart /l*v \"%SystemDrive%\\{DIR}\\qemu-ga-install.log\""
            ));
            s.push("echo msiexec exit code %ERRORLEVEL% >> \"%LOG%\"".to_string());
        }
        for code in &self.uninstall {
            s.push(format!("echo uninstalling VMware Tools {code} >> \"%LOG%\""));
            s.push(format!("MsiExec.exe /X{code} /qn /norestart >> \"%LOG%\" 2>&1"));
            s.push("set RC=%ERRORLEVEL%".to_string());
            s.push("if \"%RC%\"==\"3010\" set RC=0".to_string());
            s.push(format!(
                "if \"%RC%\"==\"0\" (echo VMware Tools {code} removed >> \"%LOG%\") else (echo VMware Tools {code}: MsiExec exit code %RC% >> \"%LOG%\")"
            ));
        }
        s.push(format!("sc.exe delete {SERVICE} >> \"%LOG%\" 2>&1"));
        s.push("echo hyper2kvm first boot finished %DATE% %TIME% >> \"%LOG%\"".to_string());
        s.push(String::new());
        s.join("\r\n")
    }

    /// Registers the service in the SYSTEM hive's current control set.
    pub fn register(&self, hive: &mut Hive<'_>, w: &WindowsInfo) -> Result<()> {
        let svc = [w.current_control_set.as_str(), "Services", SERVICE];
        // SERVICE_WIN32_OWN_PROCESS, automatic start, errors logged only.
        hive.set(&svc, "Type", RegValue::Dword(0x10))?;
        hive.set(&svc, "Start", RegValue::Dword(2))?;
        hive.set(&svc, "ErrorControl", RegValue::Dword(1))?;
        hive.set(&svc, "ObjectName", RegValue::Sz("LocalSystem".into()))?;
        hive.set(&svc, "DisplayName", RegValue::Sz("hyper2kvm first boot".into()))?;
        hive.set(
            &svc,
            "Description",
            RegValue::Sz(
                "Installs the virtio drivers and removes VMware Tools once after the move to \
                 KVM, then deletes itself."
                    .into(),
            ),
        )?;
        let cmd = format!(
            "%SystemRoot%\\System32\\cmd.exe /c start \"hyper2kvm\" /b %SystemRoot%\\System32\\cmd.exe /c %SystemDrive%\\{DIR}\\firstboot.cmd"
        );
        hive.set(&svc, "ImagePath", RegValue::ExpandSz(cmd))
    }
}

/// Sets every VMware service and driver the guest has to `Start`=4 (disabled).
pub fn disable_vmware_services(hive: &mut Hive<'_>, w: &WindowsInfo) -> Result<()> {
    for name in &w.vmware_services {
        hive.set(&[w.current_control_set.as_str(), "Services", name], "Start", RegValue::Dword(4))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_installs_uninstalls_logs_and_removes_itself() {
        let fb = FirstBoot {
            driver_dir: Some("%SystemRoot%\\Drivers\\VirtIO".into()),
            agent_msi: Some("qemu-ga-x86_64.msi".into()),
            uninstall: vec!["{9D2A5B3C-6E4F-4A11-8C1A-0E5A4C3B2D10}".into()],
        };
        let s = fb.script();
        assert!(s.contains("pnputil -i -a \"%%f\""), "{s}");
        assert!(s.contains("MsiExec.exe /X{9D2A5B3C-6E4F-4A11-8C1A-0E5A4C3B2D10} /qn"), "{s}");
        assert!(s.contains("if \"%RC%\"==\"3010\" set RC=0"), "{s}");
        assert!(s.contains("sc.exe delete hyper2kvm-firstboot"), "{s}");
        assert!(s.contains("set LOG=%SystemDrive%\\hyper2kvm\\firstboot.log"), "{s}");
        assert!(s.contains("\r\n") && !s.replace("\r\n", "").contains('\n'), "CRLF only");
        assert!(
            !fb.is_empty()
                && FirstBoot { driver_dir: None, agent_msi: None, uninstall: vec![] }.is_empty()
        );
    }
}
