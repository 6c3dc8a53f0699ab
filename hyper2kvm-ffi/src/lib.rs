//! The C ABI of hyper2kvm: `libhyper2kvm.so.1` and `include/hyper2kvm.h`.
//!
//! Conventions (after rustls-ffi): every function returns a [`hyper2kvm_result`]; NULL
//! arguments give [`hyper2kvm_result::NullArgument`] and never crash; every body
//! runs inside a panic boundary; strings handed to the caller are owned by the caller and freed
//! with [`hyper2kvm_string_free`]. Results are JSON documents, the same as `hyper2kvm --json`.
//!
//! Handles follow builder → build → use → free: [`hyper2kvm_options`] (the settings, with the
//! progress callback and its `void *user_data`) builds [`hyper2kvm_job`]s; a job runs
//! [`hyper2kvm_convert`], [`hyper2kvm_inspect`] or [`hyper2kvm_run_manifest`], can be cancelled
//! from another thread ([`hyper2kvm_job_cancel`]) and keeps its last error's message
//! ([`hyper2kvm_job_last_error`]). [`hyper2kvm_probe`] needs no job. Every `_free(NULL)` is a
//! no-op.

#![allow(non_camel_case_types)]
#![warn(missing_docs)]

mod job;
mod options;
mod result;

use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

pub use job::{
    hyper2kvm_convert, hyper2kvm_inspect, hyper2kvm_job, hyper2kvm_job_cancel, hyper2kvm_job_free,
    hyper2kvm_job_last_error, hyper2kvm_job_new, hyper2kvm_run_manifest,
};
pub use options::{
    hyper2kvm_options, hyper2kvm_options_free, hyper2kvm_options_new,
    hyper2kvm_options_set_compress, hyper2kvm_options_set_datavolume_source,
    hyper2kvm_options_set_dry_run, hyper2kvm_options_set_fix, hyper2kvm_options_set_format,
    hyper2kvm_options_set_namespace, hyper2kvm_options_set_output_dir,
    hyper2kvm_options_set_progress, hyper2kvm_options_set_target, hyper2kvm_options_set_timeout,
    hyper2kvm_progress_cb,
};
pub use result::{hyper2kvm_result, hyper2kvm_strerror};

/// Runs `f` behind a panic boundary, turning a panic into `HYPER2KVM_RESULT_PANIC`.
fn guard(f: impl FnOnce() -> hyper2kvm_result) -> hyper2kvm_result {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(hyper2kvm_result::Panic)
}

/// Borrows a C string argument.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string valid for the call.
unsafe fn str_arg<'a>(p: *const c_char) -> Result<&'a str, hyper2kvm_result> {
    if p.is_null() {
        return Err(hyper2kvm_result::NullArgument);
    }
    // SAFETY: non-NULL and NUL-terminated per this function's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|_| hyper2kvm_result::InvalidUtf8)
}

/// Borrows a C string argument as a path.
///
/// # Safety
/// As [`str_arg`].
unsafe fn path_arg<'a>(p: *const c_char) -> Result<&'a Path, hyper2kvm_result> {
    // SAFETY: per this function's contract.
    unsafe { str_arg(p) }.map(Path::new)
}

/// Applies `f` to a handle the caller owns; NULL is `HYPER2KVM_RESULT_NULL_ARGUMENT`.
///
/// # Safety
/// `p` must be NULL or a live, unaliased handle.
unsafe fn with_mut<T>(p: *mut T, f: impl FnOnce(&mut T)) -> hyper2kvm_result {
    if p.is_null() {
        return hyper2kvm_result::NullArgument;
    }
    // SAFETY: non-NULL, live and unaliased per this function's contract.
    f(unsafe { &mut *p });
    hyper2kvm_result::Ok
}

/// Stores a new C string in `*out`.
///
/// # Safety
/// `out` must be a valid, writable pointer.
unsafe fn give_string(out: *mut *mut c_char, s: String) -> hyper2kvm_result {
    let Ok(c) = CString::new(s) else { return hyper2kvm_result::Internal };
    // SAFETY: the caller guarantees `out` is writable.
    unsafe { *out = c.into_raw() };
    hyper2kvm_result::Ok
}

/// The library version as a static NUL-terminated string (do not free).
#[unsafe(no_mangle)]
pub extern "C" fn hyper2kvm_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

/// Probes the disk image, OVA or OVF at `path` and stores a JSON document describing it in
/// `*json_out` (the same document as one entry of `hyper2kvm probe --json`). On failure
/// `*json_out` receives a JSON object `{"kind", "code", "message", "path", "offset"}` instead,
/// when `json_out` is not NULL. Either way the caller owns the string and frees it with
/// [`hyper2kvm_string_free`]. `path` is borrowed for the call only.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `json_out` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_probe(
    path: *const c_char,
    json_out: *mut *mut c_char,
) -> hyper2kvm_result {
    guard(|| {
        if json_out.is_null() {
            return hyper2kvm_result::NullArgument;
        }
        // SAFETY: json_out is non-NULL and writable per the contract.
        unsafe { *json_out = std::ptr::null_mut() };
        // SAFETY: path is NULL or NUL-terminated per the contract.
        let path = match unsafe { path_arg(path) } {
            Ok(p) => p,
            Err(code) => return code,
        };
        match engine::probe(path, &engine::ProbeOptions::default()) {
            Ok(p) => match serde_json::to_string(&p) {
                // SAFETY: json_out checked above.
                Ok(s) => unsafe { give_string(json_out, s) },
                Err(_) => hyper2kvm_result::Internal,
            },
            Err(e) => {
                // SAFETY: json_out checked above.
                unsafe { give_string(json_out, e.to_json().to_string()) };
                hyper2kvm_result::from(e.kind())
            }
        }
    })
}

/// Frees a string this library returned. `hyper2kvm_string_free(NULL)` does nothing.
///
/// # Safety
/// `s` must be NULL or a string returned by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    // SAFETY: `s` came from CString::into_raw in this library and is freed once.
    let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { CString::from_raw(s) })));
}
