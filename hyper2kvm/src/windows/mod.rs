//! Windows guests: what the guest is ([`inspect`]: version, build, edition, drive letters,
//! VMware Tools, hibernation, BitLocker, from its hives), which virtio-win drivers fit it
//! ([`virtio_win`], from a tree or straight from the ISO through [`iso9660`]), and preparing it
//! for KVM ([`fix`]: the boot storage driver in [`storage`], the other drivers for Plug and
//! Play, VMware's services disabled and the [`firstboot`] service), all through the hives
//! ([`registry`]).

pub mod firstboot;
pub mod fix;
pub mod inspect;
pub mod iso9660;
pub mod registry;
pub mod storage;
pub mod virtio_win;

pub use fix::{WindowsFixOptions, WindowsFixed, fix_windows};
pub use inspect::{VmwareTools, WindowsInfo};
pub use virtio_win::{Arch, DriverFiles, DriverSource, Layout, WindowsRelease};
