//! JSON written the way HyperSDK's Go writer writes its Artifact Manifests:
//! `json.MarshalIndent(m, "", "  ")` of its structs — fields in struct order, `omitempty`
//! fields left out by the caller, two-space indent, `<`, `>`, `&` escaped as `\u003c`, `\u003e`,
//! `\u0026` (Go's HTML-safe default), no trailing newline — and `time.Time` values as Go marshals
//! them (RFC 3339 with nanoseconds and the local offset).

#![allow(dead_code)]

/// A JSON value with its object fields in the order given.
#[derive(Debug, Clone)]
pub enum Go {
    Str(String),
    Int(i64),
    Bool(bool),
    Arr(Vec<Go>),
    Obj(Vec<(String, Go)>),
}

/// A string value.
pub fn s(v: impl Into<String>) -> Go {
    Go::Str(v.into())
}

/// An object from `(field, value)` pairs, in struct order.
pub fn obj(fields: Vec<(&str, Go)>) -> Go {
    Go::Obj(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn escape(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write(out: &mut String, v: &Go, depth: usize) {
    let pad = |n: usize| "  ".repeat(n);
    match v {
        Go::Str(x) => escape(out, x),
        Go::Int(n) => out.push_str(&n.to_string()),
        Go::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Go::Arr(items) if items.is_empty() => out.push_str("[]"),
        Go::Obj(fields) if fields.is_empty() => out.push_str("{}"),
        Go::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                out.push_str(&pad(depth + 1));
                write(out, item, depth + 1);
            }
            out.push('\n');
            out.push_str(&pad(depth));
            out.push(']');
        }
        Go::Obj(fields) => {
            out.push('{');
            for (i, (k, item)) in fields.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                out.push_str(&pad(depth + 1));
                escape(out, k);
                out.push_str(": ");
                write(out, item, depth + 1);
            }
            out.push('\n');
            out.push_str(&pad(depth));
            out.push('}');
        }
    }
}

/// `json.MarshalIndent(v, "", "  ")`.
pub fn marshal_indent(v: &Go) -> String {
    let mut out = String::new();
    write(&mut out, v, 0);
    out
}

/// A `time.Time` as Go marshals it, e.g. `2026-12-04T06:30:01.123456789+01:00`.
pub fn go_time() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    // A fixed +01:00 offset (a local zone east of UTC), nanoseconds without trailing zeros.
    let secs = now.as_secs() as i64 + 3600;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    let mut nanos = format!("{:09}", now.subsec_nanos());
    while nanos.ends_with('0') {
        nanos.pop();
    }
    let frac = if nanos.is_empty() { String::new() } else { format!(".{nanos}") };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}+01:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
