//! The domain and validation flags of `convert`, turned into library options, and `--define`.

use std::time::Duration;

use hyper2kvm::libvirt::define::{DefineOptions, Defined, define_file};
use hyper2kvm::libvirt::{DomainOptions, DomainType, Graphics, NetSource};
use hyper2kvm::validate::BootTestOptions;
use hyper2kvm::{ConvertReport, Result};

use crate::cli::DomainArgs;
use hyper2kvm::kubevirt::KubeVirtOptions;

/// The domain options (`None` with `--no-domain`).
pub fn domain_options(a: &DomainArgs) -> Result<Option<DomainOptions>> {
    if a.no_domain {
        return Ok(None);
    }
    let bridge = a.bridge.as_ref().filter(|b| !b.is_empty());
    Ok(Some(DomainOptions {
        domain_type: if a.domain_type == "qemu" { DomainType::Qemu } else { DomainType::Kvm },
        network: match (bridge, &a.network) {
            (Some(b), _) => NetSource::Bridge(b.clone()),
            (None, n) => NetSource::Network(n.clone().unwrap_or_else(|| "default".into())),
        },
        network_chosen: bridge.is_some() || a.network.is_some(),
        network_map: a.network_map.iter().map(|m| network_mapping(m)).collect::<Result<_>>()?,
        disk_bus: a.disk_bus.parse()?,
        graphics: match a.graphics.as_str() {
            "spice" => Graphics::Spice,
            "none" => Graphics::None,
            _ => Graphics::Vnc,
        },
        ..DomainOptions::default()
    }))
}

/// The KubeVirt target's options (`None` unless `--target kubevirt`).
pub fn kubevirt_options(a: &DomainArgs) -> Result<Option<KubeVirtOptions>> {
    if a.target != "kubevirt" {
        return Ok(None);
    }
    if let Some(Err(e)) = a.namespace.as_deref().map(hyper2kvm::kubevirt::check_namespace) {
        return Err(hyper2kvm::Error::new(
            hyper2kvm::ErrorKind::InvalidInput,
            format!("--namespace {}", e.message()),
        ));
    }
    Ok(Some(KubeVirtOptions {
        namespace: a.namespace.clone(),
        source: a.datavolume_source.parse()?,
    }))
}

/// One `--network-map SRC=DST` (`DST` a libvirt network, or `bridge:BR`).
fn network_mapping(m: &str) -> Result<(String, NetSource)> {
    let bad = |why: &str| {
        hyper2kvm::Error::new(
            hyper2kvm::ErrorKind::InvalidInput,
            format!("--network-map {m:?}: {why} (expected SRC=DST or SRC=bridge:BR)"),
        )
    };
    let (src, dst) = m.split_once('=').ok_or_else(|| bad("no '='"))?;
    if src.trim().is_empty() || dst.trim().is_empty() {
        return Err(bad("empty name"));
    }
    let dst = match dst.strip_prefix("bridge:") {
        Some(b) if !b.is_empty() => NetSource::Bridge(b.to_string()),
        Some(_) => return Err(bad("empty bridge")),
        None => NetSource::Network(dst.to_string()),
    };
    Ok((src.to_string(), dst))
}

/// The boot test options (`None` without `--boot-test`).
pub fn boot_test_options(a: &DomainArgs) -> Option<BootTestOptions> {
    a.boot_test.then(|| BootTestOptions {
        marker: a.boot_marker.clone(),
        timeout: Duration::from_secs(a.boot_timeout),
        ..BootTestOptions::default()
    })
}

/// Defines the converted domain when `--define` (or `LIBVIRT_INTEGRATION=true`) asks.
pub fn define_if_asked(a: &DomainArgs, report: &ConvertReport) -> Result<Option<Defined>> {
    if !a.define {
        return Ok(None);
    }
    let Some(d) = &report.domain else {
        return Err(hyper2kvm::Error::new(
            hyper2kvm::ErrorKind::InvalidInput,
            "--define needs the domain (drop --no-domain)",
        ));
    };
    let disks: Vec<_> = d.domain.disks.iter().map(|x| x.path.clone()).collect();
    let opts =
        DefineOptions { uri: a.libvirt_uri.clone(), autostart: a.autostart, pool: a.pool.clone() };
    define_file(&d.xml, &disks, &opts).map(Some)
}
