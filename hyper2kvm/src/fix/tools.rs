//! Hypervisor tools of the old platform (VMware Tools / open-vm-tools, Hyper-V daemons,
//! VirtualBox additions) disabled: their systemd and SysV start links are removed, so nothing
//! of the old hypervisor runs on KVM while the packages stay for the administrator to purge.

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
}
