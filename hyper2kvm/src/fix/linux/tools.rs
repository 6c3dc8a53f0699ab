//! Hypervisor tools of the old platform (VMware Tools / open-vm-tools, Hyper-V daemons,
//! VirtualBox additions) disabled: their systemd and SysV start links are removed, so nothing
//! of the old hypervisor runs on KVM while the packages stay for the administrator to purge.
//! The QEMU guest agent, when installed, is enabled (by the guest's `systemctl`) unless its
//! unit is one that udev starts when the agent's virtio-serial channel appears.

use super::Fixer;
use crate::error::Result;

const FIXER: &str = "tools";

/// Unit and init-script names that belong to another hypervisor's tools.
fn is_foreign_tool(name: &str) -> bool {
    const PREFIXES: [&str; 12] = [
        "open-vm-tools",
        "vmtoolsd",
        "vgauth",
        "vmware-tools",
        "run-vmblock",
        "hv-kvp-daemon",
        "hv-vss-daemon",
        "hv-fcopy-daemon",
        "hypervkvpd",
        "hypervvssd",
        "vboxadd",
        "virtualbox-guest-utils",
    ];
    let base = name.trim_start_matches(|c: char| c == 'S' || c == 'K' || c.is_ascii_digit());
    PREFIXES.iter().any(|p| base.starts_with(p))
}

/// Disables the foreign tools.
pub(crate) fn fix(f: &mut Fixer<'_>) -> Result<()> {
    if f.insp.hypervisor_tools.is_empty() {
        return Ok(());
    }
    let mut links: Vec<String> = f.g.glob("/etc/systemd/system/*.wants/*");
    links.extend(f.g.glob("/etc/rc[0-6S].d/*"));
    for link in links {
        let name = link.rsplit('/').next().unwrap_or_default();
        if is_foreign_tool(name) {
            f.delete(FIXER, &link)?;
        }
    }
    Ok(())
}

/// Where systemd unit files live, most specific first.
const UNIT_DIRS: [&str; 3] =
    ["/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];
const AGENT: &str = "qemu-guest-agent.service";

/// True when a unit file has an `[Install]` section naming something to be wanted by.
fn installable(unit_text: &str) -> bool {
    let mut in_install = false;
    for line in unit_text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_install = line == "[Install]";
        } else if in_install
            && ["WantedBy=", "RequiredBy=", "UpheldBy="].iter().any(|k| line.starts_with(k))
            && line.split_once('=').is_some_and(|(_, v)| !v.trim().is_empty())
        {
            return true;
        }
    }
    false
}

/// Enables qemu-guest-agent when the guest has it.
pub(crate) fn enable_guest_agent(f: &mut Fixer<'_>) -> Result<()> {
    let mut text = None;
    for dir in UNIT_DIRS {
        if let Some(t) = f.g.read_text(&format!("{dir}/{AGENT}"))? {
            text = Some(t);
            break;
        }
    }
    match text {
        None => f.skip(FIXER, AGENT, "qemu-guest-agent is not installed in the guest"),
        Some(t) if !installable(&t) => {
            f.skip(FIXER, AGENT, "started by udev when the agent's virtio-serial channel appears")
        }
        Some(_) => super::configure::systemctl(f, FIXER, "enable", AGENT)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_tool_units() {
        assert!(is_foreign_tool("open-vm-tools.service"));
        assert!(is_foreign_tool("S01open-vm-tools"));
        assert!(is_foreign_tool("run-vmblock\\x2dfuse.mount"));
        assert!(is_foreign_tool("hv-kvp-daemon.service"));
        assert!(!is_foreign_tool("ssh.service"));
        assert!(!is_foreign_tool("qemu-guest-agent.service"));
    }

    #[test]
    fn guest_agent_units_with_and_without_install_sections() {
        // Debian 12's unit: started by a udev rule, no [Install].
        let debian = "[Unit]\nDescription=QEMU Guest Agent\nBindsTo=dev-virtio\\x2dports-org.qemu.guest_agent.0.device\n[Service]\nExecStart=/usr/sbin/qemu-ga\n";
        assert!(!installable(debian));
        // Fedora/RHEL's: wanted by the channel's device unit.
        let rhel = "[Unit]\nDescription=QEMU Guest Agent\n[Service]\nExecStart=/usr/bin/qemu-ga\n[Install]\nWantedBy=dev-virtio\\x2dports-org.qemu.guest_agent.0.device\n";
        assert!(installable(rhel));
        assert!(!installable("[Install]\nAlso=foo.socket\n"));
    }
}
