//! Editing a Windows guest's registry hives offline through libguestfs's hivex calls, each
//! change recorded (hive, key, value, old, new) like the Linux file edits.

use crate::error::{Error, ErrorKind, Result};
use crate::fix::Change;
use crate::guest::Guest;

const FIXER: &str = "windows-registry";

/// Registry value types (`winnt.h`).
pub const REG_SZ: i64 = 1;
/// A string with `%VARIABLES%`.
pub const REG_EXPAND_SZ: i64 = 2;
/// A 32-bit little-endian number.
pub const REG_DWORD: i64 = 4;

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
}

impl RegValue {
    fn encode(&self) -> (i64, Vec<u8>) {
        let utf16 = |s: &str| {
            s.encode_utf16().chain(std::iter::once(0)).flat_map(u16::to_le_bytes).collect()
        };
        match self {
            RegValue::Sz(s) => (REG_SZ, utf16(s)),
            RegValue::ExpandSz(s) => (REG_EXPAND_SZ, utf16(s)),
            RegValue::Dword(d) => (REG_DWORD, d.to_le_bytes().to_vec()),
        }
    }

    fn show(&self) -> String {
        match self {
            RegValue::Sz(s) | RegValue::ExpandSz(s) => s.clone(),
            RegValue::Dword(d) => format!("dword:{d}"),
        }
    }
}

/// One hive open for writing; [`commit`](Self::commit) saves it.
pub struct HiveEdit<'a> {
    g: &'a Guest,
    name: String,
    changes: Vec<Change>,
    open: bool,
}

impl std::fmt::Debug for HiveEdit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HiveEdit").field("name", &self.name).finish()
    }
}

impl<'a> HiveEdit<'a> {
    /// Opens the hive at `path` in the guest; `name` (`HKLM\SYSTEM`) prefixes recorded keys.
    pub fn open(g: &'a Guest, path: &str, name: &str) -> Result<HiveEdit<'a>> {
        let args = guestfs::HivexOpenOptArgs { write: Some(true), ..Default::default() };
        g.handle().hivex_open(path, args).map_err(|e| herr(&format!("opening {path}"), e))?;
        Ok(HiveEdit { g, name: name.to_string(), changes: Vec::new(), open: true })
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
                        action: "create",
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
        let v = h.hivex_node_get_value(node, name).ok().filter(|&v| v != 0)?;
        match h.hivex_value_type(v).ok()? {
            REG_DWORD => {
                let b = h.hivex_value_value(v).ok()?;
                Some(format!("dword:{}", u32::from_le_bytes(b.get(..4)?.try_into().ok()?)))
            }
            _ => h.hivex_value_utf8(v).ok(),
        }
    }

    /// Sets `name` in the key at `path` (created when missing); records old and new.
    pub fn set(&mut self, path: &[&str], name: &str, value: RegValue) -> Result<()> {
        let node = self.key(path)?;
        let old = self.current(node, name);
        let (t, bytes) = value.encode();
        self.g
            .handle()
            .hivex_node_set_value(node, name, t, &bytes)
            .map_err(|e| herr(&format!("setting {name}"), e))?;
        self.changes.push(Change {
            fixer: FIXER,
            action: "edit",
            file: format!("{}\\{}\\{name}", self.name, path.join("\\")),
            old,
            new: Some(value.show()),
        });
        Ok(())
    }

    /// A value as text, if the key and value exist.
    pub fn get(&self, path: &[&str], name: &str) -> Option<String> {
        let h = self.g.handle();
        let mut node = h.hivex_root().ok()?;
        for part in path {
            node = h.hivex_node_get_child(node, part).ok().filter(|&c| c != 0)?;
        }
        self.current(node, name)
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

impl Drop for HiveEdit<'_> {
    fn drop(&mut self) {
        if self.open {
            // Not committed: the changes are dropped with the handle.
            let _ = self.g.handle().hivex_close();
        }
    }
}
