//! `hyper2kvm_job`: one piece of work built from options — inspect, convert or run a
//! manifest — that another thread can cancel, and that keeps its last error's full message.
//! Results and errors come back as JSON strings the caller frees with
//! `hyper2kvm_string_free`.

use std::ffi::{CString, c_char, c_void};
use std::path::PathBuf;
use std::sync::Mutex;

use engine::pipeline::{Event, JobOptions, ManifestRun};
use engine::{CancelToken, ConvertOptions, Error, Progress};

use crate::options::{hyper2kvm_options, hyper2kvm_progress_cb};
use crate::result::hyper2kvm_result;
use crate::{give_string, guard, str_arg};

/// A job (opaque). Its functions may be called from any thread; [`hyper2kvm_job_cancel`] and
/// [`hyper2kvm_job_last_error`] while another thread runs it.
#[derive(Debug)]
pub struct hyper2kvm_job {
    opts: hyper2kvm_options,
    cancel: CancelToken,
    last_error: Mutex<Option<String>>,
}

/// The caller's callback and pointer, handed to the engine's worker threads.
#[derive(Clone, Copy)]
struct Callback {
    cb: hyper2kvm_progress_cb,
    user_data: *mut c_void,
}

// SAFETY: the library never touches `user_data`; the header tells callers that callbacks of a
// batch manifest come from several threads, so the callback and its data must allow that.
unsafe impl Send for Callback {}
// SAFETY: as above.
unsafe impl Sync for Callback {}

impl Callback {
    fn call(&self, stage: &str, item: &str, done: u64, total: u64) {
        let Some(cb) = self.cb else { return };
        let (Ok(stage), Ok(item)) = (CString::new(stage), CString::new(item)) else { return };
        // SAFETY: the caller registered `cb` for this signature; the strings outlive the call.
        unsafe { cb(self.user_data, stage.as_ptr(), item.as_ptr(), done, total) };
    }
}

impl hyper2kvm_job {
    fn callback(&self) -> Callback {
        Callback { cb: self.opts.progress, user_data: self.opts.user_data }
    }

    /// Stores the result or the error (JSON) in `*out` and the error's message as the last
    /// error; returns the code.
    ///
    /// # Safety
    /// `out` must be writable.
    unsafe fn finish(
        &self,
        r: Result<serde_json::Value, Error>,
        out: *mut *mut c_char,
    ) -> hyper2kvm_result {
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        match r {
            Ok(v) => {
                *last = None;
                // SAFETY: per this function's contract.
                unsafe { give_string(out, v.to_string()) }
            }
            Err(e) => {
                *last = Some(e.to_string());
                // SAFETY: per this function's contract.
                unsafe { give_string(out, e.to_json().to_string()) };
                hyper2kvm_result::from(e.kind())
            }
        }
    }
}

/// Borrows a job and checks the output pointer, clearing `*out`.
///
/// # Safety
/// `job` must be NULL or live; `out` NULL or writable.
unsafe fn prepare<'a>(
    job: *const hyper2kvm_job,
    out: *mut *mut c_char,
) -> Result<&'a hyper2kvm_job, hyper2kvm_result> {
    if job.is_null() || out.is_null() {
        return Err(hyper2kvm_result::NullArgument);
    }
    // SAFETY: out is non-NULL and writable per the contract.
    unsafe { *out = std::ptr::null_mut() };
    // SAFETY: job is non-NULL and live per the contract.
    Ok(unsafe { &*job })
}

/// Builds a job from `opts` (copied: the options may be freed or changed afterwards) in
/// `*out`. Free it with [`hyper2kvm_job_free`]. A job runs one piece of work; once cancelled
/// it stays cancelled.
///
/// # Safety
/// `opts` must be NULL or live options; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_job_new(
    opts: *const hyper2kvm_options,
    out: *mut *mut hyper2kvm_job,
) -> hyper2kvm_result {
    guard(|| {
        if opts.is_null() || out.is_null() {
            return hyper2kvm_result::NullArgument;
        }
        // SAFETY: opts is non-NULL and live per the contract.
        let opts = unsafe { (*opts).clone() };
        let job = hyper2kvm_job { opts, cancel: CancelToken::new(), last_error: Mutex::new(None) };
        // SAFETY: out is non-NULL and writable.
        unsafe { *out = Box::into_raw(Box::new(job)) };
        hyper2kvm_result::Ok
    })
}

/// Frees a job. `hyper2kvm_job_free(NULL)` does nothing. The job must not be running.
///
/// # Safety
/// `job` must be NULL or from [`hyper2kvm_job_new`], not yet freed, and not in use.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_job_free(job: *mut hyper2kvm_job) {
    if !job.is_null() {
        // SAFETY: from Box::into_raw in hyper2kvm_job_new, freed once.
        let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(job) }));
    }
}

/// Asks a running job to stop, from any thread; it returns `HYPER2KVM_RESULT_CANCELLED`
/// within a fraction of a second, its temporary files removed. Cancelling before the work
/// starts makes the work return at once.
///
/// # Safety
/// `job` must be NULL or a live job.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_job_cancel(job: *const hyper2kvm_job) -> hyper2kvm_result {
    guard(|| {
        if job.is_null() {
            return hyper2kvm_result::NullArgument;
        }
        // SAFETY: non-NULL and live per the contract.
        unsafe { (*job).cancel.cancel() };
        hyper2kvm_result::Ok
    })
}

/// The full message of the job's last error (with the file it concerns) in `*message_out`,
/// or NULL when its last call succeeded or none was made. The caller frees the string with
/// `hyper2kvm_string_free`.
///
/// # Safety
/// `job` must be NULL or a live job; `message_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_job_last_error(
    job: *const hyper2kvm_job,
    message_out: *mut *mut c_char,
) -> hyper2kvm_result {
    guard(|| {
        // SAFETY: per the contract.
        let job = match unsafe { prepare(job, message_out) } {
            Ok(j) => j,
            Err(c) => return c,
        };
        let last = job.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match last {
            // SAFETY: message_out checked by prepare.
            Some(m) => unsafe { give_string(message_out, m) },
            None => hyper2kvm_result::Ok,
        }
    })
}

/// Converts the disk image, OVA, OVF or VMX at `input` into the options' output directory
/// (required), inspecting and fixing the guest unless the options say not to, and writing the
/// libvirt domain beside the disks. `*json_out` receives the report (the document of
/// `hyper2kvm convert --json`'s `report`) or the error as JSON; the caller frees it.
///
/// # Safety
/// `job` must be NULL or a live job; `input` NULL or a NUL-terminated string; `json_out` NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_convert(
    job: *const hyper2kvm_job,
    input: *const c_char,
    json_out: *mut *mut c_char,
) -> hyper2kvm_result {
    guard(|| {
        // SAFETY: per the contract.
        let (job, input) =
            match unsafe { prepare(job, json_out).and_then(|j| Ok((j, str_arg(input)?))) } {
                Ok(x) => x,
                Err(c) => return c,
            };
        let o = &job.opts;
        let r = match &o.output_dir {
            None => Err(Error::new(
                engine::ErrorKind::InvalidInput,
                "no output directory: call hyper2kvm_options_set_output_dir first",
            )),
            Some(dir) => {
                let mut copts = ConvertOptions {
                    format: o.format,
                    compress: o.compress,
                    kubevirt: o.kubevirt_options(),
                    ..ConvertOptions::default()
                };
                if !o.fix {
                    copts.fix = None;
                }
                let cb = job.callback();
                let mut progress = |p: &Progress| cb.call(p.stage.name(), &p.item, p.done, p.total);
                engine::convert(
                    PathBuf::from(input).as_path(),
                    dir,
                    &copts,
                    &mut progress,
                    &job.cancel,
                )
                .and_then(|rep| serde_json::to_value(rep).map_err(internal))
            }
        };
        // SAFETY: json_out checked by prepare.
        unsafe { job.finish(r, json_out) }
    })
}

/// Inspects the guest on each of the `count` inputs in `paths` (read-only; each input is one
/// guest) and stores a JSON array of reports, one per input in order (the documents of
/// `hyper2kvm inspect --json`), in `*json_out`. The first failure ends the call with its code
/// and error JSON.
///
/// # Safety
/// `job` must be NULL or a live job; `paths` NULL or `count` NULL-or-NUL-terminated strings;
/// `json_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_inspect(
    job: *const hyper2kvm_job,
    paths: *const *const c_char,
    count: usize,
    json_out: *mut *mut c_char,
) -> hyper2kvm_result {
    guard(|| {
        // SAFETY: per the contract.
        let job = match unsafe { prepare(job, json_out) } {
            Ok(j) => j,
            Err(c) => return c,
        };
        if paths.is_null() || count == 0 {
            return hyper2kvm_result::NullArgument;
        }
        let mut inputs = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: paths holds `count` pointers per the contract.
            match unsafe { str_arg(*paths.add(i)) } {
                Ok(p) => inputs.push(PathBuf::from(p)),
                Err(c) => return c,
            }
        }
        let r = engine::inspect_input::inspect_inputs(&inputs, &job.cancel)
            .and_then(|reports| serde_json::to_value(&reports).map_err(internal));
        // SAFETY: json_out checked by prepare.
        unsafe { job.finish(r, json_out) }
    })
}

/// Runs an Artifact Manifest v1.0 or a batch manifest through the pipeline (or, with the
/// options' dry run, only checks and plans it) and stores
/// `{"success", "outputs": [paths], "result": {...}}` — or for a dry run
/// `{"dry_run": true, "warnings", "plan"}` — in `*json_out`. A bad manifest gives
/// `HYPER2KVM_RESULT_INVALID_INPUT` and the error JSON naming every problem; a batch whose VMs
/// failed returns OK with `"success": false`. Progress callbacks of a batch come from several
/// threads.
///
/// # Safety
/// `job` must be NULL or a live job; `manifest` NULL or a NUL-terminated string; `json_out`
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hyper2kvm_run_manifest(
    job: *const hyper2kvm_job,
    manifest: *const c_char,
    json_out: *mut *mut c_char,
) -> hyper2kvm_result {
    guard(|| {
        // SAFETY: per the contract.
        let (job, manifest) =
            match unsafe { prepare(job, json_out).and_then(|j| Ok((j, str_arg(manifest)?))) } {
                Ok(x) => x,
                Err(c) => return c,
            };
        let mut opts = JobOptions { timeout: job.opts.timeout, ..JobOptions::default() };
        opts.defaults.kubevirt = job.opts.kubevirt_options();
        let r = ManifestRun::load(PathBuf::from(manifest).as_path(), opts, job.cancel.clone())
            .and_then(|run| {
                let cb = job.callback();
                let events = move |_id: &str, e: &Event| {
                    if let Event::Progress { stage, item, done, total } = e {
                        cb.call(stage.name(), item, *done, *total);
                    }
                };
                run.document(job.opts.dry_run, &events)
            });
        // SAFETY: json_out checked by prepare.
        unsafe { job.finish(r, json_out) }
    })
}

fn internal(e: serde_json::Error) -> Error {
    Error::new(engine::ErrorKind::Internal, e.to_string())
}
