//! Telling people a job finished: a JSON POST to `WEBHOOK_URL` (https:// checked against the
//! system's CA store, or http://) and a plain-text mail to `NOTIFY_EMAIL` through SMTP
//! (STARTTLS when the server offers it). Each delivery is a task of its own with a timeout per
//! try and `WEBHOOK_RETRIES` more tries (1 s, 2 s, 4 s … apart) when it fails in a way that may
//! pass; the queue never waits for one. A delivery that gives up is logged with the job id.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use tokio::task::JoinSet;

use super::config::{Config, Mail};

/// What is delivered about one finished job.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The job id.
    pub job_id: String,
    /// The webhook's JSON body.
    pub event: Value,
    /// The mail's subject.
    pub subject: String,
    /// The mail's text.
    pub text: String,
}

/// Sends deliveries in the background.
#[derive(Debug)]
pub struct Deliveries {
    http: reqwest::Client,
    tasks: JoinSet<()>,
}

/// Why one try failed, and whether another may succeed.
struct TryError {
    message: String,
    retry: bool,
}

impl Deliveries {
    /// A client with a per-request timeout and no redirects (a webhook answers, it does not
    /// send us elsewhere).
    /// Fails when the TLS client cannot be built (then the daemon does not start, rather than
    /// panicking later in a default client).
    pub fn new(timeout: Duration) -> Result<Deliveries, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hyper2kvm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the webhook client: {}", error_chain(&e)))?;
        Ok(Deliveries { http, tasks: JoinSet::new() })
    }

    /// Starts the deliveries `cfg` asks for about `job`.
    pub fn job_finished(&mut self, cfg: &Config, job: Finished) {
        while self.tasks.try_join_next().is_some() {}
        let retries = cfg.webhook_retries;
        if let Some(url) = cfg.webhook_url.clone() {
            let (http, body, id) = (self.http.clone(), job.event.to_string(), job.job_id.clone());
            self.tasks.spawn(async move {
                let what = format!("webhook {url}");
                with_retries(&id, &what, retries, || post(&http, &url, body.clone())).await;
            });
        }
        if let Some(mail) = cfg.mail.clone() {
            let timeout = cfg.webhook_timeout;
            self.tasks.spawn(async move {
                let what = format!("mail to {}", mail.to.join(", "));
                let id = job.job_id.clone();
                with_retries(&id, &what, retries, || send_mail(&mail, &job, timeout)).await;
            });
        }
    }

    /// Waits up to `limit` for deliveries still under way (at stop).
    pub async fn drain(&mut self, limit: Duration) {
        if self.tasks.is_empty() {
            return;
        }
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!("stopping with {} notification(s) undelivered", self.tasks.len());
        }
    }
}

async fn with_retries<F, Fut>(job_id: &str, what: &str, retries: u32, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), TryError>>,
{
    for n in 0..=retries {
        match attempt().await {
            Ok(()) => {
                tracing::info!("[{job_id}] {what}: delivered");
                return;
            }
            Err(e) if e.retry && n < retries => {
                let wait = Duration::from_secs(1 << n.min(6));
                tracing::warn!(
                    "[{job_id}] {what}: {} (try {} of {}); trying again in {} s",
                    e.message,
                    n + 1,
                    retries + 1,
                    wait.as_secs()
                );
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                tracing::error!("[{job_id}] {what}: not delivered: {}", e.message);
                return;
            }
        }
    }
}

async fn post(http: &reqwest::Client, url: &str, body: String) -> Result<(), TryError> {
    let r = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| TryError { message: error_chain(&e), retry: true })?;
    let code = r.status();
    if code.is_success() {
        return Ok(());
    }
    // 408, 429 and 5xx may pass; any other answer will not.
    let retry = code.is_server_error() || code.as_u16() == 408 || code.as_u16() == 429;
    Err(TryError { message: format!("answered {code}"), retry })
}

/// An error with its causes (reqwest's top line alone says only "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

async fn send_mail(mail: &Mail, job: &Finished, timeout: Duration) -> Result<(), TryError> {
    let permanent = |message: String| TryError { message, retry: false };
    let from: Mailbox = mail.from.parse().map_err(|e| permanent(format!("SMTP_FROM: {e}")))?;
    let mut b = Message::builder().from(from).subject(job.subject.clone());
    for to in &mail.to {
        b = b.to(to.parse().map_err(|e| permanent(format!("NOTIFY_EMAIL {to}: {e}")))?);
    }
    let message = b.body(job.text.clone()).map_err(|e| permanent(e.to_string()))?;
    let tls = TlsParameters::new(mail.host.clone()).map_err(|e| permanent(e.to_string()))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(mail.host.as_str())
        .port(mail.port)
        .tls(Tls::Opportunistic(tls))
        .timeout(Some(timeout))
        .build();
    match transport.send(message).await {
        Ok(_) => Ok(()),
        Err(e) => Err(TryError { retry: !e.is_permanent(), message: error_chain(&e) }),
    }
}
