//! Defining a converted domain in libvirt through the `virt` crate: at a URI
//! (`LIBVIRT_URI`), with its disks in a storage pool (`LIBVIRT_POOL`) and autostart
//! (`LIBVIRT_AUTOSTART`) when asked.
//!
//! A pool is used by refreshing it: the disks must already lie in the pool's directory
//! (convert into it), so libvirt lists them as volumes without another copy.

use std::path::{Path, PathBuf};

use serde::Serialize;
use virt::connect::Connect;

use crate::appliance::xml::{self, Element};
use crate::error::{Error, ErrorKind, Result};

/// Where and how to define.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefineOptions {
    /// Connection URI (`qemu:///system` when absent, libvirt's default otherwise).
    pub uri: Option<String>,
    /// Start the domain when the host boots.
    pub autostart: bool,
    /// A directory storage pool holding the disks.
    pub pool: Option<String>,
}

/// What libvirt defined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Defined {
    /// The URI connected to.
    pub uri: String,
    /// Domain name.
    pub name: String,
    /// Domain UUID.
    pub uuid: String,
    /// Autostart as set.
    pub autostart: bool,
    /// The domain XML as libvirt now holds it.
    pub xml: String,
}

fn verr(what: &str, e: virt::error::Error) -> Error {
    Error::new(ErrorKind::ToolFailed, format!("libvirt: {what}: {}", e.message()))
}

fn pool_path(pool_xml: &str) -> Option<PathBuf> {
    let root: Element = xml::parse(Path::new("pool.xml"), pool_xml).ok()?;
    root.child("target").and_then(|t| t.child_text("path")).map(PathBuf::from)
}

/// Defines the domain a conversion wrote at `xml_path`, whose disks are `disks` (what
/// `convert --define` and the daemon's `LIBVIRT_INTEGRATION` do).
pub fn define_file(xml_path: &Path, disks: &[PathBuf], opts: &DefineOptions) -> Result<Defined> {
    let xml = std::fs::read_to_string(xml_path).map_err(|e| Error::io(xml_path, "reading", e))?;
    define(&xml, disks, opts)
}

/// Defines `domain_xml` whose disks are `disks`.
pub fn define(domain_xml: &str, disks: &[PathBuf], opts: &DefineOptions) -> Result<Defined> {
    let uri = opts.uri.clone().unwrap_or_else(|| "qemu:///system".into());
    let conn = Connect::open(Some(&uri)).map_err(|e| verr(&format!("connecting to {uri}"), e))?;
    if let Some(name) = &opts.pool {
        let pool = conn
            .lookup_storage_pool_by_name(name)
            .map_err(|e| verr(&format!("storage pool {name:?}"), e))?;
        let desc = pool.xml_desc(0).map_err(|e| verr("reading the pool", e))?;
        let dir = pool_path(&desc).ok_or_else(|| {
            Error::new(ErrorKind::Unsupported, format!("storage pool {name:?} has no directory"))
        })?;
        for d in disks {
            let inside =
                d.parent().and_then(|p| p.canonicalize().ok()).zip(dir.canonicalize().ok());
            if inside.is_none_or(|(p, dir)| p != dir) {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "disk {} is not in storage pool {name:?} ({}); convert into that directory",
                        d.display(),
                        dir.display()
                    ),
                ));
            }
        }
        pool.refresh(0).map_err(|e| verr(&format!("refreshing pool {name:?}"), e))?;
    }
    let dom = conn.define_domain_xml(domain_xml).map_err(|e| verr("defining the domain", e))?;
    if opts.autostart {
        dom.set_autostart(true).map_err(|e| verr("setting autostart", e))?;
    }
    Ok(Defined {
        uri,
        name: dom.name().map_err(|e| verr("reading the name", e))?,
        uuid: dom.uuid_string().map_err(|e| verr("reading the UUID", e))?,
        autostart: dom.autostart().unwrap_or(false),
        xml: dom.xml_desc(0).map_err(|e| verr("reading the domain back", e))?,
    })
}
