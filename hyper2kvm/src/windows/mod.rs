//! Windows guests: what the guest is ([`inspect`]: version, build, edition, drive letters,
//! VMware Tools, hibernation, BitLocker, from its hives) and which virtio-win drivers fit it
//! ([`virtio_win`]). The registry changes and the first-boot service build on these (issue 8,
//! in progress).

pub mod drivers;
pub mod inspect;
pub mod registry;
pub mod virtio_win;

pub use inspect::{VmwareTools, WindowsInfo};
pub use virtio_win::{Arch, DriverFiles, DriverSource, Layout, WindowsRelease};
