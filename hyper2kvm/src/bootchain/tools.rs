//! The guest's own tools, run on its configuration where the guest has them: what the fixers
//! left must be valid for the programs that will read it at boot, not only for our parsers.
//!
//! - ifupdown: `ifup --no-act --all` parses `/etc/network/interfaces` and what it sources;
//! - netplan: `netplan generate` on a copy of `/etc/netplan` (it writes its output beside the
//!   copy, not into the guest's `/run`).
//!
//! Each runs in the appliance in a chroot of the guest, with its scratch space in a fresh
//! directory under the guest's `/tmp` that is removed afterwards, so only a writable guest (the
//! converted disks) is checked; on a read-only source the check is left out.

use crate::guest::{Guest, message};

/// One validator: its name for messages, the program that must exist, and the shell script
/// (`$d` is its scratch directory) whose failure means the configuration is invalid.
struct Tool {
    what: &'static str,
    programs: &'static [&'static str],
    wanted: fn(&Guest) -> bool,
    script: &'static str,
}

const TOOLS: &[Tool] = &[
    Tool {
        what: "ifup --no-act --all (ifupdown)",
        programs: &["/usr/sbin/ifup", "/sbin/ifup"],
        wanted: |g| g.is_file("/etc/network/interfaces"),
        script: "ifup --no-act --all --no-mappings --no-scripts --state-dir \"$d\" \
                 -i /etc/network/interfaces >/dev/null",
    },
    Tool {
        what: "netplan generate",
        programs: &["/usr/sbin/netplan", "/usr/bin/netplan"],
        wanted: |g| {
            !g.glob("/etc/netplan/*.yaml").is_empty() || !g.glob("/etc/netplan/*.yml").is_empty()
        },
        script: "mkdir -p \"$d/etc\" && cp -a /etc/netplan \"$d/etc/\" && \
                 netplan generate --root-dir \"$d\"",
    },
];

/// Runs every validator the guest has; each result is `(passed, detail)`.
pub fn run(g: &Guest) -> Vec<(bool, String)> {
    if !g.writable() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for t in TOOLS {
        if !t.programs.iter().any(|p| g.is_file(p)) || !(t.wanted)(g) {
            continue;
        }
        let script = format!(
            "d=$(mktemp -d /tmp/hyper2kvm-check.XXXXXX) || exit 1; ( {} ) 1>&2; rc=$?; rm -rf \"$d\"; exit $rc",
            t.script
        );
        tracing::info!("running the guest's {}", t.what);
        match g.handle().command(&["/bin/sh", "-c", &script]) {
            Ok(_) => out.push((true, format!("the guest's {} accepts its configuration", t.what))),
            Err(e) => out.push((
                false,
                format!("the guest's {} rejects its configuration: {}", t.what, message(&e).trim()),
            )),
        }
    }
    out
}
