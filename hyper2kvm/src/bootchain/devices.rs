//! The block devices of the converted disks, and what a device name in `root=`, `/etc/fstab`
//! or `/etc/crypttab` will mean on the target: `UUID=`, `PARTUUID=`, `LABEL=`, `PARTLABEL=`,
//! `/dev/disk/by-*`, `/dev/mapper/…`, `/dev/VG/LV`, `/dev/md*`, and kernel names, which depend
//! on the target's disk bus (`/dev/vda1` on virtio-blk, `/dev/sda1` on virtio-scsi or SATA).

use crate::guest::{Guest, appliance_device, is_controller_name};

/// One block device as the appliance sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockDev {
    /// The appliance's name (`/dev/sda1`, `/dev/vg0/root`).
    pub dev: String,
    /// File-system UUID.
    pub uuid: Option<String>,
    /// Partition UUID (GPT GUID, or the MBR signature and number).
    pub partuuid: Option<String>,
    /// File-system label.
    pub label: Option<String>,
    /// GPT partition name.
    pub partlabel: Option<String>,
    /// Content type (`ext4`, `swap`, `LVM2_member`, `crypto_LUKS`).
    pub fstype: Option<String>,
}

/// Every block device of the converted disks, and the target's naming.
#[derive(Debug, Clone, Default)]
pub struct Devices {
    /// Partitions, whole disks, logical volumes and md arrays.
    pub devs: Vec<BlockDev>,
    /// Device-mapper names of the logical volumes (`vg0-root`) with their `/dev/VG/LV` names.
    pub mapper: Vec<(String, String)>,
    /// Names `/etc/crypttab` opens (`/dev/mapper/NAME` exists once the initramfs unlocks it).
    pub crypt_names: Vec<String>,
    /// The kernel's prefix for disks on the target bus (`vd` or `sd`).
    pub prefix: &'static str,
    /// The target bus, for messages.
    pub bus: String,
}

/// The device-mapper name of `/dev/VG/LV` (dashes doubled, joined by one dash).
pub fn mapper_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

impl Devices {
    /// Reads the devices of the open guest.
    pub fn read(g: &Guest, prefix: &'static str, bus: &str) -> Devices {
        let h = g.handle();
        let mut names: Vec<String> = h.list_devices().unwrap_or_default();
        names.extend(h.list_partitions().unwrap_or_default());
        let lvs = h.lvs().unwrap_or_default();
        names.extend(lvs.iter().cloned());
        names.extend(h.list_md_devices().unwrap_or_default());
        let devs = names
            .into_iter()
            .map(|dev| {
                let b = h.blkid(&dev).unwrap_or_default();
                let get = |keys: &[&str]| {
                    keys.iter().find_map(|k| b.get(*k)).filter(|v| !v.is_empty()).cloned()
                };
                BlockDev {
                    uuid: get(&["UUID"]),
                    partuuid: get(&["PARTUUID", "PART_ENTRY_UUID"]),
                    label: get(&["LABEL"]),
                    partlabel: get(&["PARTLABEL", "PART_ENTRY_NAME"]),
                    fstype: get(&["TYPE"]),
                    dev,
                }
            })
            .collect();
        let mapper = lvs
            .iter()
            .filter_map(|lv| {
                let rest = lv.strip_prefix("/dev/")?;
                let (vg, name) = rest.split_once('/')?;
                Some((mapper_name(vg, name), lv.clone()))
            })
            .collect();
        Devices { devs, mapper, crypt_names: Vec::new(), prefix, bus: bus.to_string() }
    }

    fn by(
        &self,
        what: &str,
        value: &str,
        get: impl Fn(&BlockDev) -> Option<&String>,
    ) -> Result<String, String> {
        self.devs
            .iter()
            .find(|d| get(d).is_some_and(|v| v.eq_ignore_ascii_case(value)))
            .map(|d| d.dev.clone())
            .ok_or_else(|| format!("no device on the converted disks has {what} {value}"))
    }

    /// The appliance device `spec` will name on the target, or why it names none.
    pub fn resolve(&self, spec: &str) -> Result<String, String> {
        let spec = spec.trim_matches(['"', '\'']);
        let tagged = |tag: &str| spec.strip_prefix(tag);
        if let Some(v) = tagged("UUID=").or_else(|| tagged("/dev/disk/by-uuid/")) {
            return self.by("UUID", v, |d| d.uuid.as_ref());
        }
        if let Some(v) = tagged("PARTUUID=").or_else(|| tagged("/dev/disk/by-partuuid/")) {
            return self.by("PARTUUID", v, |d| d.partuuid.as_ref());
        }
        if let Some(v) = tagged("LABEL=").or_else(|| tagged("/dev/disk/by-label/")) {
            return self.by("LABEL", v, |d| d.label.as_ref());
        }
        if let Some(v) = tagged("PARTLABEL=").or_else(|| tagged("/dev/disk/by-partlabel/")) {
            return self.by("PARTLABEL", v, |d| d.partlabel.as_ref());
        }
        if let Some(id) = tagged("/dev/disk/by-id/") {
            if let Some(name) = id.strip_prefix("dm-name-") {
                return self.resolve(&format!("/dev/mapper/{name}"));
            }
            if id.starts_with("dm-uuid-")
                || id.starts_with("md-uuid-")
                || id.starts_with("lvm-pv-uuid-")
            {
                return Ok(spec.to_string());
            }
            return Err(format!(
                "{spec} names the disk by its controller's id, which changes on {}",
                self.bus
            ));
        }
        if tagged("/dev/disk/by-path/").is_some() {
            return Err(format!(
                "{spec} names the disk by its controller's path, which changes on {}",
                self.bus
            ));
        }
        if let Some(name) = tagged("/dev/mapper/") {
            if let Some((_, lv)) = self.mapper.iter().find(|(m, _)| m == name) {
                return Ok(lv.clone());
            }
            if self.crypt_names.iter().any(|c| c == name) {
                return Ok(spec.to_string());
            }
            return Err(format!(
                "{spec}: no logical volume or crypttab entry of that name on the converted disks"
            ));
        }
        if spec.starts_with("/dev/md") {
            return self
                .by("the name", spec, |d| Some(&d.dev))
                .map_err(|_| format!("{spec}: no md array of that name on the converted disks"));
        }
        if let Some(rest) = spec.strip_prefix("/dev/")
            && let Some((vg, lv)) = rest.split_once('/')
            && !lv.contains('/')
        {
            let name = format!("/dev/{vg}/{lv}");
            if self.devs.iter().any(|d| d.dev == name) {
                return Ok(name);
            }
            return Err(format!(
                "{spec}: no logical volume {lv} in a volume group {vg} on the converted disks"
            ));
        }
        if spec.starts_with(&format!("/dev/{}", self.prefix)) {
            let appliance = appliance_device(spec)
                .ok_or_else(|| format!("{spec} is not a device name of {}", self.bus))?;
            return self
                .devs
                .iter()
                .find(|d| d.dev == appliance)
                .map(|d| d.dev.clone())
                .ok_or_else(|| {
                    format!(
                        "{spec} will not exist: the converted disks have no such disk or partition"
                    )
                });
        }
        if is_controller_name(spec) {
            return Err(format!("{spec} will not exist on {}", self.bus));
        }
        Err(format!("{spec} is not a device name hyper2kvm can resolve"))
    }

    /// The device's content type, if known.
    pub fn fstype(&self, dev: &str) -> Option<&str> {
        self.devs.iter().find(|d| d.dev == dev).and_then(|d| d.fstype.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(prefix: &'static str) -> Devices {
        let d = |dev: &str, uuid: &str, label: &str, t: &str| BlockDev {
            dev: dev.into(),
            uuid: Some(uuid.into()),
            partuuid: Some(format!("abcd-{}", &dev[dev.len() - 1..])),
            label: (!label.is_empty()).then(|| label.into()),
            partlabel: None,
            fstype: Some(t.into()),
        };
        Devices {
            devs: vec![
                d("/dev/sda1", "11-aa", "root", "ext4"),
                d("/dev/sda2", "22-bb", "", "swap"),
                d("/dev/vg-0/root", "33-cc", "", "xfs"),
            ],
            mapper: vec![(mapper_name("vg-0", "root"), "/dev/vg-0/root".into())],
            crypt_names: vec!["cryptdata".into()],
            prefix,
            bus: if prefix == "vd" { "virtio-blk".into() } else { "virtio-scsi".into() },
        }
    }

    #[test]
    fn names_resolve_as_the_target_will_see_them() {
        let v = devices("vd");
        assert_eq!(v.resolve("UUID=11-AA").as_deref(), Ok("/dev/sda1"));
        assert_eq!(v.resolve("/dev/disk/by-uuid/22-bb").as_deref(), Ok("/dev/sda2"));
        assert_eq!(v.resolve("PARTUUID=abcd-2").as_deref(), Ok("/dev/sda2"));
        assert_eq!(v.resolve("LABEL=root").as_deref(), Ok("/dev/sda1"));
        assert_eq!(v.resolve("/dev/vda1").as_deref(), Ok("/dev/sda1"));
        assert_eq!(v.resolve("/dev/mapper/vg--0-root").as_deref(), Ok("/dev/vg-0/root"));
        assert_eq!(v.resolve("/dev/vg-0/root").as_deref(), Ok("/dev/vg-0/root"));
        assert_eq!(v.resolve("/dev/mapper/cryptdata").as_deref(), Ok("/dev/mapper/cryptdata"));
        assert_eq!(v.resolve("/dev/sda1").unwrap_err(), "/dev/sda1 will not exist on virtio-blk");
        assert!(v.resolve("/dev/vdb1").unwrap_err().contains("no such disk"));
        assert!(
            v.resolve("UUID=99")
                .unwrap_err()
                .contains("no device on the converted disks has UUID 99")
        );
        assert!(v.resolve("/dev/disk/by-id/ata-VMware_Virtual_IDE_Hard_Drive-part1").is_err());
        assert!(v.resolve("/dev/mapper/nosuch").is_err());
        let s = devices("sd");
        assert_eq!(s.resolve("/dev/sda1").as_deref(), Ok("/dev/sda1"));
        assert_eq!(s.resolve("/dev/vda1").unwrap_err(), "/dev/vda1 will not exist on virtio-scsi");
    }
}
