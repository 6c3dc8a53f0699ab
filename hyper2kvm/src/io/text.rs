//! Values read from untrusted text: MAC addresses.

/// A MAC address as six two-digit hex groups split by one of `separators`, in lower case with
/// colons; `None` when it is not one.
pub fn parse_mac(s: &str, separators: &[char]) -> Option<String> {
    let parts: Vec<&str> = s.split(separators).collect();
    let ok = parts.len() == 6
        && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    ok.then(|| parts.join(":").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("00-50-56-AB-cd-EF", &[':', '-']).as_deref(),
            Some("00:50:56:ab:cd:ef")
        );
        assert_eq!(parse_mac("00-50-56-AB-cd-EF", &[':']), None);
        assert_eq!(parse_mac("00:50:56:ab:cd", &[':']), None);
        assert_eq!(parse_mac("00:50:56:ab:cd:eg", &[':']), None);
    }
}
