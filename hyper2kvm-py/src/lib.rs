//! The `hyper2kvm._hyper2kvm` extension module behind `import hyper2kvm`.
//!
//! Arguments are converted to Rust first; the work then runs on a worker thread while the
//! calling thread waits with the GIL released, waking every 100 ms to let Python handle
//! signals (Ctrl-C cancels the work cleanly and raises `KeyboardInterrupt`). Progress
//! callbacks re-enter Python briefly from the worker; one that raises cancels the work and its
//! exception propagates. Engine errors become the exception classes of `hyper2kvm._errors` (one
//! per error kind; missing files and denied permissions also subclass `FileNotFoundError` and
//! `PermissionError`). Results are plain dicts that `hyper2kvm/_results.py` wraps in typed
//! classes.

#![warn(missing_docs)]

use std::path::PathBuf;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper2kvm::kubevirt::{self, KubeVirtOptions};
use hyper2kvm::manifest::{self, ManifestFile};
use hyper2kvm::pipeline::{Event, JobOptions, ManifestRun};
use hyper2kvm::{CancelToken, ConvertOptions, Error, ProbeOptions, Progress, TargetFormat};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use serde_json::json;

/// The Python class name for an error kind (defined in `hyper2kvm/_errors.py`). A kind added
/// to the engine falls to `InternalError` here until it gets a class: the test over
/// [`error_classes`] (`tests/test_api.py`) fails on that, as on a class that does not exist.
fn class_name(kind: hyper2kvm::ErrorKind) -> &'static str {
    use hyper2kvm::ErrorKind::*;
    match kind {
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
        Internal => "InternalError",
        _ => "InternalError",
    }
}

/// `(kind, class name, C result code)` for every engine error kind, in code order.
#[pyfunction]
fn error_classes() -> Vec<(&'static str, &'static str, u32)> {
    hyper2kvm::ErrorKind::ALL.iter().map(|&k| (k.as_str(), class_name(k), k as u32)).collect()
}

/// Builds the Python exception for an engine error, with `kind` and `path` attributes.
fn to_py_err(py: Python<'_>, err: Error) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let module = py.import("hyper2kvm._errors")?;
        let class = module.getattr(class_name(err.kind()))?;
        let path = err.path().map(|p| p.to_string_lossy().into_owned());
        let value = class.call1((err.to_string(), err.kind().as_str(), path))?;
        Ok(PyErr::from_value(value))
    };
    build().unwrap_or_else(|e| e)
}

fn json_to_py(py: Python<'_>, value: &impl serde::Serialize) -> PyResult<Py<PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

/// A Python progress callable, and the first exception it raised.
#[derive(Clone)]
struct Callback {
    callable: Option<Arc<Py<PyAny>>>,
    raised: Arc<Mutex<Option<PyErr>>>,
    cancel: CancelToken,
}

impl Callback {
    fn new(callable: Option<Py<PyAny>>, cancel: CancelToken) -> Callback {
        Callback { callable: callable.map(Arc::new), raised: Arc::default(), cancel }
    }

    /// Calls `progress(stage, item, done, total)`; an exception cancels the work.
    fn call(&self, stage: &str, item: &str, done: u64, total: u64) {
        let Some(f) = &self.callable else { return };
        if self.cancel.is_cancelled() {
            return;
        }
        Python::attach(|py| {
            if let Err(e) = f.call1(py, (stage, item, done, total)) {
                self.raised.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                self.cancel.cancel();
            }
        });
    }

    fn take_raised(&self) -> Option<PyErr> {
        self.raised.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Runs `work` on a worker thread while this thread waits without the GIL, handling signals
/// every 100 ms: an exception from a signal handler (Ctrl-C's `KeyboardInterrupt`) cancels the
/// work, waits for it to clean up, and propagates. So does one raised by the progress
/// callback.
fn run_blocking<T: Send>(
    py: Python<'_>,
    cb: &Callback,
    work: impl FnOnce() -> Result<T, Error> + Send,
) -> PyResult<T> {
    std::thread::scope(|s| {
        let (tx, rx) = channel();
        s.spawn(move || {
            let _ = tx.send(work());
        });
        // Borrowed by detach's closure, which must be Send: a Receiver is only behind a lock.
        let rx = Mutex::new(rx);
        let recv = |timeout: Option<Duration>| {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            match timeout {
                Some(t) => rx.recv_timeout(t),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            }
        };
        let result = loop {
            match py.detach(|| recv(Some(Duration::from_millis(100)))) {
                Ok(r) => break r,
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = py.check_signals() {
                        cb.cancel.cancel();
                        let _ = py.detach(|| recv(None));
                        return Err(e);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(PyRuntimeError::new_err("the hyper2kvm worker thread died"));
                }
            }
        };
        if let Some(e) = cb.take_raised() {
            return Err(e);
        }
        // A signal that arrived while the result was on its way (Ctrl-C during the last
        // progress report) is raised now, as Python would on return, not lost.
        py.check_signals()?;
        result.map_err(|e| to_py_err(py, e))
    })
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

/// Inspects the guest on each input (read-only; each input is one guest); a list of dicts.
#[pyfunction]
fn inspect(py: Python<'_>, paths: Vec<PathBuf>) -> PyResult<Py<PyAny>> {
    let cb = Callback::new(None, CancelToken::new());
    let cancel = cb.cancel.clone();
    let reports =
        run_blocking(py, &cb, || hyper2kvm::inspect_input::inspect_inputs(&paths, &cancel))?;
    json_to_py(py, &reports)
}

/// Converts an input into `output_dir`; the report as a dict.
#[pyfunction]
#[pyo3(signature = (input, output_dir, format, compress, fix, progress, target, namespace, datavolume_source))]
#[allow(clippy::too_many_arguments)]
fn convert(
    py: Python<'_>,
    input: PathBuf,
    output_dir: PathBuf,
    format: &str,
    compress: Option<u8>,
    fix: bool,
    progress: Option<Py<PyAny>>,
    target: &str,
    namespace: Option<String>,
    datavolume_source: &str,
) -> PyResult<Py<PyAny>> {
    let format = match format {
        "qcow2" => TargetFormat::Qcow2,
        "raw" => TargetFormat::Raw,
        other => return Err(PyValueError::new_err(format!("format {other:?}: qcow2 or raw"))),
    };
    let kubevirt = kubevirt_options(target, namespace, datavolume_source)?;
    let mut opts = ConvertOptions { format, compress, kubevirt, ..ConvertOptions::default() };
    if !fix {
        opts.fix = None;
    }
    let cb = Callback::new(progress, CancelToken::new());
    let worker = cb.clone();
    let report = run_blocking(py, &cb, move || {
        let mut report = |p: &Progress| worker.call(p.stage.name(), &p.item, p.done, p.total);
        hyper2kvm::convert(&input, &output_dir, &opts, &mut report, &worker.cancel)
    })?;
    json_to_py(py, &report)
}

/// The KubeVirt target's options from `target`, `namespace` and `datavolume_source` (`None`
/// for the libvirt target).
fn kubevirt_options(
    target: &str,
    namespace: Option<String>,
    datavolume_source: &str,
) -> PyResult<Option<KubeVirtOptions>> {
    match target {
        "libvirt" => return Ok(None),
        "kubevirt" => {}
        other => {
            return Err(PyValueError::new_err(format!("target {other:?}: libvirt or kubevirt")));
        }
    }
    if let Some(Err(e)) = namespace.as_deref().map(kubevirt::check_namespace) {
        return Err(PyValueError::new_err(format!("namespace {}", e.message())));
    }
    let source =
        datavolume_source.parse().map_err(|e: Error| PyValueError::new_err(e.to_string()))?;
    Ok(Some(KubeVirtOptions { namespace, source }))
}

/// Reads and checks a VM or batch manifest; a dict describing it.
#[pyfunction]
fn load_manifest(py: Python<'_>, path: PathBuf) -> PyResult<Py<PyAny>> {
    let loaded = py.detach(|| manifest::load(&path)).map_err(|e| to_py_err(py, e))?;
    let doc = match loaded {
        ManifestFile::Vm(m) => json!({
            "kind": "vm",
            "path": m.path,
            "vm_name": m.manifest.vm_name(),
            "manifest": m.manifest,
            "warnings": m.warnings,
        }),
        ManifestFile::Batch(b) => json!({
            "kind": "batch",
            "path": b.path,
            "batch_id": b.batch_id,
            "parallel_limit": b.parallel_limit,
            "continue_on_error": b.continue_on_error,
            "vms": b.vms.iter().map(|v| json!({
                "id": v.id,
                "manifest": v.manifest_path,
                "priority": v.priority,
                "enabled": v.enabled,
                "output_directory": v.output_dir,
                "vm_name": v.manifest.as_ref().map(|m| m.manifest.vm_name()),
            })).collect::<Vec<_>>(),
            "warnings": b.warnings,
        }),
    };
    json_to_py(py, &doc)
}

/// Runs (or with `dry_run` plans) a VM or batch manifest; a dict.
#[pyfunction]
#[pyo3(signature = (path, dry_run, progress, target))]
fn run_manifest(
    py: Python<'_>,
    path: PathBuf,
    dry_run: bool,
    progress: Option<Py<PyAny>>,
    target: &str,
) -> PyResult<Py<PyAny>> {
    let mut opts = JobOptions::default();
    opts.defaults.kubevirt = kubevirt_options(target, None, "upload")?;
    let cb = Callback::new(progress, CancelToken::new());
    let worker = cb.clone();
    let doc = run_blocking(py, &cb, move || {
        let run = ManifestRun::load(&path, opts, worker.cancel.clone())?;
        let events = |_id: &str, e: &Event| {
            if let Event::Progress { stage, item, done, total } = e {
                worker.call(stage.name(), item, *done, *total);
            }
        };
        run.document(dry_run, &events)
    })?;
    json_to_py(py, &doc)
}

#[pymodule]
fn _hyper2kvm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", hyper2kvm::VERSION)?;
    m.add_function(wrap_pyfunction!(probe, m)?)?;
    m.add_function(wrap_pyfunction!(inspect, m)?)?;
    m.add_function(wrap_pyfunction!(convert, m)?)?;
    m.add_function(wrap_pyfunction!(load_manifest, m)?)?;
    m.add_function(wrap_pyfunction!(run_manifest, m)?)?;
    m.add_function(wrap_pyfunction!(error_classes, m)?)?;
    Ok(())
}
