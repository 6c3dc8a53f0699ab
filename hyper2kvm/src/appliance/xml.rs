//! A minimal, safe XML tree for small descriptors (OVF, later libvirt domain XML).
//!
//! Elements and attributes are keyed by local name (namespace prefixes dropped), which is how
//! OVF writers differ most (`ovf:`, `rasd:`, `vmw:`, default namespaces). Any document type
//! declaration is refused outright: it is the only way to declare entities, and external
//! entities are a classic way to make a parser read files it should not.

use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::error::{Error, Result};

/// The largest descriptor we parse.
pub const MAX_XML_BYTES: usize = 16 << 20;

/// An element: local name, attributes by local name, text, children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name (no prefix).
    pub name: String,
    /// Attributes as (local name, value), in document order.
    pub attrs: Vec<(String, String)>,
    /// Concatenated text content.
    pub text: String,
    /// Child elements in order.
    pub children: Vec<Element>,
}

impl Element {
    /// The value of the attribute with this local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Trimmed text of the first child with this local name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim()).filter(|t| !t.is_empty())
    }

    /// Every descendant (depth first) with this local name.
    pub fn descendants<'a>(&'a self, name: &'a str) -> Vec<&'a Element> {
        let mut out = Vec::new();
        let mut stack: Vec<&Element> = self.children.iter().rev().collect();
        while let Some(e) = stack.pop() {
            if e.name == name {
                out.push(e);
            }
            stack.extend(e.children.iter().rev());
        }
        out
    }
}

fn local(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    match s.rsplit_once(':') {
        Some((_, l)) => l.to_string(),
        None => s.into_owned(),
    }
}

fn start(origin: &Path, e: &BytesStart<'_>) -> Result<Element> {
    let mut el = Element { name: local(e.name().as_ref()), ..Element::default() };
    for a in e.attributes() {
        let a =
            a.map_err(|err| Error::invalid(origin, format!("malformed XML attribute: {err}")))?;
        let key = a.key.as_ref();
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            continue;
        }
        let value = a.unescape_value().map_err(|err| {
            Error::invalid(origin, format!("malformed XML attribute value: {err}"))
        })?;
        el.attrs.push((local(key), value.into_owned()));
    }
    Ok(el)
}

/// Parses `text` into its root element. `origin` names the file for errors.
pub fn parse(origin: &Path, text: &str) -> Result<Element> {
    if text.len() > MAX_XML_BYTES {
        return Err(Error::invalid(origin, "XML document is larger than 16 MiB"));
    }
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let bad = |pos: u64, why: String| {
        Error::invalid(origin, format!("malformed XML at byte {pos}: {why}"))
    };
    loop {
        let pos = reader.buffer_position();
        let ev = reader.read_event().map_err(|e| bad(pos, e.to_string()))?;
        match ev {
            Event::DocType(_) => {
                return Err(Error::invalid(
                    origin,
                    "XML declares a document type (<!DOCTYPE>); entity declarations, including external entities, are refused",
                ));
            }
            Event::Start(e) => stack.push(start(origin, &e)?),
            Event::Empty(e) => {
                let el = start(origin, &e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| bad(pos, "unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::Text(t) => {
                if let Some(cur) = stack.last_mut() {
                    let s = t.unescape().map_err(|e| bad(pos, e.to_string()))?;
                    cur.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => {
                return Err(bad(pos, "document ends before its root element closes".into()));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_prefixes_and_reads_text() {
        let root = parse(
            Path::new("x"),
            r#"<?xml version="1.0"?><ovf:Envelope xmlns:ovf="u"><a ovf:id="1">t &amp; u</a><b/></ovf:Envelope>"#,
        )
        .unwrap();
        assert_eq!(root.name, "Envelope");
        assert_eq!(root.child("a").unwrap().attr("id"), Some("1"));
        assert_eq!(root.child_text("a"), Some("t & u"));
        assert!(root.child("b").is_some());
    }

    #[test]
    fn doctype_is_refused() {
        let xml = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
        let err = parse(Path::new("evil.ovf"), xml).unwrap_err();
        assert!(err.to_string().contains("evil.ovf"), "{err}");
        assert!(err.to_string().contains("DOCTYPE"), "{err}");
    }

    #[test]
    fn unclosed_document_is_an_error() {
        assert!(parse(Path::new("x"), "<a><b></b>").is_err());
    }
}
