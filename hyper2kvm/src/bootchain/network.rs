//! Will each network configuration of the guest find its interface on the target? Read from
//! the files the guest's own stack reads: ifupdown's `interfaces`, netplan YAML, NetworkManager
//! keyfiles, ifcfg files, systemd-networkd `.network` files — and the `.link` files that name
//! interfaces. A configuration fails when it needs a name no interface will have, or a MAC no
//! NIC of the target will have.

/// One interface a configuration file asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The file.
    pub file: String,
    /// The stack (`ifupdown`, `netplan`, `NetworkManager`, `ifcfg`, `systemd-networkd`).
    pub stack: &'static str,
    /// The interface name it needs, if it needs one.
    pub name: Option<String>,
    /// The MAC it matches (lower case), if it matches one.
    pub mac: Option<String>,
    /// netplan's `set-name`: the configuration names the interface itself.
    pub sets_name: Option<String>,
}

/// A `.link` file's rename: its matches and the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    /// `MACAddress=` (lower case).
    pub mac: Option<String>,
    /// `Driver=`.
    pub driver: Option<String>,
    /// The `[Link] Name=`.
    pub name: String,
}

fn mac(s: &str) -> Option<String> {
    crate::io::parse_mac(s.trim().trim_matches(['"', '\'']), &[':', '-'])
        .map(|m| m.to_ascii_lowercase())
}

fn plain_name(n: &str) -> bool {
    !n.is_empty() && n != "lo" && !n.contains(['*', '?', '/', '=', ' ']) && !n.contains(':')
}

/// `iface NAME inet…` stanzas of an ifupdown file (aliases like `eth0:1` count as `eth0`).
pub fn ifupdown(file: &str, text: &str) -> Vec<Wanted> {
    let mut out: Vec<Wanted> = Vec::new();
    for l in text.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if let ["iface", name, ..] = w.as_slice() {
            let base = name.split(':').next().unwrap_or(name);
            if plain_name(base) && !out.iter().any(|x| x.name.as_deref() == Some(base)) {
                out.push(Wanted {
                    file: file.into(),
                    stack: "ifupdown",
                    name: Some(base.into()),
                    mac: None,
                    sets_name: None,
                });
            }
        }
    }
    out
}

/// The ethernets (and bonds' members) of a netplan file.
pub fn netplan(file: &str, text: &str) -> Result<Vec<Wanted>, String> {
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| format!("{file}: not valid YAML: {e}"))?;
    let mut out = Vec::new();
    let Some(eths) = doc.get("network").and_then(|n| n.get("ethernets")) else { return Ok(out) };
    let Some(map) = eths.as_mapping() else {
        return Err(format!("{file}: network.ethernets is not a mapping"));
    };
    for (id, conf) in map {
        let id = id.as_str().unwrap_or_default().to_string();
        let m = conf.get("match");
        if let Some(m) = m
            && !m.is_mapping()
        {
            return Err(format!(
                "{file}: ethernets.{id}.match is not a mapping (netplan generate fails: expected mapping)"
            ));
        }
        if m.and_then(|m| m.as_mapping()).is_some_and(|m| m.is_empty()) {
            return Err(format!(
                "{file}: ethernets.{id}.match is empty (netplan generate fails: expected mapping)"
            ));
        }
        let mac_m = m.and_then(|m| m.get("macaddress")).and_then(|v| v.as_str()).and_then(mac);
        let name_m = m.and_then(|m| m.get("name")).and_then(|v| v.as_str()).map(str::to_string);
        let driver_m = m.and_then(|m| m.get("driver")).is_some();
        let set_name = conf.get("set-name").and_then(|v| v.as_str()).map(str::to_string);
        if set_name.is_some() && m.is_none() {
            return Err(format!(
                "{file}: ethernets.{id}: set-name needs a match (netplan generate fails)"
            ));
        }
        let name = match (&m, name_m) {
            (None, _) => Some(id.clone()),
            (Some(_), Some(n)) if plain_name(&n) => Some(n),
            _ => None,
        };
        if name.is_none() && mac_m.is_none() && !driver_m {
            continue;
        }
        out.push(Wanted {
            file: file.into(),
            stack: "netplan",
            name,
            mac: mac_m,
            sets_name: set_name,
        });
    }
    Ok(out)
}

/// Values of `key=` in `[section]` of an INI-style file (keyfiles, `.link`, `.network`).
fn ini<'a>(text: &'a str, section: &[&str], key: &str) -> Vec<&'a str> {
    let mut cur = "";
    let mut out = Vec::new();
    for l in text.lines() {
        let t = l.trim();
        if let Some(s) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            cur = s;
        } else if section.contains(&cur)
            && let Some((k, v)) = t.split_once('=')
            && k.trim() == key
        {
            out.push(v.trim());
        }
    }
    out
}

/// A NetworkManager keyfile of an ethernet connection.
pub fn keyfile(file: &str, text: &str) -> Option<Wanted> {
    let ty = ini(text, &["connection"], "type").first().copied().unwrap_or("");
    if ty != "ethernet" && ty != "802-3-ethernet" {
        return None;
    }
    let name = ini(text, &["connection"], "interface-name").first().map(|s| s.to_string());
    let mac =
        ini(text, &["ethernet", "802-3-ethernet"], "mac-address").first().and_then(|m| mac(m));
    Some(Wanted { file: file.into(), stack: "NetworkManager", name, mac, sets_name: None })
}

/// An ifcfg file (`DEVICE=` or the file's suffix, `HWADDR=`).
pub fn ifcfg(file: &str, text: &str) -> Option<Wanted> {
    let get = |k: &str| {
        text.lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix(k)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
    };
    let name = get("DEVICE").or_else(|| file.rsplit("ifcfg-").next().map(str::to_string))?;
    if !plain_name(&name) {
        return None;
    }
    Some(Wanted {
        file: file.into(),
        stack: "ifcfg",
        name: Some(name),
        mac: get("HWADDR").and_then(|m| mac(&m)),
        sets_name: None,
    })
}

/// A systemd-networkd `.network` file's `[Match]`.
pub fn networkd(file: &str, text: &str) -> Option<Wanted> {
    let name =
        ini(text, &["Match"], "Name").first().map(|s| s.to_string()).filter(|n| plain_name(n));
    let mac = ini(text, &["Match"], "MACAddress").first().and_then(|m| mac(m));
    (name.is_some() || mac.is_some()).then(|| Wanted {
        file: file.into(),
        stack: "systemd-networkd",
        name,
        mac,
        sets_name: None,
    })
}

/// A `.link` file's rename, if it names the interface.
pub fn link(text: &str) -> Option<Rename> {
    let name = ini(text, &["Link"], "Name").first()?.to_string();
    Some(Rename {
        mac: ini(text, &["Match"], "MACAddress").first().and_then(|m| mac(m)),
        driver: ini(text, &["Match"], "Driver").first().map(|s| s.to_string()),
        name,
    })
}

/// What the target's NICs will be: their MACs (in order) and the guest's renames.
#[derive(Debug, Clone, Default)]
pub struct TargetNics {
    /// The MACs of the target's NICs.
    pub macs: Vec<String>,
    /// The kernel names the NICs keep (`net.ifnames=0`: `eth0`…).
    pub eth_names: bool,
    /// `.link` renames in the guest.
    pub renames: Vec<Rename>,
}

impl TargetNics {
    /// Names some NIC of the target will have.
    fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.renames {
            let applies = match (&r.mac, &r.driver) {
                (Some(m), _) => self.macs.contains(m),
                (None, Some(d)) => d == "virtio_net" || d == "virtio-net",
                (None, None) => false,
            };
            if applies {
                out.push(r.name.clone());
            }
        }
        if self.eth_names {
            out.extend((0..self.macs.len().max(1)).map(|i| format!("eth{i}")));
        }
        out
    }

    /// True for the names a virtio NIC gets from udev without a rename on a q35 or i440fx
    /// machine (`enp1s0`, `ens3`).
    fn predictable(name: &str) -> bool {
        let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        if let Some(rest) = name.strip_prefix("enp")
            && let Some(bus) = rest.strip_suffix("s0")
        {
            return digits(bus);
        }
        name.strip_prefix("ens")
            .is_some_and(|s| digits(s) && s.parse::<u32>().is_ok_and(|n| n < 32))
    }

    /// Checks one configuration: `Ok` with what it will match, or why it will not apply.
    /// systemd-networkd `.network` files are match rules by design (a file whose `[Match]`
    /// fits no interface is unused, not broken), so they only ever pass, with a note.
    pub fn check(&self, w: &Wanted) -> Result<String, String> {
        let verdict = self.check_strict(w);
        match verdict {
            Err(why) if w.stack == "systemd-networkd" => {
                Ok(format!("{} matches no NIC on KVM and is unused ({why})", w.file))
            }
            v => v,
        }
    }

    fn check_strict(&self, w: &Wanted) -> Result<String, String> {
        if let Some(m) = &w.mac
            && !self.macs.contains(m)
        {
            return Err(format!(
                "{} ({}) is pinned to MAC {m}, which no NIC of the converted guest has ({})",
                w.file,
                w.stack,
                if self.macs.is_empty() {
                    "it has none with a known MAC".to_string()
                } else {
                    self.macs.join(", ")
                }
            ));
        }
        let names = self.names();
        match (&w.name, &w.mac) {
            (Some(n), _) if names.contains(n) || Self::predictable(n) => {
                Ok(format!("{} ({}) configures {n}", w.file, w.stack))
            }
            (Some(n), _) if w.sets_name.is_some() && w.mac.is_some() => Ok(format!(
                "{} ({}) renames the NIC with MAC {} to {n}",
                w.file,
                w.stack,
                w.mac.as_deref().unwrap_or("")
            )),
            (Some(n), _) => Err(format!(
                "{} ({}) configures {n}, but no interface will have that name on KVM (no .link file renames a NIC of the target to it)",
                w.file, w.stack
            )),
            (None, Some(m)) => Ok(format!("{} ({}) matches MAC {m}", w.file, w.stack)),
            (None, None) => Ok(format!("{} ({}) matches any interface", w.file, w.stack)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: &str = "00:50:56:8a:00:01";

    fn target() -> TargetNics {
        TargetNics {
            macs: vec![MAC.into()],
            eth_names: false,
            renames: vec![
                link(&format!("[Match]\nMACAddress={MAC}\n\n[Link]\nName=ens192\n")).unwrap(),
            ],
        }
    }

    #[test]
    fn netplan_match_set_name_and_broken_files() {
        let ok = "network:\n  version: 2\n  ethernets:\n    ens192:\n      match:\n        macaddress: \"00:50:56:8A:00:01\"\n      set-name: ens192\n      addresses: [10.0.2.15/24]\n";
        let w = netplan("/etc/netplan/50.yaml", ok).unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].mac.as_deref(), Some(MAC));
        assert_eq!(w[0].sets_name.as_deref(), Some("ens192"));
        assert!(target().check(&w[0]).is_ok());
        let foreign =
            TargetNics { macs: vec!["52:54:00:12:34:56".into()], ..TargetNics::default() };
        assert!(foreign.check(&w[0]).unwrap_err().contains("pinned to MAC 00:50:56:8a:00:01"));
        // What the old fixer left: `match:` with nothing under it.
        let empty = "network:\n  ethernets:\n    ens192:\n      match:\n      set-name: ens192\n";
        assert!(netplan("f", empty).unwrap_err().contains("expected mapping"));
        let by_name = "network:\n  ethernets:\n    ens192:\n      dhcp4: true\n";
        let w = netplan("f", by_name).unwrap();
        assert_eq!(w[0].name.as_deref(), Some("ens192"));
        assert!(target().check(&w[0]).is_ok());
        assert!(TargetNics::default().check(&w[0]).is_err());
    }

    #[test]
    fn keyfiles_need_their_interface_name() {
        let k = "[connection]\nid=ens192\ntype=ethernet\ninterface-name=ens192\n\n[ethernet]\nmac-address=00:50:56:8A:00:01\n";
        let w = keyfile("/etc/NetworkManager/system-connections/ens192.nmconnection", k).unwrap();
        assert_eq!(w.name.as_deref(), Some("ens192"));
        assert!(target().check(&w).is_ok());
        let no_rename = TargetNics { macs: vec![MAC.into()], ..TargetNics::default() };
        assert!(no_rename.check(&w).unwrap_err().contains("no interface will have that name"));
        assert!(keyfile("f", "[connection]\ntype=wifi\n").is_none());
    }

    #[test]
    fn other_stacks() {
        let w = ifupdown(
            "/etc/network/interfaces",
            "auto lo\niface lo inet loopback\niface ens192 inet static\niface ens192:1 inet static\n",
        );
        assert_eq!(w.len(), 1);
        assert!(target().check(&w[0]).is_ok());
        let eth = TargetNics { macs: vec![MAC.into()], eth_names: true, renames: vec![] };
        let w = ifupdown("f", "iface eth0 inet dhcp\n");
        assert!(eth.check(&w[0]).is_ok());
        assert!(TargetNics { eth_names: false, ..eth.clone() }.check(&w[0]).is_err());
        let w = ifcfg(
            "/etc/sysconfig/network-scripts/ifcfg-ens192",
            "DEVICE=ens192\nHWADDR=00:50:56:8a:00:02\n",
        )
        .unwrap();
        assert!(target().check(&w).unwrap_err().contains("00:50:56:8a:00:02"));
        let w = networkd("/etc/systemd/network/10.network", "[Match]\nName=enp1s0\n").unwrap();
        assert!(TargetNics::default().check(&w).unwrap().contains("configures enp1s0"));
        let w =
            networkd("/etc/systemd/network/20.network", "[Match]\nMACAddress=52:54:00:de:ad:01\n")
                .unwrap();
        assert!(target().check(&w).unwrap().contains("unused"), "a match rule, not a pin");
    }
}
