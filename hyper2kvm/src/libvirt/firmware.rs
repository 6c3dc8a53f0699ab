//! Finding the host's OVMF (UEFI) firmware: the read-only code and the variable-store
//! template each domain gets its own copy of. Searched in the places Debian/Ubuntu, Fedora/RHEL,
//! Arch and SUSE install them, 4 MiB builds first.

use std::path::{Path, PathBuf};

/// A firmware code image and its matching variable-store template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ovmf {
    /// `OVMF_CODE*.fd`.
    pub code: PathBuf,
    /// `OVMF_VARS*.fd`.
    pub vars: PathBuf,
}

const PLAIN: [(&str, &str); 6] = [
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    ("/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"),
    ("/usr/share/edk2/x64/OVMF_CODE.4m.fd", "/usr/share/edk2/x64/OVMF_VARS.4m.fd"),
    ("/usr/share/qemu/ovmf-x86_64-4m-code.bin", "/usr/share/qemu/ovmf-x86_64-4m-vars.bin"),
    ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
    ("/usr/share/edk2-ovmf/OVMF_CODE.fd", "/usr/share/edk2-ovmf/OVMF_VARS.fd"),
];

/// Secure-boot builds with Microsoft's keys enrolled in the template.
const SECURE: [(&str, &str); 5] = [
    ("/usr/share/OVMF/OVMF_CODE_4M.ms.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"),
    ("/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd", "/usr/share/edk2/ovmf/OVMF_VARS.secboot.fd"),
    ("/usr/share/edk2/x64/OVMF_CODE.secboot.4m.fd", "/usr/share/edk2/x64/OVMF_VARS.4m.fd"),
    ("/usr/share/qemu/ovmf-x86_64-ms-4m-code.bin", "/usr/share/qemu/ovmf-x86_64-ms-4m-vars.bin"),
    ("/usr/share/OVMF/OVMF_CODE.ms.fd", "/usr/share/OVMF/OVMF_VARS.ms.fd"),
];

/// The first installed pair among `candidates`, looked up under `root` (`/` on a real host).
fn first(root: &Path, candidates: &[(&str, &str)]) -> Option<Ovmf> {
    candidates.iter().find_map(|(c, v)| {
        let code = root.join(c.trim_start_matches('/'));
        let vars = root.join(v.trim_start_matches('/'));
        (code.is_file() && vars.is_file()).then_some(Ovmf { code, vars })
    })
}

/// The host's OVMF for a guest with (or without) secure boot.
pub fn find(secure_boot: bool) -> Option<Ovmf> {
    find_under(Path::new("/"), secure_boot)
}

/// [`find`] under another root directory (tests).
pub fn find_under(root: &Path, secure_boot: bool) -> Option<Ovmf> {
    if secure_boot { first(root, &SECURE) } else { first(root, &PLAIN) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_first_complete_pair() {
        let t = tempfile::tempdir().unwrap();
        let put = |p: &str| {
            let f = t.path().join(p.trim_start_matches('/'));
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, b"fd").unwrap();
        };
        assert_eq!(find_under(t.path(), false), None);
        // A code image without its template does not count.
        put("/usr/share/OVMF/OVMF_CODE_4M.fd");
        put("/usr/share/edk2/ovmf/OVMF_CODE.fd");
        put("/usr/share/edk2/ovmf/OVMF_VARS.fd");
        let o = find_under(t.path(), false).unwrap();
        assert!(o.code.ends_with("edk2/ovmf/OVMF_CODE.fd"), "{o:?}");
        put("/usr/share/OVMF/OVMF_VARS_4M.fd");
        assert!(find_under(t.path(), false).unwrap().code.ends_with("OVMF/OVMF_CODE_4M.fd"));
        assert_eq!(find_under(t.path(), true), None, "no secure-boot build installed");
        put("/usr/share/OVMF/OVMF_CODE_4M.ms.fd");
        put("/usr/share/OVMF/OVMF_VARS_4M.ms.fd");
        assert!(find_under(t.path(), true).unwrap().vars.ends_with("OVMF_VARS_4M.ms.fd"));
    }
}
