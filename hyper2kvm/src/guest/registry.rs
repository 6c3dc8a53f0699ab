//! A Windows guest's registry hives through libguestfs's hivex calls: read (inspection) or
//! edited offline, each change recorded (hive, key, value, old, new) like the Linux file edits.

use super::{Action, Change, Guest};
use crate::error::{Error, ErrorKind, Result};

const FIXER: &str = "windows-registry";

/// Registry value types (`winnt.h`).
pub const REG_SZ: i64 = 1;
/// A string with `%VARIABLES%`.
pub const REG_EXPAND_SZ: i64 = 2;
/// Raw bytes.
pub const REG_BINARY: i64 = 3;
/// A 32-bit little-endian number.
pub const REG_DWORD: i64 = 4;
/// A list of strings.
pub const REG_MULTI_SZ: i64 = 7;

fn herr(what: &str, e: guestfs::Error) -> Error {
    Error::new(ErrorKind::GuestInspection, format!("registry: {what}: {e:?}"))
}

/// A value to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegValue {
    /// `REG_SZ`.
    Sz(String),
    /// `REG_EXPAND_SZ`.
    ExpandSz(String),
    /// `REG_DWORD`.
    Dword(u32),
    /// `REG_MULTI_SZ`.
    MultiSz(Vec<String>),
    /// `REG_BINARY`.
    Binary(Vec<u8>),
}

impl RegValue {
    /// The value's registry type and bytes, as stored in a hive.
    pub fn encode(&self) -> (i64, Vec<u8>) {
        let utf16 = |s: &str| -> Vec<u8> {
            s.encode_utf16().chain(std::iter::once(0)).flat_map(u16::to_le_bytes).collect()
        };
        match self {
            RegValue::Sz(s) => (REG_SZ, utf16(s)),
            RegValue::ExpandSz(s) => (REG_EXPAND_SZ, utf16(s)),
            RegValue::Dword(d) => (REG_DWORD, d.to_le_bytes().to_vec()),
            RegValue::MultiSz(list) => {
                let mut b: Vec<u8> = list.iter().flat_map(|s| utf16(s)).collect();
                b.extend([0, 0]);
                (REG_MULTI_SZ, b)
            }
            RegValue::Binary(b) => (REG_BINARY, b.clone()),
        }
    }

    /// The value as recorded in a change (`dword:N`, `multi:a|b`, `hex:..`).
    pub fn show(&self) -> String {
        match self {
            RegValue::Sz(s) | RegValue::ExpandSz(s) => s.clone(),
            RegValue::Dword(d) => format!("dword:{d}"),
            RegValue::MultiSz(list) => format!("multi:{}", list.join("|")),
            RegValue::Binary(b) => {
                format!(
                    "hex:{}",
                    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(",")
                )
            }
        }
    }
}

/// Decodes a value's bytes as read from a hive, whatever the hive says of its type and length:
/// strings are UTF-16LE up to the first NUL (an odd last byte is dropped), a `REG_DWORD` shorter
/// than 4 bytes is kept as binary, a `REG_MULTI_SZ` list ends at its empty string.
pub fn decode(value_type: i64, bytes: &[u8]) -> RegValue {
    let units = || bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    match value_type {
        REG_SZ | REG_EXPAND_SZ => {
            let u: Vec<u16> = units().take_while(|&u| u != 0).collect();
            let s = String::from_utf16_lossy(&u);
            if value_type == REG_SZ { RegValue::Sz(s) } else { RegValue::ExpandSz(s) }
        }
        REG_DWORD if bytes.len() >= 4 => {
            RegValue::Dword(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        }
        REG_MULTI_SZ => {
            let u: Vec<u16> = units().collect();
            let list = u
                .split(|&u| u == 0)
                .take_while(|s| !s.is_empty())
                .map(String::from_utf16_lossy)
                .collect();
            RegValue::MultiSz(list)
        }
        _ => RegValue::Binary(bytes.to_vec()),
    }
}

/// One open hive; a writable one is saved by [`commit`](Self::commit).
pub struct Hive<'a> {
    g: &'a Guest,
    name: String,
    changes: Vec<Change>,
    open: bool,
}

impl std::fmt::Debug for Hive<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hive").field("name", &self.name).finish()
    }
}

impl<'a> Hive<'a> {
    /// Opens the hive at `path` in the guest for editing; `name` (`HKLM\SYSTEM`) prefixes
    /// recorded keys.
    pub fn open(g: &'a Guest, path: &str, name: &str) -> Result<Hive<'a>> {
        let args = guestfs::HivexOpenOptArgs { write: Some(true), ..Default::default() };
        g.handle().hivex_open(path, args).map_err(|e| herr(&format!("opening {path}"), e))?;
        Ok(Hive { g, name: name.to_string(), changes: Vec::new(), open: true })
    }

    /// Opens the hive at `path` read-only (`None` when it cannot be read).
    pub fn open_read(g: &'a Guest, path: &str) -> Option<Hive<'a>> {
        let args = guestfs::HivexOpenOptArgs { write: Some(false), ..Default::default() };
        g.handle().hivex_open(path, args).ok()?;
        Some(Hive { g, name: String::new(), changes: Vec::new(), open: true })
    }

    /// The existing key at `path` (case-insensitive, like Windows).
    pub fn node(&self, path: &[&str]) -> Option<i64> {
        let h = self.g.handle();
        let mut node = h.hivex_root().ok()?;
        for part in path {
            node = h.hivex_node_get_child(node, part).ok().filter(|&c| c != 0)?;
        }
        Some(node)
    }

    fn value(&self, node: i64, name: &str) -> Option<i64> {
        self.g.handle().hivex_node_get_value(node, name).ok().filter(|&v| v != 0)
    }

    /// A string value.
    pub fn string(&self, path: &[&str], name: &str) -> Option<String> {
        let v = self.value(self.node(path)?, name)?;
        self.g.handle().hivex_value_utf8(v).ok()
    }

    /// A `REG_DWORD` value.
    pub fn dword(&self, path: &[&str], name: &str) -> Option<u32> {
        self.dword_at(self.node(path)?, name)
    }

    fn dword_at(&self, node: i64, name: &str) -> Option<u32> {
        let bytes = self.g.handle().hivex_value_value(self.value(node, name)?).ok()?;
        match decode(REG_DWORD, &bytes) {
            RegValue::Dword(d) => Some(d),
            _ => None,
        }
    }

    /// The names of the subkeys of `path`.
    pub fn children(&self, path: &[&str]) -> Vec<String> {
        let h = self.g.handle();
        let Some(n) = self.node(path) else { return Vec::new() };
        h.hivex_node_children(n)
            .unwrap_or_default()
            .iter()
            .filter_map(|c| h.hivex_node_name(c.hivex_node_h).ok())
            .collect()
    }

    /// The key at `path`, created (with its parents) when missing.
    pub fn key(&mut self, path: &[&str]) -> Result<i64> {
        let h = self.g.handle();
        let mut node = h.hivex_root().map_err(|e| herr("root", e))?;
        let mut shown = self.name.clone();
        for part in path {
            shown = format!("{shown}\\{part}");
            node = match h.hivex_node_get_child(node, part).ok().filter(|&c| c != 0) {
                Some(c) => c,
                None => {
                    let c = h
                        .hivex_node_add_child(node, part)
                        .map_err(|e| herr(&format!("creating {shown}"), e))?;
                    self.changes.push(Change {
                        fixer: FIXER,
                        action: Action::Create,
                        file: shown.clone(),
                        old: None,
                        new: None,
                    });
                    c
                }
            };
        }
        Ok(node)
    }

    /// A value's current text, for the record.
    fn current(&self, node: i64, name: &str) -> Option<String> {
        let h = self.g.handle();
        let v = self.value(node, name)?;
        match h.hivex_value_type(v).ok()? {
            REG_DWORD => Some(format!("dword:{}", self.dword_at(node, name)?)),
            REG_SZ | REG_EXPAND_SZ => h.hivex_value_utf8(v).ok(),
            t => Some(decode(t, &h.hivex_value_value(v).ok()?).show()),
        }
    }

    /// Sets `name` in the key at `path` (created when missing); records old and new.
    pub fn set(&mut self, path: &[&str], name: &str, value: RegValue) -> Result<()> {
        let node = self.key(path)?;
        let old = self.current(node, name);
        if old.as_deref() == Some(value.show().as_str()) {
            return Ok(());
        }
        let (t, bytes) = value.encode();
        self.g
            .handle()
            .hivex_node_set_value(node, name, t, &bytes)
            .map_err(|e| herr(&format!("setting {name}"), e))?;
        self.changes.push(Change {
            fixer: FIXER,
            action: Action::Edit,
            file: format!("{}\\{}\\{name}", self.name, path.join("\\")),
            old,
            new: Some(value.show()),
        });
        Ok(())
    }

    /// A value as text, if the key and value exist.
    pub fn get(&self, path: &[&str], name: &str) -> Option<String> {
        self.current(self.node(path)?, name)
    }

    /// Writes the hive back and returns what changed.
    pub fn commit(mut self) -> Result<Vec<Change>> {
        let h = self.g.handle();
        h.hivex_commit(None).map_err(|e| herr("saving", e))?;
        let _ = h.hivex_close();
        self.open = false;
        Ok(std::mem::take(&mut self.changes))
    }
}

impl Drop for Hive<'_> {
    fn drop(&mut self) {
        if self.open {
            // Read-only, or not committed (the changes are dropped with the handle).
            let _ = self.g.handle().hivex_close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_decode_as_they_were_encoded() {
        for v in [
            RegValue::Sz("C:\\Windows".into()),
            RegValue::ExpandSz("%SystemRoot%\\system32".into()),
            RegValue::Dword(0xdead_beef),
            RegValue::MultiSz(vec!["viostor".into(), "vioscsi".into()]),
            RegValue::Binary(vec![1, 2, 3]),
        ] {
            let (t, b) = v.encode();
            assert_eq!(decode(t, &b), v);
        }
    }

    #[test]
    fn short_or_odd_values_do_not_panic() {
        assert_eq!(decode(REG_DWORD, &[1, 2]), RegValue::Binary(vec![1, 2]));
        assert_eq!(decode(REG_SZ, &[b'a', 0, b'b']), RegValue::Sz("a".into()));
        assert_eq!(decode(REG_MULTI_SZ, &[]), RegValue::MultiSz(vec![]));
    }
}
