//! Preparing a Windows guest for KVM: which virtio-win drivers fit it ([`virtio_win`], from a
//! tree or straight from the ISO through [`iso9660`]), the boot storage driver and its binding
//! ([`storage`]), the other drivers for Plug and Play, VMware's services disabled and the
//! [`firstboot`] service ([`fix`]), all through the hives ([`crate::guest::registry`]). What the
//! guest is comes from [`crate::guest::windows`].

pub mod firstboot;
pub mod fix;
pub mod iso9660;
pub mod storage;
pub mod virtio_win;

pub use crate::guest::windows::{VmwareTools, WindowsInfo, WindowsRelease};
pub use fix::{WindowsFixOptions, WindowsFixed, fix_windows};
pub use virtio_win::{Arch, DriverFiles, DriverSource, Layout};
