//! hyper2kvm: turn virtual machines exported from VMware, Hyper-V, AWS, Azure and VirtualBox
//! into guests that boot on KVM/libvirt.
//!
//! The engine is synchronous and blocking. Long operations take a progress callback and a
//! [`CancelToken`]; the `hyper2kvm` executable, the C ABI and the Python module decide about
//! threads.
//!
//! - [`probe()`] identifies an input from its content ([`Probed`]: a [`DiskImage`] or an
//!   [`Appliance`]) with our own parsers for every format in [`formats`], and asks `qemu-img`
//!   for a second opinion;
//! - [`convert()`] turns any probed input into qcow2 or raw files through [`qemu_img`];
//! - every failure is an [`Error`] whose [`ErrorKind`] the bindings map to codes and classes.

#![warn(missing_docs)]

pub mod appliance;
pub mod bootchain;
pub mod convert;
pub mod error;
pub mod fix;
pub mod formats;
pub mod guest;
pub mod image;
pub mod inspect_input;
pub mod io;
pub mod kubevirt;
pub mod libvirt;
pub mod manifest;
pub mod pipeline;
pub mod probe;
pub mod progress;
pub mod qemu_img;
pub mod validate;

pub use appliance::Appliance;
pub use convert::{ConvertOptions, ConvertOutput, ConvertReport, TargetFormat, convert};
pub use error::{Error, ErrorKind, Result};
pub use image::{DiskImage, ImageFormat};
pub use probe::{ProbeOptions, Probed, probe};
pub use progress::{CancelToken, Progress, Stage};

/// The version of this library.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
