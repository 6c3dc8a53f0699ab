//! Network configuration: MAC pinning removed (ifupdown `hwaddress`, ifcfg `HWADDR=`,
//! NetworkManager `mac-address=`, udev persistent-net rules), static addresses kept, and every
//! interface name the guest configures (`ens192`, `eth0`, a keyfile's `interface-name`) given
//! to the virtio NIC by a systemd `.link` file matching its MAC (the domain keeps the source's
//! MACs), so the configuration still applies. netplan's `match: macaddress` with `set-name`
//! is left as it is: it already names the NIC by its MAC.

use super::{Fixer, LineEdit};
use crate::error::Result;

const FIXER: &str = "network";

fn is_mac(s: &str) -> bool {
    crate::io::parse_mac(s, &[':']).is_some()
}

/// Pulls a MAC out of a persistent-net udev rule line, with the name it assigns.
fn udev_rule(line: &str) -> Option<(String, String)> {
    let grab = |key: &str| {
        let i = line.find(key)? + key.len();
        let rest = &line[i..];
        Some(rest[..rest.find('"')?].to_string())
    };
    Some((grab("ATTR{address}==\"")?.to_ascii_lowercase(), grab("NAME=\"")?))
}

/// Fixes the network configuration.
pub(crate) fn fix(f: &mut Fixer<'_>) -> Result<()> {
    let g = f.g;
    // Interface names the guest configures, in order, with a hardware MAC when one is known.
    let mut names: Vec<(String, Option<String>)> = Vec::new();
    let note = |name: &str, mac: Option<String>, names: &mut Vec<(String, Option<String>)>| {
        if name == "lo" || name.is_empty() || name.contains(['*', '/', '=']) {
            return;
        }
        match names.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => {
                if entry.1.is_none() {
                    entry.1 = mac;
                }
            }
            None => names.push((name.to_string(), mac)),
        }
    };
    for path in &crate::bootchain::ifupdown_files(g) {
        let mut current: Option<String> = None;
        let mut found = Vec::new();
        f.edit_lines(FIXER, path, |l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                ["iface", name, ..] | ["auto", name] | ["allow-hotplug", name] => {
                    current = Some(name.to_string());
                    found.push((name.to_string(), None));
                    LineEdit::Keep
                }
                ["hwaddress", rest @ ..] => {
                    if let (Some(n), Some(mac)) = (&current, rest.iter().find(|w| is_mac(w))) {
                        found.push((n.clone(), Some(mac.to_ascii_lowercase())));
                    }
                    LineEdit::Delete
                }
                _ => LineEdit::Keep,
            }
        })?;
        for (n, m) in found {
            note(&n, m, &mut names);
        }
    }
    for path in g
        .glob("/etc/sysconfig/network-scripts/ifcfg-*")
        .into_iter()
        .chain(g.glob("/etc/sysconfig/network/ifcfg-*"))
    {
        let name = path.rsplit("ifcfg-").next().unwrap_or_default().to_string();
        let mut mac = None;
        f.edit_lines(FIXER, &path, |l| match l.trim().strip_prefix("HWADDR=") {
            Some(v) => {
                mac = Some(v.trim_matches(['"', '\'']).to_ascii_lowercase());
                LineEdit::Delete
            }
            None => LineEdit::Keep,
        })?;
        note(&name, mac, &mut names);
    }
    for path in g.glob("/etc/NetworkManager/system-connections/*") {
        // A profile bound to `interface-name` applies only to a device of that name: the
        // virtio NIC gets it from a .link file matching the MAC the profile names.
        let text = g.read_text(&path)?.unwrap_or_default();
        if let Some(w) = crate::bootchain::network::keyfile(&path, &text)
            && let Some(name) = w.name
        {
            note(&name, w.mac, &mut names);
        }
        f.edit_lines(FIXER, &path, |l| {
            if l.trim_start().starts_with("mac-address=") {
                LineEdit::Delete
            } else {
                LineEdit::Keep
            }
        })?;
    }
    // netplan's `match: {macaddress: …}` stays: the domain keeps the source's MACs, netplan
    // renames the NIC itself with `set-name`, and removing the match would leave `match:`
    // empty, which `netplan generate` rejects.
    for rule in ["/etc/udev/rules.d/70-persistent-net.rules"] {
        if let Some(text) = g.read_text(rule)? {
            for (mac, name) in text.lines().filter_map(udev_rule) {
                note(&name, Some(mac), &mut names);
            }
            f.delete(FIXER, rule)?;
        }
    }
    let single = names.len() == 1;
    for (name, mac) in &names {
        let matcher = match (mac, single) {
            (Some(mac), _) => format!("MACAddress={mac}"),
            (None, true) => "Driver=virtio_net".to_string(),
            (None, false) => {
                f.skip(FIXER, name, "several interfaces and no MAC known: name left to the guest");
                continue;
            }
        };
        let content = format!(
            "# Written by hyper2kvm: the guest configures its NIC as {name}; keep that name on KVM.\n[Match]\n{matcher}\n\n[Link]\nName={name}\n"
        );
        f.create(FIXER, &format!("/etc/systemd/network/10-hyper2kvm-{name}.link"), &content)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persistent_net_rules() {
        let line = r#"SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="00:50:56:8A:00:01", ATTR{type}=="1", NAME="ens192""#;
        assert_eq!(udev_rule(line), Some(("00:50:56:8a:00:01".into(), "ens192".into())));
        assert!(is_mac("00:50:56:8a:00:01"));
        assert!(!is_mac("ether"));
    }
}
