//! The Artifact Manifest's `configuration` section applied to a Linux guest: users created
//! (with their SSH keys), services enabled or disabled, hostname and `/etc/hosts`, and
//! systemd-networkd files written.
//!
//! Users are made by the guest's own `useradd` and services switched by its own `systemctl`
//! (both work offline in a chroot); files are written by us. [`GuestConfiguration::problems`]
//! checks every value before anything is touched, each problem named by its JSON path.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Change, Fixer};
use crate::error::{Error, ErrorKind, Result};

const FIXER: &str = "configuration";

/// The `configuration` section of the contract (all parts optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GuestConfiguration {
    /// Users to create.
    pub users: Users,
    /// Services to enable and disable.
    pub services: Services,
    /// Hostname, domain and extra `/etc/hosts` entries.
    pub hostname: Option<Hostname>,
    /// Network files.
    pub network: NetworkFiles,
}

/// `configuration.users`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Users {
    /// `users.create[]`.
    pub create: Vec<User>,
}

/// One user to create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Numeric user id (the guest picks one when absent).
    pub uid: Option<u32>,
    /// A crypt(3) hash (never a clear-text password); the account is locked when absent.
    pub password: Option<String>,
    /// Supplementary groups (those the guest lacks are skipped and reported).
    pub groups: Vec<String>,
    /// Login shell.
    pub shell: Option<String>,
    /// Lines for `~/.ssh/authorized_keys`.
    pub ssh_authorized_keys: Vec<String>,
}

/// `configuration.services`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Services {
    /// Units to enable (`.service` is implied).
    pub enable: Vec<String>,
    /// Units to disable.
    pub disable: Vec<String>,
}

/// `configuration.hostname`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hostname {
    /// The short host name.
    pub hostname: String,
    /// The DNS domain, making `hostname.domain` the FQDN.
    pub domain: Option<String>,
    /// Extra `/etc/hosts` lines.
    pub hosts: Vec<HostEntry>,
}

/// One `/etc/hosts` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostEntry {
    /// IPv4 or IPv6 address.
    pub ip: String,
    /// Name(s) for it, separated by spaces.
    pub hostname: String,
}

/// `configuration.network`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkFiles {
    /// Files for `/etc/systemd/network`.
    pub systemd_networkd: Vec<NetworkdFile>,
}

/// One systemd-networkd file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkdFile {
    /// File name (`NAME.network`, `.netdev` or `.link`), no directories.
    pub filename: String,
    /// Its content.
    pub content: String,
}

fn is_login_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_lowercase() || x == '_')
        && c.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == '_' || x == '-')
        && s.len() <= 32
}

fn is_host_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn is_dns_name(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_host_label)
}

fn is_unit_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.@:-\\".contains(c))
}

/// `sshd` → `sshd.service`; names with a unit suffix stay.
fn unit(name: &str) -> String {
    const SUFFIXES: [&str; 6] = [".service", ".socket", ".timer", ".target", ".path", ".mount"];
    if SUFFIXES.iter().any(|s| name.ends_with(s)) {
        name.to_string()
    } else {
        format!("{name}.service")
    }
}

impl GuestConfiguration {
    /// True when there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        *self == GuestConfiguration::default()
    }

    /// Every invalid value, as `configuration.PATH: problem`.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (i, u) in self.users.create.iter().enumerate() {
            let at = format!("configuration.users.create[{i}]");
            if !is_login_name(&u.name) {
                p.push(format!("{at}.name: {:?} is not a login name ([a-z_][a-z0-9_-]*)", u.name));
            }
            if u.uid == Some(0) {
                p.push(format!("{at}.uid: 0 is root's; choose another"));
            }
            if let Some(pw) = &u.password
                && (!pw.starts_with('$') || pw.contains([':', '\n']))
            {
                p.push(format!("{at}.password: not a crypt(3) hash (it must start with '$')"));
            }
            if let Some(sh) = &u.shell
                && (!sh.starts_with('/') || sh.contains([':', '\n']))
            {
                p.push(format!("{at}.shell: {sh:?} is not an absolute path"));
            }
            for (j, g) in u.groups.iter().enumerate() {
                if !is_login_name(g) {
                    p.push(format!("{at}.groups[{j}]: {g:?} is not a group name"));
                }
            }
            for (j, k) in u.ssh_authorized_keys.iter().enumerate() {
                if k.trim().is_empty() || k.contains('\n') {
                    p.push(format!("{at}.ssh_authorized_keys[{j}]: must be one non-empty line"));
                }
            }
        }
        for (list, names) in
            [("enable", &self.services.enable), ("disable", &self.services.disable)]
        {
            for (i, s) in names.iter().enumerate() {
                if !is_unit_name(s) {
                    p.push(format!("configuration.services.{list}[{i}]: {s:?} is not a unit name"));
                }
            }
        }
        if let Some(h) = &self.hostname {
            if !is_host_label(&h.hostname) {
                p.push(format!(
                    "configuration.hostname.hostname: {:?} is not a host name",
                    h.hostname
                ));
            }
            if let Some(d) = &h.domain
                && !is_dns_name(d)
            {
                p.push(format!("configuration.hostname.domain: {d:?} is not a domain name"));
            }
            for (i, e) in h.hosts.iter().enumerate() {
                if e.ip.parse::<IpAddr>().is_err() {
                    p.push(format!(
                        "configuration.hostname.hosts[{i}].ip: {:?} is not an IP address",
                        e.ip
                    ));
                }
                if e.hostname.split_whitespace().next().is_none()
                    || !e.hostname.split_whitespace().all(is_dns_name)
                {
                    p.push(format!(
                        "configuration.hostname.hosts[{i}].hostname: {:?} is not a host name",
                        e.hostname
                    ));
                }
            }
        }
        for (i, f) in self.network.systemd_networkd.iter().enumerate() {
            let ok_ext = [".network", ".netdev", ".link"].iter().any(|e| f.filename.ends_with(e));
            if !ok_ext || f.filename.contains('/') || f.filename.starts_with('.') {
                p.push(format!(
                    "configuration.network.systemd_networkd[{i}].filename: {:?} must be a plain \
                     NAME.network, .netdev or .link",
                    f.filename
                ));
            }
        }
        p
    }
}

/// `/etc/hosts` with the 127.0.1.1 line naming the host and the extra entries present.
fn hosts_file(old: &str, h: &Hostname) -> String {
    let names = match &h.domain {
        Some(d) => format!("{}.{d}\t{}", h.hostname, h.hostname),
        None => h.hostname.clone(),
    };
    let self_line = format!("127.0.1.1\t{names}");
    let mut out = String::new();
    let mut placed = false;
    for line in old.lines() {
        if line.split_whitespace().next() == Some("127.0.1.1") {
            if !placed {
                out.push_str(&self_line);
                out.push('\n');
                placed = true;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !placed {
        out.push_str(&self_line);
        out.push('\n');
    }
    for e in &h.hosts {
        let wanted: Vec<&str> = e.hostname.split_whitespace().collect();
        let present = out.lines().any(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some(e.ip.as_str()) && w.collect::<Vec<_>>() == wanted
        });
        if !present {
            out.push_str(&format!("{}\t{}\n", e.ip, wanted.join(" ")));
        }
    }
    out
}

/// A passwd entry's uid, gid and home.
fn passwd_entry(passwd: &str, name: &str) -> Option<(u32, u32, String)> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[0] == name)
            .then(|| (f[2].parse().unwrap_or(0), f[3].parse().unwrap_or(0), f[5].to_string()))
    })
}

fn has_group(group_file: &str, name: &str) -> bool {
    group_file.lines().any(|l| l.split(':').next() == Some(name))
}

/// Runs `systemctl ACTION UNIT` in the guest, when it has systemctl.
pub(crate) fn systemctl(
    f: &mut Fixer<'_>,
    fixer: &'static str,
    action: &str,
    unit: &str,
) -> Result<()> {
    if f.g.is_file("/usr/bin/systemctl") || f.g.is_file("/bin/systemctl") {
        f.run(fixer, &["systemctl", action, unit])
    } else {
        f.skip(fixer, unit, &format!("no systemctl in the guest to {action} it"));
        Ok(())
    }
}

fn create_user(f: &mut Fixer<'_>, u: &User) -> Result<()> {
    let passwd = f.g.read_text("/etc/passwd")?.unwrap_or_default();
    if passwd_entry(&passwd, &u.name).is_some() {
        f.skip(FIXER, &format!("user {}", u.name), "already exists; left as it is");
    } else {
        let groups = f.g.read_text("/etc/group")?.unwrap_or_default();
        let (have, lack): (Vec<&String>, Vec<&String>) =
            u.groups.iter().partition(|g| has_group(&groups, g));
        for g in lack {
            f.skip(
                FIXER,
                &format!("group {g}"),
                &format!("not in the guest; {} not added", u.name),
            );
        }
        let uid = u.uid.map(|n| n.to_string());
        let have = have.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
        let mut argv: Vec<&str> = vec!["useradd", "-m"];
        let mut shown: Vec<&str> = argv.clone();
        for (flag, value) in [("-u", uid.as_deref()), ("-s", u.shell.as_deref())] {
            if let Some(v) = value {
                argv.extend([flag, v]);
                shown.extend([flag, v]);
            }
        }
        if !have.is_empty() {
            argv.extend(["-G", &have]);
            shown.extend(["-G", &have]);
        }
        if let Some(pw) = &u.password {
            argv.extend(["-p", pw]);
            shown.extend(["-p", "(hash)"]);
        }
        argv.push(&u.name);
        shown.push(&u.name);
        f.changes.push(Change::new(FIXER, super::Action::Run, shown.join(" ")));
        if !f.opts.dry_run {
            f.g.command(&argv)?;
        }
    }
    if u.ssh_authorized_keys.is_empty() {
        return Ok(());
    }
    let passwd = f.g.read_text("/etc/passwd")?.unwrap_or_default();
    let (uid, gid, home) = match passwd_entry(&passwd, &u.name) {
        Some(e) => e,
        None if f.opts.dry_run => (0, 0, format!("/home/{}", u.name)),
        None => {
            return Err(Error::new(
                ErrorKind::GuestInspection,
                format!("user {} is not in /etc/passwd after useradd", u.name),
            ));
        }
    };
    let dir = format!("{home}/.ssh");
    let keys = format!("{}/authorized_keys", dir);
    let old = f.g.read_text(&keys)?.unwrap_or_default();
    let mut new = old.clone();
    for k in &u.ssh_authorized_keys {
        if !old.lines().any(|l| l.trim() == k.trim()) {
            new.push_str(k.trim());
            new.push('\n');
        }
    }
    if new == old {
        return Ok(());
    }
    let h = f.g.handle();
    let e = |what: &str, err| crate::guest::gerr(&format!("{what} {dir}"), err);
    if !f.opts.dry_run && !f.g.exists(&dir) {
        h.mkdir_p(&dir).map_err(|x| e("creating", x))?;
    }
    f.create(FIXER, &keys, &new)?;
    if !f.opts.dry_run {
        h.chmod(0o700, &dir).map_err(|x| e("chmod", x))?;
        h.chmod(0o600, &keys).map_err(|x| e("chmod", x))?;
        h.chown(uid as i32, gid as i32, &dir).map_err(|x| e("chown", x))?;
        h.chown(uid as i32, gid as i32, &keys).map_err(|x| e("chown", x))?;
    }
    Ok(())
}

/// Applies the configuration (checked first: nothing is touched when a value is invalid).
pub(crate) fn apply(f: &mut Fixer<'_>, c: &GuestConfiguration) -> Result<()> {
    let problems = c.problems();
    if !problems.is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, problems.join("; ")));
    }
    if let Some(h) = &c.hostname {
        f.create(FIXER, "/etc/hostname", &format!("{}\n", h.hostname))?;
        let old = f.g.read_text("/etc/hosts")?.unwrap_or_default();
        f.create(FIXER, "/etc/hosts", &hosts_file(&old, h))?;
    }
    for u in &c.users.create {
        create_user(f, u)?;
    }
    for file in &c.network.systemd_networkd {
        if !f.opts.dry_run && !f.g.exists("/etc/systemd/network") {
            f.g.handle()
                .mkdir_p("/etc/systemd/network")
                .map_err(|e| crate::guest::gerr("creating /etc/systemd/network", e))?;
        }
        f.create(FIXER, &format!("/etc/systemd/network/{}", file.filename), &file.content)?;
    }
    let mut enable: Vec<String> = c.services.enable.iter().map(|s| unit(s)).collect();
    if !c.network.systemd_networkd.is_empty()
        && !enable.iter().any(|u| u == "systemd-networkd.service")
    {
        enable.insert(0, "systemd-networkd.service".to_string());
    }
    for s in &enable {
        systemctl(f, FIXER, "enable", s)?;
    }
    for s in &c.services.disable {
        systemctl(f, FIXER, "disable", &unit(s))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_shape_deserializes() {
        let c: GuestConfiguration = serde_json::from_str(
            r#"{"users": {"create": [{"name": "ops", "uid": 1500, "password": "$6$x$y",
                "groups": ["sudo"], "shell": "/bin/bash", "ssh_authorized_keys": ["ssh-ed25519 AAAA ops"]}]},
               "services": {"enable": ["ssh"], "disable": ["cups.service"]},
               "hostname": {"hostname": "web1", "domain": "example.com",
                            "hosts": [{"ip": "10.0.0.5", "hostname": "db db.example.com"}]},
               "network": {"systemd_networkd": [{"filename": "10-eth.network", "content": "[Match]\n"}]}}"#,
        )
        .unwrap();
        assert_eq!(c.users.create[0].uid, Some(1500));
        assert_eq!(c.hostname.as_ref().unwrap().domain.as_deref(), Some("example.com"));
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert!(!c.is_empty());
        assert!(GuestConfiguration::default().is_empty());
    }

    #[test]
    fn every_bad_value_is_reported_with_its_path() {
        let c: GuestConfiguration = serde_json::from_str(
            r#"{"users": {"create": [{"name": "Root!", "uid": 0, "password": "hunter2",
                "shell": "bash", "groups": ["wheel:x"], "ssh_authorized_keys": ["a\nb"]}]},
               "services": {"enable": ["../evil"]},
               "hostname": {"hostname": "-bad", "domain": "ex..com", "hosts": [{"ip": "10.0.0", "hostname": ""}]},
               "network": {"systemd_networkd": [{"filename": "../../etc/passwd", "content": ""}]}}"#,
        )
        .unwrap();
        let p = c.problems();
        for path in [
            "users.create[0].name",
            "users.create[0].uid",
            "users.create[0].password",
            "users.create[0].shell",
            "users.create[0].groups[0]",
            "users.create[0].ssh_authorized_keys[0]",
            "services.enable[0]",
            "hostname.hostname",
            "hostname.domain",
            "hostname.hosts[0].ip",
            "hostname.hosts[0].hostname",
            "network.systemd_networkd[0].filename",
        ] {
            assert!(
                p.iter().any(|x| x.starts_with(&format!("configuration.{path}:"))),
                "{path}: {p:?}"
            );
        }
        assert_eq!(p.len(), 12, "{p:?}");
    }

    #[test]
    fn hosts_file_names_the_host_once_and_adds_entries_once() {
        let h = Hostname {
            hostname: "web1".into(),
            domain: Some("example.com".into()),
            hosts: vec![HostEntry { ip: "10.0.0.5".into(), hostname: "db".into() }],
        };
        let old = "127.0.0.1\tlocalhost\n127.0.1.1\tvmware-debian\n::1 localhost\n";
        let new = hosts_file(old, &h);
        assert_eq!(
            new,
            "127.0.0.1\tlocalhost\n127.0.1.1\tweb1.example.com\tweb1\n::1 localhost\n10.0.0.5\tdb\n"
        );
        assert_eq!(hosts_file(&new, &h), new, "applying twice changes nothing");
        let bare = Hostname { hostname: "h".into(), ..Default::default() };
        assert_eq!(hosts_file("", &bare), "127.0.1.1\th\n");
    }

    #[test]
    fn units_and_passwd_entries() {
        assert_eq!(unit("ssh"), "ssh.service");
        assert_eq!(unit("fstrim.timer"), "fstrim.timer");
        let passwd = "root:x:0:0:root:/root:/bin/bash\nops:x:1500:1500::/home/ops:/bin/sh\n";
        assert_eq!(passwd_entry(passwd, "ops"), Some((1500, 1500, "/home/ops".into())));
        assert_eq!(passwd_entry(passwd, "op"), None);
        assert!(has_group("sudo:x:27:\n", "sudo"));
        assert!(!has_group("sudo:x:27:\n", "wheel"));
    }
}
