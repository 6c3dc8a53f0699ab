//! The `hyper2kvm._hyper2kvm` extension module behind `import hyper2kvm`.
//!
//! Arguments are converted to Rust first, the work runs with the GIL released, and engine
//! errors become the exception classes of `hyper2kvm._errors` (one per error kind; missing
//! files and denied permissions also subclass `FileNotFoundError` and `PermissionError`).

use std::path::PathBuf;

use hyper2kvm::{Error, ProbeOptions};
use pyo3::prelude::*;

/// The Python class name for an error kind (defined in `hyper2kvm/_errors.py`).
fn class_name(err: &Error) -> &'static str {
    use hyper2kvm::ErrorKind::*;
    match err.kind() {
        Io => "IoError",
        NotFound => "NotFoundError",
        PermissionDenied => "PermissionDeniedError",
        InvalidInput => "InvalidInputError",
        Unsupported => "UnsupportedError",
        Checksum => "ChecksumError",
        ToolFailed => "ToolFailedError",
        GuestInspection => "GuestInspectionError",
        Cancelled => "CancelledError",
        Timeout => "OperationTimeoutError",
        _ => "InternalError",
    }
}

/// Builds the Python exception for an engine error, with `kind` and `path` attributes.
fn to_py_err(py: Python<'_>, err: Error) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let module = py.import("hyper2kvm._errors")?;
        let class = module.getattr(class_name(&err))?;
        let path = err.path().map(|p| p.to_string_lossy().into_owned());
        let value = class.call1((err.to_string(), err.kind().as_str(), path))?;
        Ok(PyErr::from_value(value))
    };
    build().unwrap_or_else(|e| e)
}

fn json_to_py(py: Python<'_>, value: &impl serde::Serialize) -> PyResult<Py<PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

/// Identifies a disk image, OVA or OVF from its content and returns what it holds as a dict.
#[pyfunction]
#[pyo3(signature = (path, *, cross_check = true, verify_manifest = true))]
fn probe(
    py: Python<'_>,
    path: PathBuf,
    cross_check: bool,
    verify_manifest: bool,
) -> PyResult<Py<PyAny>> {
    let opts = ProbeOptions { cross_check, verify_manifest };
    match py.detach(|| hyper2kvm::probe(&path, &opts)) {
        Ok(p) => json_to_py(py, &p),
        Err(e) => Err(to_py_err(py, e)),
    }
}

#[pymodule]
fn _hyper2kvm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", hyper2kvm::VERSION)?;
    m.add_function(wrap_pyfunction!(probe, m)?)?;
    Ok(())
}
