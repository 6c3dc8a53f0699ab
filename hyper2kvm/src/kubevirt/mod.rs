//! The KubeVirt definition of a converted guest: from the same planned libvirt [`Domain`] that
//! becomes `NAME.xml`, one `kubevirt.io/v1` `VirtualMachine` and one CDI `DataVolume` per disk,
//! written beside the disks as `NAME.kubevirt.yaml` (a YAML stream, `---` between documents).
//!
//! What the domain carries that KubeVirt cannot express is mapped to its nearest field and
//! reported as a warning ([`KubeVirtGuest::warnings`]): a local-time clock (KubeVirt keeps the
//! RTC in UTC or a named time zone), an i440fx machine (KubeVirt runs q35 only), NICs on
//! networks other than the pod's (they need a Multus `NetworkAttachmentDefinition`).
//! KubeVirt adds the serial console (`autoattachSerialConsole`) and the guest agent's
//! virtio-serial channel to every VM itself; the agent needs no field.

mod build;
mod names;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use build::build;
pub use names::{dns_label, is_dns_label};

use crate::error::{Error, ErrorKind, Result};
use crate::io::write_atomically;

/// Where each disk's `DataVolume` gets its data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DataVolumeSource {
    /// `source: upload`: the disk file is uploaded into it (`virtctl image-upload dv NAME
    /// --no-create --image-path FILE`; the file's name is the `hyper2kvm.io/disk-file`
    /// annotation).
    #[default]
    Upload,
    /// `source: pvc`: cloned from a PVC of the same name in this namespace, into which the
    /// disk was imported before.
    Pvc {
        /// The namespace holding the imported PVCs.
        namespace: String,
    },
}

impl std::str::FromStr for DataVolumeSource {
    type Err = Error;

    /// `upload` or `pvc:NAMESPACE`.
    fn from_str(s: &str) -> Result<DataVolumeSource> {
        match s.split_once(':') {
            None if s == "upload" => Ok(DataVolumeSource::Upload),
            Some(("pvc", ns)) if names::is_dns_label(ns) => {
                Ok(DataVolumeSource::Pvc { namespace: ns.to_string() })
            }
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a DataVolume source is \"upload\" or \"pvc:NAMESPACE\" (a DNS label), not {s:?}"
                ),
            )),
        }
    }
}

/// `ns` as a Kubernetes namespace: an `InvalidInput` error (`"NS" is not a Kubernetes
/// namespace (a DNS label)`, for the caller to prefix with where it came from) unless it is a
/// DNS label.
pub fn check_namespace(ns: &str) -> Result<()> {
    if names::is_dns_label(ns) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidInput,
        format!("{ns:?} is not a Kubernetes namespace (a DNS label)"),
    ))
}

/// How the KubeVirt definition is written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubeVirtOptions {
    /// `metadata.namespace` of every object (none: the namespace `kubectl` is pointed at).
    pub namespace: Option<String>,
    /// Where the DataVolumes get their data.
    pub source: DataVolumeSource,
}

/// One converted disk, in the domain's order (boot disk first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeDisk {
    /// The output file's name (beside the YAML).
    pub file: String,
    /// Guest-visible size in bytes: the DataVolume's requested storage.
    pub virtual_size: u64,
}

/// A guest's KubeVirt objects.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeVirtGuest {
    /// The `VirtualMachine`, then one `DataVolume` per disk.
    pub documents: Vec<Value>,
    /// What the domain has that KubeVirt cannot express, and how it was mapped.
    pub warnings: Vec<String>,
}

impl KubeVirtGuest {
    /// The documents as one YAML stream.
    pub fn to_yaml(&self) -> Result<String> {
        let mut out = String::new();
        for d in &self.documents {
            let doc = serde_yaml_ng::to_string(d)
                .map_err(|e| Error::new(ErrorKind::Internal, format!("cannot write YAML: {e}")))?;
            out.push_str("---\n");
            out.push_str(&doc);
        }
        Ok(out)
    }
}

/// `OUT_DIR/NAME.kubevirt.yaml`.
pub fn kubevirt_path(out_dir: &Path, name: &str) -> PathBuf {
    out_dir.join(format!("{name}.kubevirt.yaml"))
}

/// Writes the guest's YAML to `path` (atomically).
pub fn write(guest: &KubeVirtGuest, path: &Path) -> Result<()> {
    write_atomically(path, guest.to_yaml()?.as_bytes())
}
