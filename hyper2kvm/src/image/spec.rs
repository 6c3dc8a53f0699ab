//! How qemu opens a probed image: a `json:` block-device description of the image, the byte
//! range of an OVA it lies in, and its backing chain.

use serde_json::json;

use super::{DiskImage, FormatDetails};
use crate::error::{Error, Result};
use crate::formats::vhd::VhdDetails;
use crate::qemu_img::{BlockSpec, file_node};

impl DiskImage {
    /// How qemu opens this image and its backing chain.
    pub fn block_spec(&self) -> Result<BlockSpec> {
        let image = self;
        let file = match image.region {
            Some(r) => {
                json!({ "driver": "raw", "offset": r.offset, "size": r.size, "file": file_node(&image.path) })
            }
            None => file_node(&image.path),
        };
        let mut node = match &image.details {
            // A createType qemu's vmdk driver refuses (vmfsThin, vmfsEagerZeroedThick, …) with a
            // single flat extent: read the extent's bytes directly.
            FormatDetails::Vmdk(v) if !v.qemu_opens_directly() => {
                let e = v
                    .extents
                    .first()
                    .filter(|e| e.kind.is_flat() && v.extents.len() == 1)
                    .ok_or_else(|| {
                        Error::unsupported(
                            &image.path,
                            format!("createType {:?} cannot be opened", v.create_type),
                        )
                    })?;
                let path = e.path.as_deref().unwrap_or(&image.path);
                json!({ "driver": "raw", "offset": e.offset, "size": e.size, "file": file_node(path) })
            }
            FormatDetails::Vhd(VhdDetails { disk_type, .. }) if disk_type == "differencing" => {
                return Err(Error::unsupported(
                    &image.path,
                    "qemu cannot read VHD differencing disks (convert merges them itself)",
                ));
            }
            _ => json!({ "driver": image.format.qemu_driver(), "file": file }),
        };
        if let Some(parent) = &image.backing {
            node["backing"] = parent.block_spec()?.as_json().clone();
        }
        Ok(BlockSpec::from_json(node))
    }
}
