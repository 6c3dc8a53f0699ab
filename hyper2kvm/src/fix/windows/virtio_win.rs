//! Finding virtio-win drivers for a Windows guest.
//!
//! Two layouts are read: the ISO's (`<driver>/<os>/<arch>/`, e.g. `viostor/w10/amd64/`) and
//! the RPM's (`drivers/by-driver/<driver>/<os>/<arch>/`), from a directory or straight from the
//! ISO image. The source is `--virtio-win PATH`, else the `VIRTIO_WIN` environment variable,
//! else `/usr/share/virtio-win/virtio-win.iso`, else `/usr/share/virtio-win` (the RPM's tree). The `<os>` directory is chosen from the inspected release (`w7`,
//! `w8`, `w8.1`, `w10`, `w11`; `2k8R2`, `2k12`, `2k12R2`, `2k16`, `2k19`, `2k22`, `2k25`), falling
//! back to the nearest older one the tree has; debug symbols (`.pdb`) are skipped.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::iso9660::IsoImage;
use crate::error::{Error, Result};
use crate::guest::windows::WindowsRelease;

/// Where `VIRTIO_WIN` and `--virtio-win` are not given: the ISO, then the RPM's tree.
pub const DEFAULT_ISO: &str = "/usr/share/virtio-win/virtio-win.iso";
/// The virtio-win RPM's tree (also where Debian users unpack the ISO).
pub const DEFAULT_DIR: &str = "/usr/share/virtio-win";

/// A guest's processor architecture, as virtio-win names its directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// 64-bit x86.
    Amd64,
    /// 32-bit x86.
    X86,
}

impl Arch {
    /// The directory name.
    pub fn dir(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::X86 => "x86",
        }
    }

    /// From an inspection's architecture (`x86_64`, `i386`, …).
    pub fn from_inspection(arch: &str) -> Option<Arch> {
        match arch {
            "x86_64" | "amd64" => Some(Arch::Amd64),
            "i386" | "i486" | "i586" | "i686" | "x86" => Some(Arch::X86),
            _ => None,
        }
    }
}

const CLIENT: [&str; 5] = ["w11", "w10", "w8.1", "w8", "w7"];
const SERVER: [&str; 7] = ["2k25", "2k22", "2k19", "2k16", "2k12R2", "2k12", "2k8R2"];

impl WindowsRelease {
    /// virtio-win's directory for this release.
    pub fn os_dir(&self) -> Option<&'static str> {
        let v = (self.major, self.minor);
        Some(match (self.server, v) {
            (false, (6, 1)) => "w7",
            (false, (6, 2)) => "w8",
            (false, (6, 3)) => "w8.1",
            (false, (10, 0)) if self.build >= 22000 => "w11",
            (false, (10, 0)) => "w10",
            (true, (6, 1)) => "2k8R2",
            (true, (6, 2)) => "2k12",
            (true, (6, 3)) => "2k12R2",
            (true, (10, 0)) if self.build >= 26100 => "2k25",
            (true, (10, 0)) if self.build >= 20348 => "2k22",
            (true, (10, 0)) if self.build >= 17763 => "2k19",
            (true, (10, 0)) => "2k16",
            _ => return None,
        })
    }

    /// The directories to try, this release's first, then each older one.
    pub fn os_dirs(&self) -> Vec<&'static str> {
        let Some(first) = self.os_dir() else { return Vec::new() };
        let list: &[&str] = if self.server { &SERVER } else { &CLIENT };
        let at = list.iter().position(|d| *d == first).unwrap_or(0);
        list[at..].to_vec()
    }

    /// Windows before 8 (and Server 2012) binds boot drivers through the
    /// `CriticalDeviceDatabase`; later ones through the `DriverDatabase`.
    pub fn before_windows_8(&self) -> bool {
        (self.major, self.minor) < (6, 2)
    }
}

/// How a virtio-win tree is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `<driver>/<os>/<arch>/` (the ISO, unpacked or mounted).
    Iso,
    /// `drivers/by-driver/<driver>/<os>/<arch>/` (the virtio-win RPM).
    Rpm,
}

/// A virtio-win tree: a directory, or the ISO image itself (read with our own reader, the
/// files needed copied into a scratch directory that is removed with the source).
#[derive(Debug, Serialize)]
pub struct DriverSource {
    /// Its top directory, or the ISO file.
    pub root: PathBuf,
    /// Its layout.
    pub layout: Layout,
    #[serde(skip)]
    iso: Option<IsoTree>,
}

#[derive(Debug)]
struct IsoTree {
    image: IsoImage,
    /// Where extracted files go (created on first use, removed on drop).
    scratch: PathBuf,
}

impl Drop for IsoTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// One driver's files for one guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverFiles {
    /// `viostor`, `NetKVM`, …
    pub driver: String,
    /// The `<os>` directory used (maybe an older one than the guest's).
    pub os_dir: String,
    /// The directory the files are in (for an ISO, the copy in the scratch directory).
    pub dir: PathBuf,
    /// The files (no `.pdb`), sorted.
    pub files: Vec<PathBuf>,
}

impl DriverFiles {
    /// The file named `name` (case-insensitive), e.g. `viostor.sys`.
    pub fn file(&self, name: &str) -> Option<&Path> {
        self.files
            .iter()
            .find(|f| f.file_name().is_some_and(|n| n.to_string_lossy().eq_ignore_ascii_case(name)))
            .map(PathBuf::as_path)
    }

    /// The driver's `.inf`.
    pub fn inf(&self) -> Option<&Path> {
        self.files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e.eq_ignore_ascii_case("inf")))
            .map(PathBuf::as_path)
    }
}

/// Finds `name` among the entries of `dir`, ignoring case (ISO trees differ in case).
fn child_ci(dir: &Path, name: &str) -> Option<PathBuf> {
    let exact = dir.join(name);
    if exact.is_dir() {
        return Some(exact);
    }
    std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()).find_map(|e| {
        (e.file_name().to_string_lossy().eq_ignore_ascii_case(name) && e.path().is_dir())
            .then(|| e.path())
    })
}

fn wanted(name: &str) -> bool {
    !Path::new(name).extension().is_some_and(|e| e.eq_ignore_ascii_case("pdb"))
}

impl DriverSource {
    /// Reads the layout of the tree at `root` (a directory, or an ISO image whose needed files
    /// will be copied under `scratch`); an error names the path when it is neither layout.
    pub fn open(root: &Path, scratch: &Path) -> Result<DriverSource> {
        let meta = std::fs::metadata(root).map_err(|e| Error::io(root, "virtio-win", e))?;
        if meta.is_file() {
            let image = IsoImage::open(root)?;
            let layout = if image.lookup(&["viostor"]).is_some_and(|e| e.dir) {
                Layout::Iso
            } else if image.lookup(&["drivers", "by-driver"]).is_some_and(|e| e.dir) {
                Layout::Rpm
            } else {
                return Err(Error::invalid(
                    root,
                    "virtio-win: the ISO has no viostor/ (ISO layout) or drivers/by-driver/",
                ));
            };
            let scratch = scratch.join(format!(".hyper2kvm-virtio-win.{}", std::process::id()));
            return Ok(DriverSource {
                root: root.to_path_buf(),
                layout,
                iso: Some(IsoTree { image, scratch }),
            });
        }
        if !meta.is_dir() {
            return Err(Error::unsupported(
                root,
                "virtio-win: give the virtio-win ISO, the directory of an unpacked or mounted \
                 one, or the virtio-win RPM's /usr/share/virtio-win",
            ));
        }
        let layout = if root.join("drivers").join("by-driver").is_dir() {
            Layout::Rpm
        } else if child_ci(root, "viostor").is_some() {
            Layout::Iso
        } else {
            return Err(Error::invalid(
                root,
                "virtio-win: no viostor/ (ISO layout) or drivers/by-driver/ (RPM layout) here",
            ));
        };
        Ok(DriverSource { root: root.to_path_buf(), layout, iso: None })
    }

    /// The source to use: `explicit` (`--virtio-win`), else `VIRTIO_WIN` from `env`, else
    /// [`DEFAULT_ISO`] when it exists, else [`DEFAULT_DIR`] when it exists; `Ok(None)` when
    /// there is none. ISO files are read in place, extracting under `scratch`.
    pub fn locate(
        explicit: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        scratch: &Path,
    ) -> Result<Option<DriverSource>> {
        if let Some(p) = explicit {
            return DriverSource::open(p, scratch).map(Some);
        }
        if let Some(p) = env("VIRTIO_WIN").filter(|p| !p.is_empty()) {
            return DriverSource::open(Path::new(&p), scratch).map(Some);
        }
        for d in [DEFAULT_ISO, DEFAULT_DIR] {
            if Path::new(d).exists() {
                return DriverSource::open(Path::new(d), scratch).map(Some);
            }
        }
        Ok(None)
    }

    fn prefix(&self) -> Vec<&'static str> {
        match self.layout {
            Layout::Iso => vec![],
            Layout::Rpm => vec!["drivers", "by-driver"],
        }
    }

    /// The regular files (no `.pdb`) of `<driver>/<os>/<arch>`, copied out of an ISO when
    /// `extract` is set (else only where they would go).
    fn files_in(
        &self,
        driver: &str,
        os: &str,
        arch: Arch,
        extract: bool,
    ) -> Option<(PathBuf, Vec<PathBuf>)> {
        let mut rel = self.prefix();
        rel.extend([driver, os, arch.dir()]);
        if let Some(t) = &self.iso {
            let dir = t.image.lookup(&rel)?;
            let entries: Vec<_> = t
                .image
                .read_dir(&dir)
                .ok()?
                .into_iter()
                .filter(|e| !e.dir && wanted(&e.name))
                .collect();
            if entries.is_empty() {
                return None;
            }
            let local = rel.iter().fold(t.scratch.clone(), |p, part| p.join(part));
            if extract {
                std::fs::create_dir_all(&local).ok()?;
            }
            let mut files = Vec::new();
            for e in entries {
                let dest = local.join(&e.name);
                if extract {
                    t.image.extract(&e, &dest).ok()?;
                }
                files.push(dest);
            }
            files.sort();
            return Some((local, files));
        }
        let mut dir = self.root.clone();
        for part in &rel {
            dir = child_ci(&dir, part)?;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| p.file_name().is_some_and(|n| wanted(&n.to_string_lossy())))
            .collect();
        if files.is_empty() {
            return None;
        }
        files.sort();
        Some((dir, files))
    }

    /// `driver`'s files for `release` on `arch`: the guest's own `<os>` directory, else the
    /// nearest older one that has `<arch>`; `None` when there is none.
    pub fn driver(
        &self,
        driver: &str,
        release: &WindowsRelease,
        arch: Arch,
    ) -> Option<DriverFiles> {
        self.lookup(driver, release, arch, true)
    }

    /// Which files [`driver`](Self::driver) would give, without copying anything out of an
    /// ISO (for plans and dry runs).
    pub fn find(&self, driver: &str, release: &WindowsRelease, arch: Arch) -> Option<DriverFiles> {
        self.lookup(driver, release, arch, false)
    }

    fn lookup(
        &self,
        driver: &str,
        release: &WindowsRelease,
        arch: Arch,
        extract: bool,
    ) -> Option<DriverFiles> {
        release.os_dirs().into_iter().find_map(|os| {
            let (dir, files) = self.files_in(driver, os, arch, extract)?;
            Some(DriverFiles { driver: driver.to_string(), os_dir: os.to_string(), dir, files })
        })
    }

    /// A file at the top of the tree's `dir` (e.g. `guest-agent/qemu-ga-x86_64.msi`), copied
    /// out of an ISO; `None` when missing.
    pub fn top_file(&self, dir: &str, name: &str) -> Option<PathBuf> {
        if let Some(t) = &self.iso {
            let e = t.image.lookup(&[dir, name]).filter(|e| !e.dir)?;
            let local = t.scratch.join(dir);
            std::fs::create_dir_all(&local).ok()?;
            let dest = local.join(&e.name);
            t.image.extract(&e, &dest).ok()?;
            return Some(dest);
        }
        let d = child_ci(&self.root, dir)?;
        std::fs::read_dir(&d).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
            p.is_file()
                && p.file_name().is_some_and(|n| n.to_string_lossy().eq_ignore_ascii_case(name))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"placeholder").unwrap();
    }

    const W2019: WindowsRelease =
        WindowsRelease { major: 10, minor: 0, build: 17763, server: true };
    const W10: WindowsRelease = WindowsRelease { major: 10, minor: 0, build: 19045, server: false };
    const W7: WindowsRelease = WindowsRelease { major: 6, minor: 1, build: 7601, server: false };

    #[test]
    fn releases_map_to_virtio_win_directories() {
        let r = |major, minor, build, server| WindowsRelease { major, minor, build, server };
        assert_eq!(r(10, 0, 22631, false).os_dir(), Some("w11"));
        assert_eq!(W10.os_dir(), Some("w10"));
        assert_eq!(r(6, 3, 9600, false).os_dir(), Some("w8.1"));
        assert_eq!(W7.os_dir(), Some("w7"));
        assert_eq!(r(10, 0, 14393, true).os_dir(), Some("2k16"));
        assert_eq!(W2019.os_dir(), Some("2k19"));
        assert_eq!(r(10, 0, 20348, true).os_dir(), Some("2k22"));
        assert_eq!(r(10, 0, 26100, true).os_dir(), Some("2k25"));
        assert_eq!(r(6, 3, 9600, true).os_dir(), Some("2k12R2"));
        assert_eq!(r(5, 1, 2600, false).os_dir(), None, "XP is not supported");
        assert_eq!(W2019.os_dirs(), vec!["2k19", "2k16", "2k12R2", "2k12", "2k8R2"]);
        assert!(W7.before_windows_8() && !W10.before_windows_8());
        assert_eq!(Arch::from_inspection("x86_64"), Some(Arch::Amd64));
        assert_eq!(Arch::from_inspection("i386"), Some(Arch::X86));
    }

    #[test]
    fn both_layouts_are_read_with_fallback_and_without_pdb() {
        let t = tempfile::tempdir().unwrap();
        let iso = t.path().join("iso");
        for f in [
            "viostor/2k16/amd64/viostor.sys",
            "viostor/2k16/amd64/viostor.inf",
            "viostor/2k16/amd64/viostor.pdb",
            "viostor/2k16/amd64/viostor.cat",
            "NetKVM/2k19/amd64/netkvm.sys",
            "viostor/w10/x86/viostor.sys",
        ] {
            touch(&iso.join(f));
        }
        let src = DriverSource::open(&iso, t.path()).unwrap();
        assert_eq!(src.layout, Layout::Iso);
        let d = src.driver("viostor", &W2019, Arch::Amd64).unwrap();
        assert_eq!(d.os_dir, "2k16", "the nearest older directory");
        let names: Vec<String> =
            d.files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["viostor.cat", "viostor.inf", "viostor.sys"], "no .pdb");
        assert_eq!(d.file("VIOSTOR.SYS").unwrap(), iso.join("viostor/2k16/amd64/viostor.sys"));
        assert!(d.inf().unwrap().ends_with("viostor.inf"));
        assert_eq!(src.driver("netkvm", &W2019, Arch::Amd64).unwrap().os_dir, "2k19", "case");
        assert!(src.driver("viostor", &W2019, Arch::X86).is_none(), "no 32-bit server driver");
        assert!(src.driver("viostor", &W7, Arch::Amd64).is_none(), "nothing for w7 or older");
        assert!(src.driver("Balloon", &W10, Arch::Amd64).is_none());

        let rpm = t.path().join("rpm");
        touch(&rpm.join("drivers/by-driver/viostor/w10/amd64/viostor.sys"));
        let src = DriverSource::open(&rpm, t.path()).unwrap();
        assert_eq!(src.layout, Layout::Rpm);
        assert_eq!(src.driver("viostor", &W10, Arch::Amd64).unwrap().os_dir, "w10");

        let e = DriverSource::open(t.path(), t.path()).unwrap_err().to_string();
        assert!(e.contains("no viostor/") && e.contains(&t.path().display().to_string()), "{e}");
        let env = |k: &str| (k == "VIRTIO_WIN").then(|| iso.display().to_string());
        assert_eq!(
            DriverSource::locate(None, &|_| None, t.path()).unwrap().is_some(),
            std::path::Path::new(DEFAULT_ISO).exists()
                || std::path::Path::new(DEFAULT_DIR).exists()
        );
        assert_eq!(DriverSource::locate(None, &env, t.path()).unwrap().unwrap().root, iso);
        assert_eq!(DriverSource::locate(Some(&rpm), &env, t.path()).unwrap().unwrap().root, rpm);
    }

    /// The ISO itself, made by genisoimage with Joliet names as virtio-win's is: the same
    /// lookups as on the tree, the files copied out under the scratch directory and removed
    /// with the source.
    #[test]
    fn the_iso_is_read_in_place() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join("tree");
        for f in [
            "viostor/2k12R2/amd64/viostor.sys",
            "viostor/2k12R2/amd64/viostor.pdb",
            "NetKVM/w8.1/amd64/netkvm.sys",
            "NetKVM/w8.1/amd64/netkvm.inf",
            "guest-agent/qemu-ga-x86_64.msi",
        ] {
            touch(&tree.join(f));
        }
        std::fs::write(tree.join("viostor/2k12R2/amd64/viostor.sys"), vec![7u8; 5000]).unwrap();
        // Enough entries that a directory spans several sectors.
        for i in 0..120 {
            touch(&tree.join(format!("Balloon/w10/amd64/file-with-a-long-name-{i:03}.dll")));
        }
        let iso = t.path().join("virtio-win.iso");
        let out = std::process::Command::new("genisoimage")
            .args(["-quiet", "-J", "-R", "-o"])
            .arg(&iso)
            .arg(&tree)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let scratch = t.path().join("out");
        std::fs::create_dir(&scratch).unwrap();
        let src = DriverSource::open(&iso, &scratch).unwrap();
        assert_eq!(src.layout, Layout::Iso);
        let planned = src.find("viostor", &W2019, Arch::Amd64).unwrap();
        assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0, "find copies nothing");
        let d = src.driver("viostor", &W2019, Arch::Amd64).unwrap();
        assert_eq!(d, planned, "the same files, now copied");
        assert_eq!(d.os_dir, "2k12R2", "mixed-case Joliet names");
        assert_eq!(d.files.len(), 1, "no .pdb: {:?}", d.files);
        assert_eq!(std::fs::read(&d.files[0]).unwrap(), vec![7u8; 5000], "the file's bytes");
        assert!(d.files[0].starts_with(&scratch));
        let n = src.driver("netkvm", &W10, Arch::Amd64).unwrap();
        assert_eq!((n.driver.as_str(), n.os_dir.as_str()), ("netkvm", "w8.1"));
        assert_eq!(std::fs::read_to_string(n.inf().unwrap()).unwrap(), "placeholder");
        assert_eq!(src.driver("Balloon", &W10, Arch::Amd64).unwrap().files.len(), 120);
        assert!(src.top_file("guest-agent", "qemu-ga-x86_64.msi").is_some());
        assert!(src.driver("viostor", &W7, Arch::Amd64).is_none());
        drop(src);
        assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0, "scratch removed");
        let e = DriverSource::open(&tree.join("guest-agent/qemu-ga-x86_64.msi"), &scratch)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a readable ISO 9660 image") && e.contains("qemu-ga-x86_64.msi"),
            "{e}"
        );
    }
}
