//! The guest's block devices as the appliance sees them, each with what `blkid` says of it
//! (file system type, UUID, label), read once per appliance session.

use std::collections::HashMap;

use super::Guest;

/// One whole disk, partition or logical volume.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockDevice {
    /// Appliance device name (`/dev/sda1`, `/dev/vg0/root`).
    pub name: String,
    /// blkid's `TYPE` (`ext4`, `xfs`, `swap`, `LVM2_member`, `BitLocker`, …); empty if none.
    pub fs_type: String,
    /// blkid's `UUID` (file system UUID).
    pub uuid: String,
    /// blkid's `LABEL`.
    pub label: String,
    /// blkid's `PARTUUID` (the partition's own UUID; `DISKID-NN` on MBR disks).
    pub partuuid: String,
    /// blkid's `PARTLABEL` (GPT partition name).
    pub partlabel: String,
}

impl BlockDevice {
    fn from_blkid(name: &str, tags: &HashMap<String, String>) -> BlockDevice {
        let tag = |k: &str| tags.get(k).cloned().unwrap_or_default();
        BlockDevice {
            name: name.to_string(),
            fs_type: tag("TYPE"),
            uuid: tag("UUID"),
            label: tag("LABEL"),
            partuuid: tag("PARTUUID"),
            partlabel: tag("PARTLABEL"),
        }
    }
}

/// Every whole disk, partition, and (when a partition is an LVM physical volume) logical
/// volume, in the appliance's order. Devices blkid cannot read are listed with empty tags.
pub(crate) fn scan(g: &Guest) -> Vec<BlockDevice> {
    let h = g.handle();
    let read = |name: &String| match h.blkid(name) {
        Ok(tags) => BlockDevice::from_blkid(name, &tags),
        Err(_) => BlockDevice { name: name.clone(), ..BlockDevice::default() },
    };
    let mut names = h.list_devices().unwrap_or_default();
    names.extend(h.list_partitions().unwrap_or_default());
    let mut out: Vec<BlockDevice> = names.iter().map(read).collect();
    if out.iter().any(|d| d.fs_type == "LVM2_member") {
        out.extend(h.lvs().unwrap_or_default().iter().map(read));
    }
    out
}
