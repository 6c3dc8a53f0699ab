//! Prometheus metrics and a liveness check, served over HTTP when `METRICS_LISTEN` is set:
//! `GET /metrics` (the text exposition format, encoded by prometheus-client) and `GET /healthz`
//! (200 while the main loop turns, 503 once it has not for [`STUCK_AFTER`]).
//!
//! The server runs as tasks on the daemon's runtime, beside the main loop; a stuck main loop
//! does not stop it from answering 503.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// How long the main loop may go without a turn before `/healthz` says 503. It turns at least
/// once a second; finishing a job (records, a libvirt define) can hold it for a few seconds.
pub const STUCK_AFTER: Duration = Duration::from_secs(30);

/// `result` of `hyper2kvm_jobs_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `success`, `failed` or `retried`.
    pub result: &'static str,
}

/// `stage` of `hyper2kvm_stage_duration_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    /// The pipeline stage (`convert`, `inspect`, …).
    pub stage: String,
}

/// The daemon's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Finished attempts by result.
    pub jobs: Family<ResultLabel, Counter>,
    /// Jobs running now.
    pub running: Gauge,
    /// Manifests waiting in the queue.
    pub queue_depth: Gauge,
    /// Wall time of each attempt.
    pub job_duration: Histogram,
    /// Wall time of each stage of each attempt.
    pub stage_duration: Family<StageLabel, Histogram>,
    /// Bytes of source disks converted.
    pub converted_bytes: Counter,
    /// When the main loop last turned (milliseconds since `born`).
    beat_ms: AtomicU64,
    born: Instant,
}

fn seconds_buckets() -> Histogram {
    // 1 s to about 9 hours.
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

impl Metrics {
    /// Registers every metric under the `hyper2kvm` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hyper2kvm");
        let jobs = Family::<ResultLabel, Counter>::default();
        registry.register("jobs", "Finished job attempts by result", jobs.clone());
        let running = Gauge::default();
        registry.register("jobs_running", "Jobs running now", running.clone());
        let queue_depth = Gauge::default();
        registry.register("queue_depth", "Manifests waiting in the queue", queue_depth.clone());
        let job_duration = seconds_buckets();
        registry.register_with_unit(
            "job_duration",
            "Wall time of each job attempt",
            Unit::Seconds,
            job_duration.clone(),
        );
        let stage_duration =
            Family::<StageLabel, Histogram>::new_with_constructor(seconds_buckets as fn() -> _);
        registry.register_with_unit(
            "stage_duration",
            "Wall time of each pipeline stage",
            Unit::Seconds,
            stage_duration.clone(),
        );
        let converted_bytes = Counter::default();
        registry.register_with_unit(
            "converted",
            "Bytes of source disks converted",
            Unit::Bytes,
            converted_bytes.clone(),
        );
        Metrics {
            registry,
            jobs,
            running,
            queue_depth,
            job_duration,
            stage_duration,
            converted_bytes,
            beat_ms: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    /// Counts one finished attempt.
    pub fn count(&self, result: &'static str) {
        self.jobs.get_or_create(&ResultLabel { result }).inc();
    }

    /// Records that the main loop turned.
    pub fn beat(&self) {
        self.beat_ms.store(self.born.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// True while the main loop turned within [`STUCK_AFTER`].
    pub fn alive(&self) -> bool {
        let last = Duration::from_millis(self.beat_ms.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last) < STUCK_AFTER
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn answer(m: &Metrics, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let reply = |code: StatusCode, ctype: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = code;
        if let Ok(v) = ctype.parse() {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            m.encode(),
        ),
        (&Method::GET, "/healthz") if m.alive() => {
            reply(StatusCode::OK, "text/plain", "ok\n".into())
        }
        (&Method::GET, "/healthz") => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            format!("stuck: the main loop has not turned for {} s\n", STUCK_AFTER.as_secs()),
        ),
        (&Method::GET, _) => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
        _ => reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n".into()),
    }
}

/// Binds `addr` and serves until the runtime ends. Binding happens now, so a port in use is an
/// error at start.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("metrics: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let m = metrics.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let r = answer(&m, &req);
                    async move { Ok::<_, std::convert::Infallible>(r) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = conn.await {
                    tracing::debug!("metrics: connection: {e}");
                }
            });
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric() {
        let m = Metrics::new();
        m.count("success");
        m.count("failed");
        m.job_duration.observe(3.0);
        m.stage_duration.get_or_create(&StageLabel { stage: "convert".into() }).observe(2.0);
        m.converted_bytes.inc_by(1024);
        let text = m.encode();
        for want in [
            "hyper2kvm_jobs_total{result=\"success\"} 1",
            "hyper2kvm_jobs_total{result=\"failed\"} 1",
            "hyper2kvm_jobs_running 0",
            "hyper2kvm_queue_depth 0",
            "hyper2kvm_job_duration_seconds_count 1",
            "hyper2kvm_stage_duration_seconds_count{stage=\"convert\"} 1",
            "hyper2kvm_converted_bytes_total 1024",
        ] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
    }

    #[test]
    fn health_turns_503_when_the_loop_stops_turning() {
        let mut m = Metrics::new();
        m.beat();
        assert!(m.alive());
        m.born -= STUCK_AFTER + Duration::from_secs(1);
        assert!(!m.alive(), "a beat older than STUCK_AFTER is a stuck loop");
        m.beat();
        assert!(m.alive());
    }
}
