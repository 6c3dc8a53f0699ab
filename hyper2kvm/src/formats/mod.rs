//! One module per disk image format. Each parses its on-disk header with our own code (magic
//! numbers are named constants citing the specification) and exposes a `probe` function that
//! returns a [`DiskImage`](crate::DiskImage).

pub mod iso;
pub mod qcow2;
pub mod raw;
pub mod vdi;
pub mod vhd;
pub mod vhdx;
pub mod vmdk;
