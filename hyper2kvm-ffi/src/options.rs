//! `hyper2kvm_options`: the builder a job is built from (rustls-ffi's config-builder pattern).
//! Create with [`hyper2kvm_options_new`], set what differs from the defaults, build any number
//! of jobs with `hyper2kvm_job_new`, then free it.

use std::ffi::{c_char, c_void};
use std::path::PathBuf;
use std::time::Duration;

use engine::TargetFormat;
use engine::kubevirt::{DataVolumeSource, KubeVirtOptions, check_namespace};

use crate::result::hyper2kvm_result;
use crate::{guard, str_arg, with_mut};

/// Called with a job's progress: the stage (`convert`, `verify`, `fix`, …), the item (a file or
/// disk), bytes done and bytes in all. The strings are valid only during the call. It runs on
/// the thread that called the job function — for a batch manifest, on that job's worker
/// threads, possibly several at once.
pub type hyper2kvm_progress_cb = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        stage: *const c_char,
        item: *const c_char,
        done: u64,
        total: u64,
    ),
>;

/// Settings for jobs (opaque).
#[derive(Debug, Clone)]
pub struct hyper2kvm_options {
    pub(crate) output_dir: Option<PathBuf>,
    pub(crate) format: TargetFormat,
    pub(crate) compress: Option<u8>,
    pub(crate) fix: bool,
    pub(crate) dry_run: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) progress: hyper2kvm_progress_cb,
    pub(crate) user_data: *mut c_void,
    pub(crate) kubevirt: bool,
    pub(crate) namespace: Option<String>,
    pub(crate) datavolume_source: DataVolumeSource,
}

impl hyper2kvm_options {
    /// The KubeVirt target's settings, when it is the target.
    pub(crate) fn kubevirt_options(&self) -> Option<KubeVirtOptions> {
        self.kubevirt.then(|| KubeVirtOptions {
            namespace: self.namespace.clone(),
            source: self.datavolume_source.clone(),
        })
    }
}

impl Default for hyper2kvm_options {
    fn default() -> Self {
        hyper2kvm_options {
            output_dir: None,
            format: TargetFormat::Qcow2,
            compress: None,
            fix: true,
            dry_run: false,
            timeout: None,
            progress: None,
            user_data: std::ptr::null_mut(),
            kubevirt: false,
            namespace: None,
            datavolume_source: DataVolumeSource::Upload,
        }
    }
}

/// Creates options with the defaults (qcow2, no compression, guest fixes on, no timeout, no
/// progress callback, output directory unset, libvirt target) in `*out`. Free with
/// [`hyper2kvm_options_free`].
///
/// # Safety
/// `out` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_options_new(
    out: *mut *mut hyper2kvm_options,
) -> hyper2kvm_result {
    guard(|| {
        if out.is_null() {
            return hyper2kvm_result::NullArgument;
        }
        // SAFETY: out is non-NULL and writable per the contract.
        unsafe { *out = Box::into_raw(Box::default()) };
        hyper2kvm_result::Ok
    })
}

/// Frees options. `hyper2kvm_options_free(NULL)` does nothing. Jobs built from them keep their
/// own copy.
///
/// # Safety
/// `opts` must be NULL or from [`hyper2kvm_options_new`], not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_options_free(opts: *mut hyper2kvm_options) {
    if !opts.is_null() {
        // SAFETY: from Box::into_raw in hyper2kvm_options_new, freed once.
        let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(opts) }));
    }
}

/// Where `hyper2kvm_convert` writes (required for it). `dir` is copied.
///
/// # Safety
/// `opts` must be NULL or live options; `dir` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_options_set_output_dir(
    opts: *mut hyper2kvm_options,
    dir: *const c_char,
) -> hyper2kvm_result {
    guard(|| {
        // SAFETY: per the contract.
        let dir = match unsafe { str_arg(dir) } {
            Ok(d) => PathBuf::from(d),
            Err(c) => return c,
        };
        // SAFETY: per the contract.
        unsafe { with_mut(opts, |o| o.output_dir = Some(dir)) }
    })
}

/// The output format: `"qcow2"` (default) or `"raw"`; anything else is
/// `HYPER2KVM_RESULT_INVALID_INPUT`.
///
/// # Safety
/// `opts` must be NULL or live options; `format` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_options_set_format(
    opts: *mut hyper2kvm_options,
    format: *const c_char,
) -> hyper2kvm_result {
    guard(|| {
        // SAFETY: per the contract.
        let format = match unsafe { str_arg(format) } {
            Ok("qcow2") => TargetFormat::Qcow2,
            Ok("raw") => TargetFormat::Raw,
            Ok(_) => return hyper2kvm_result::InvalidInput,
            Err(c) => return c,
        };
        // SAFETY: per the contract.
        unsafe { with_mut(opts, |o| o.format = format) }
    })
}

/// qcow2 compression level 1–9, or 0 for none (default); other values are
/// `HYPER2KVM_RESULT_INVALID_INPUT`.
///
/// # Safety
/// `opts` must be NULL or live options.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_options_set_compress(
    opts: *mut hyper2kvm_options,
    level: u32,
) -> hyper2kvm_result {
    guard(|| {
        if level > 9 {
            return hyper2kvm_result::InvalidInput;
        }
        // SAFETY: per the contract.
        unsafe { with_mut(opts, |o| o.compress = (level > 0).then_some(level as u8)) }
    })
}

/// Whether `hyper2kvm_convert` inspects and fixes the guest (default true).
///
/// # Safety
/// `opts` must be NULL or live options.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_options_set_fix(
    opts: *mut hyper2kvm_options,
    fix: bool,
) -> hyper2kvm_result {
    // SAFETY: per the contract.
    guard(|| unsafe { with_mut(opts, |o| o.fix = fix) })
}

/// With true, `hyper2kvm_run_manifest` only checks and plans (the JSON is the plan) and
/// writes nothing.
///
/// # Safety
/// `opts` must be NULL or live options.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_options_set_dry_run(
    opts: *mut hyper2kvm_options,
    dry_run: bool,
) -> hyper2kvm_result {
    // SAFETY: per the contract.
    guard(|| unsafe { with_mut(opts, |o| o.dry_run = dry_run) })
}

/// Cancels a manifest run after `seconds` (0: no limit, the default).
///
/// # Safety
/// `opts` must be NULL or live options.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_options_set_timeout(
    opts: *mut hyper2kvm_options,
    seconds: u64,
) -> hyper2kvm_result {
    guard(|| {
        // SAFETY: per the contract.
        unsafe {
            with_mut(opts, |o| o.timeout = (seconds > 0).then(|| Duration::from_secs(seconds)))
        }
    })
}

/// The progress callback and the pointer passed back to it (NULL `cb`: none). The library
/// never dereferences `user_data`; it must stay valid while jobs built from these options run.
///
/// # Safety
/// `opts` must be NULL or live options; `cb` NULL or a function of the declared type.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_options_set_progress(
    opts: *mut hyper2kvm_options,
    cb: hyper2kvm_progress_cb,
    user_data: *mut c_void,
) -> hyper2kvm_result {
    guard(|| {
        // SAFETY: per the contract.
        unsafe {
            with_mut(opts, |o| {
                o.progress = cb;
                o.user_data = user_data;
            })
        }
    })
}

/// What is written beside the disks: `"libvirt"` (default: `NAME.xml`) or `"kubevirt"`
/// (`NAME.xml` and `NAME.kubevirt.yaml`, a KubeVirt `VirtualMachine` with one CDI
/// `DataVolume` per disk), as `--target`. For `hyper2kvm_run_manifest` it is the default of
/// manifests without `output.target`. Anything else is `HYPER2KVM_RESULT_INVALID_INPUT`.
///
/// # Safety
/// `opts` must be NULL or live options; `target` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_options_set_target(
    opts: *mut hyper2kvm_options,
    target: *const c_char,
) -> hyper2kvm_result {
    guard(|| {
        // SAFETY: per the contract.
        let kubevirt = match unsafe { str_arg(target) } {
            Ok("libvirt") => false,
            Ok("kubevirt") => true,
            Ok(_) => return hyper2kvm_result::InvalidInput,
            Err(c) => return c,
        };
        // SAFETY: per the contract.
        unsafe { with_mut(opts, |o| o.kubevirt = kubevirt) }
    })
}

/// The Kubernetes namespace written into the KubeVirt objects (NULL: none, the default, so
/// they land in the namespace `kubectl` is pointed at), as `--namespace`. A name that is not
/// a DNS label is `HYPER2KVM_RESULT_INVALID_INPUT`.
///
/// # Safety
/// `opts` must be NULL or live options; `namespace` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_options_set_namespace(
    opts: *mut hyper2kvm_options,
    namespace: *const c_char,
) -> hyper2kvm_result {
    guard(|| {
        let namespace = if namespace.is_null() {
            None
        } else {
            // SAFETY: per the contract.
            match unsafe { str_arg(namespace) } {
                Ok(ns) if check_namespace(ns).is_ok() => Some(ns.to_string()),
                Ok(_) => return hyper2kvm_result::InvalidInput,
                Err(c) => return c,
            }
        };
        // SAFETY: per the contract.
        unsafe { with_mut(opts, |o| o.namespace = namespace) }
    })
}

/// Where the KubeVirt DataVolumes get their data: `"upload"` (default) or `"pvc:NAMESPACE"`
/// (a clone of the PVC of the same name there), as `--datavolume-source`; anything else is
/// `HYPER2KVM_RESULT_INVALID_INPUT`.
///
/// # Safety
/// `opts` must be NULL or live options; `source` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_options_set_datavolume_source(
    opts: *mut hyper2kvm_options,
    source: *const c_char,
) -> hyper2kvm_result {
    guard(|| {
        // SAFETY: per the contract.
        let source: DataVolumeSource = match unsafe { str_arg(source) }.map(str::parse) {
            Ok(Ok(s)) => s,
            Ok(Err(_)) => return hyper2kvm_result::InvalidInput,
            Err(c) => return c,
        };
        // SAFETY: per the contract.
        unsafe { with_mut(opts, |o| o.datavolume_source = source) }
    })
}
