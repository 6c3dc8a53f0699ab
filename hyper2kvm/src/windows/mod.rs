//! Windows guests: which virtio-win drivers fit a guest ([`virtio_win`]). Inspection, the
//! registry changes and the first-boot service build on this (issue 8, in progress).

pub mod virtio_win;

pub use virtio_win::{Arch, DriverFiles, DriverSource, Layout, WindowsRelease};
