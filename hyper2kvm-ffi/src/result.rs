//! Result codes: one per engine [`ErrorKind`](engine::ErrorKind), with the same numbers, plus
//! the conditions only the C boundary has. Values are explicit and never renumbered.

use std::ffi::c_char;

use engine::ErrorKind;

/// What a `hyper2kvm_*` call returns.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum hyper2kvm_result {
    /// Success.
    Ok = 0,
    /// An I/O error.
    Io = 1,
    /// A path that does not exist.
    NotFound = 2,
    /// A path that may not be read or written.
    PermissionDenied = 3,
    /// Malformed input.
    InvalidInput = 4,
    /// Well-formed input that is not supported.
    Unsupported = 5,
    /// A checksum mismatch.
    Checksum = 6,
    /// An external tool failed.
    ToolFailed = 7,
    /// Guest inspection or modification failed.
    GuestInspection = 8,
    /// The operation was cancelled.
    Cancelled = 9,
    /// The operation timed out.
    Timeout = 10,
    /// A bug in hyper2kvm.
    Internal = 11,
    /// A required pointer argument was NULL.
    NullArgument = 1000,
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 1001,
    /// The library panicked; the call had no effect the caller can rely on.
    Panic = 1002,
}

impl From<ErrorKind> for hyper2kvm_result {
    fn from(k: ErrorKind) -> Self {
        use hyper2kvm_result::*;
        match k {
            ErrorKind::Io => Io,
            ErrorKind::NotFound => NotFound,
            ErrorKind::PermissionDenied => PermissionDenied,
            ErrorKind::InvalidInput => InvalidInput,
            ErrorKind::Unsupported => Unsupported,
            ErrorKind::Checksum => Checksum,
            ErrorKind::ToolFailed => ToolFailed,
            ErrorKind::GuestInspection => GuestInspection,
            ErrorKind::Cancelled => Cancelled,
            ErrorKind::Timeout => Timeout,
            _ => Internal,
        }
    }
}

fn message(code: u32) -> &'static str {
    match code {
        0 => "success",
        1 => "I/O error",
        2 => "no such file or directory",
        3 => "permission denied",
        4 => "invalid input",
        5 => "unsupported input",
        6 => "checksum mismatch",
        7 => "external tool failed",
        8 => "guest inspection failed",
        9 => "cancelled",
        10 => "timed out",
        11 => "internal error",
        1000 => "a required argument was NULL",
        1001 => "a string argument was not valid UTF-8",
        1002 => "hyper2kvm panicked",
        _ => "unknown result code",
    }
}

/// Copies a NUL-terminated description of `code` into `buf` (of `len` bytes), truncating if
/// needed, and returns the length of the full description without the NUL. With `buf` NULL or
/// `len` 0 nothing is written, so a caller can ask for the length first.
///
/// # Safety
/// `buf` must be NULL or point to `len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_strerror(code: u32, buf: *mut c_char, len: usize) -> usize {
    let msg = message(code).as_bytes();
    if !buf.is_null() && len > 0 {
        let n = msg.len().min(len - 1);
        // SAFETY: buf has `len` writable bytes and n + 1 <= len.
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    msg.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_equal_kind_numbers() {
        for k in ErrorKind::ALL {
            assert_eq!(hyper2kvm_result::from(k) as u32, k as u32, "{k}");
            assert_ne!(message(k as u32), "unknown result code");
        }
    }
}
