//! Serializing a [`Domain`] as libvirt domain XML (quick-xml's writer: every name and value
//! escaped by it, no string templates).

use std::io;

use quick_xml::Writer;
use quick_xml::events::BytesText;

use super::model::{Clock, DiskBus, Domain, Firmware, Graphics, NetSource};

type W = Writer<Vec<u8>>;

fn text(w: &mut W, name: &str, attrs: &[(&str, &str)], value: &str) -> io::Result<()> {
    w.create_element(name)
        .with_attributes(attrs.iter().copied())
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn empty(w: &mut W, name: &str, attrs: &[(&str, &str)]) -> io::Result<()> {
    w.create_element(name).with_attributes(attrs.iter().copied()).write_empty()?;
    Ok(())
}

fn nest(
    w: &mut W,
    name: &str,
    attrs: &[(&str, &str)],
    inner: impl FnOnce(&mut W) -> io::Result<()>,
) -> io::Result<()> {
    w.create_element(name).with_attributes(attrs.iter().copied()).write_inner_content(inner)?;
    Ok(())
}

fn os(w: &mut W, d: &Domain) -> io::Result<()> {
    nest(w, "os", &[], |w| {
        text(w, "type", &[("arch", "x86_64"), ("machine", d.machine.as_str())], "hvm")?;
        if let Firmware::Uefi(u) = &d.firmware {
            let secure = if u.secure_boot { "yes" } else { "no" };
            let loader = u.loader.to_string_lossy();
            text(
                w,
                "loader",
                &[("readonly", "yes"), ("secure", secure), ("type", "pflash")],
                &loader,
            )?;
            let nvram = u.nvram.to_string_lossy();
            match &u.template {
                Some(t) => text(w, "nvram", &[("template", &t.to_string_lossy())], &nvram)?,
                None => text(w, "nvram", &[], &nvram)?,
            }
        }
        Ok(())
    })
}

fn features(w: &mut W, d: &Domain) -> io::Result<()> {
    nest(w, "features", &[], |w| {
        empty(w, "acpi", &[])?;
        empty(w, "apic", &[])?;
        if d.windows {
            nest(w, "hyperv", &[("mode", "custom")], |w| {
                empty(w, "relaxed", &[("state", "on")])?;
                empty(w, "vapic", &[("state", "on")])?;
                empty(w, "spinlocks", &[("state", "on"), ("retries", "8191")])?;
                Ok(())
            })?;
        }
        if matches!(&d.firmware, Firmware::Uefi(u) if u.secure_boot) {
            empty(w, "smm", &[("state", "on")])?;
        }
        Ok(())
    })
}

fn cpu(w: &mut W, d: &Domain) -> io::Result<()> {
    let Some(cores) = d.cores_per_socket.filter(|&c| c > 0 && d.vcpus.is_multiple_of(c)) else {
        return Ok(());
    };
    let sockets = (d.vcpus / cores).to_string();
    let cores = cores.to_string();
    nest(w, "cpu", &[], |w| {
        empty(
            w,
            "topology",
            &[("sockets", &sockets), ("dies", "1"), ("cores", &cores), ("threads", "1")],
        )
    })
}

fn clock(w: &mut W, d: &Domain) -> io::Result<()> {
    let offset = match d.clock {
        Clock::Utc => "utc",
        Clock::Localtime => "localtime",
    };
    nest(w, "clock", &[("offset", offset)], |w| {
        empty(w, "timer", &[("name", "rtc"), ("tickpolicy", "catchup")])?;
        empty(w, "timer", &[("name", "pit"), ("tickpolicy", "delay")])?;
        empty(w, "timer", &[("name", "hpet"), ("present", "no")])?;
        if d.windows {
            empty(w, "timer", &[("name", "hypervclock"), ("present", "yes")])?;
        }
        Ok(())
    })
}

fn devices(w: &mut W, d: &Domain) -> io::Result<()> {
    nest(w, "devices", &[], |w| {
        for disk in &d.disks {
            nest(w, "disk", &[("type", "file"), ("device", "disk")], |w| {
                empty(
                    w,
                    "driver",
                    &[("name", "qemu"), ("type", &disk.format), ("discard", "unmap")],
                )?;
                empty(w, "source", &[("file", &disk.path.to_string_lossy())])?;
                let bus = match disk.bus {
                    DiskBus::VirtioBlk => "virtio",
                    DiskBus::VirtioScsi => "scsi",
                    DiskBus::Sata => "sata",
                };
                empty(w, "target", &[("dev", &disk.target), ("bus", bus)])?;
                empty(w, "boot", &[("order", &disk.boot_order.to_string())])
            })?;
        }
        if d.disks.iter().any(|x| x.bus == DiskBus::VirtioScsi) {
            empty(w, "controller", &[("type", "scsi"), ("index", "0"), ("model", "virtio-scsi")])?;
        }
        for nic in &d.interfaces {
            let (kind, attr, value) = match &nic.source {
                NetSource::Network(n) => ("network", "network", n),
                NetSource::Bridge(b) => ("bridge", "bridge", b),
            };
            nest(w, "interface", &[("type", kind)], |w| {
                if let Some(mac) = &nic.mac {
                    empty(w, "mac", &[("address", mac)])?;
                }
                empty(w, "source", &[(attr, value)])?;
                empty(w, "model", &[("type", nic.model.as_str())])
            })?;
        }
        nest(w, "serial", &[("type", "pty")], |w| empty(w, "target", &[("port", "0")]))?;
        nest(w, "console", &[("type", "pty")], |w| {
            empty(w, "target", &[("type", "serial"), ("port", "0")])
        })?;
        nest(w, "channel", &[("type", "unix")], |w| {
            empty(w, "target", &[("type", "virtio"), ("name", "org.qemu.guest_agent.0")])
        })?;
        empty(w, "input", &[("type", "tablet"), ("bus", "usb")])?;
        let listen = |w: &mut W, kind: &str| {
            nest(
                w,
                "graphics",
                &[("type", kind), ("autoport", "yes"), ("listen", "127.0.0.1")],
                |w| empty(w, "listen", &[("type", "address"), ("address", "127.0.0.1")]),
            )
        };
        match d.graphics {
            Graphics::Vnc => listen(w, "vnc")?,
            Graphics::Spice => listen(w, "spice")?,
            Graphics::None => {}
        }
        if d.graphics != Graphics::None {
            let model = if d.windows { "vga" } else { "virtio" };
            nest(w, "video", &[], |w| {
                empty(w, "model", &[("type", model), ("heads", "1"), ("primary", "yes")])
            })?;
        }
        empty(w, "memballoon", &[("model", "virtio")])?;
        nest(w, "rng", &[("model", "virtio")], |w| {
            text(w, "backend", &[("model", "random")], "/dev/urandom")
        })?;
        Ok(())
    })
}

/// The domain as libvirt XML text.
pub fn to_xml(d: &Domain) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let written = nest(&mut w, "domain", &[("type", d.domain_type.as_str())], |w| {
        text(w, "name", &[], &d.name)?;
        text(w, "uuid", &[], &d.uuid)?;
        if let Some(g) = &d.genid {
            text(w, "genid", &[], g)?;
        }
        text(w, "description", &[], &d.description)?;
        text(w, "memory", &[("unit", "MiB")], &d.memory_mib.to_string())?;
        text(w, "currentMemory", &[("unit", "MiB")], &d.memory_mib.to_string())?;
        text(w, "vcpu", &[("placement", "static")], &d.vcpus.to_string())?;
        os(w, d)?;
        features(w, d)?;
        cpu(w, d)?;
        clock(w, d)?;
        text(w, "on_poweroff", &[], "destroy")?;
        text(w, "on_reboot", &[], "restart")?;
        text(w, "on_crash", &[], "destroy")?;
        nest(w, "pm", &[], |w| {
            empty(w, "suspend-to-mem", &[("enabled", "no")])?;
            empty(w, "suspend-to-disk", &[("enabled", "no")])
        })?;
        devices(w, d)
    });
    // Writing into a Vec cannot fail.
    debug_assert!(written.is_ok());
    let mut out = String::from_utf8_lossy(&w.into_inner()).into_owned();
    out.push('\n');
    out
}
