//! Kubernetes object names from VM and disk names, which may hold anything.

/// The longest DNS label (RFC 1123), the limit of a VM's name (it becomes the guest's host
/// name) and of label values.
const MAX_LABEL: usize = 63;

/// True when `s` is a DNS-1123 label: 1–63 lowercase letters, digits and `-`, starting and
/// ending with a letter or digit.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_LABEL
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `name` made a DNS-1123 label with room for `suffix` (appended as is): lowercased, every run
/// of other characters one `-`, trimmed of `-`, cut to fit; `vm` when nothing is left.
pub fn dns_label(name: &str, suffix: &str) -> String {
    let mut base = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            base.push(c);
        } else if !base.ends_with('-') {
            base.push('-');
        }
    }
    let room = MAX_LABEL.saturating_sub(suffix.len()).max(1);
    base.truncate(room);
    let base = base.trim_matches('-');
    let base = if base.is_empty() { "vm" } else { base };
    format!("{base}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(dns_label("web01", ""), "web01");
        assert_eq!(dns_label("Web 01 (prod)", "-disk-1"), "web-01-prod-disk-1");
        assert_eq!(dns_label("__", ""), "vm");
        assert_eq!(dns_label("Ünïcode_VM", ""), "n-code-vm");
        let long = dns_label(&"a".repeat(100), "-disk-12");
        assert_eq!(long.len(), 63);
        assert!(long.ends_with("a-disk-12"));
        for n in ["web01", "web-01-prod-disk-1", "vm", "n-code-vm", &long] {
            assert!(is_dns_label(n), "{n}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }
}
