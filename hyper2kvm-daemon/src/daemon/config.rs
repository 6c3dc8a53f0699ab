//! The daemon's settings (contract section 3): the shell-style config file, the environment
//! and the command line, with the precedence flags > environment > config file > defaults.
//! Every value is checked at start (and on reload); an unknown key or a malformed value is an
//! error naming where it came from (`/etc/hyper2kvm/hyper2kvm.conf:12: COMPRESS_LEVEL: …`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper2kvm::TargetFormat;
use hyper2kvm::kubevirt::KubeVirtOptions;
use hyper2kvm::pipeline::ConvertDefaults;
use tracing::level_filters::LevelFilter;

/// The contract's keys with their defaults, then ours (documented in docs/daemon.md).
const KEYS: &[(&str, &str)] = &[
    ("WATCH_DIR", "/var/lib/hyper2kvm/queue"),
    ("OUTPUT_DIR", "/var/lib/hyper2kvm/output"),
    ("LOG_LEVEL", "info"),
    ("POLL_INTERVAL", "5"),
    ("MAX_CONCURRENT", "2"),
    ("QEMU_CONVERT_OPTIONS", "-O qcow2 -c -p"),
    ("COMPRESS_LEVEL", "6"),
    ("CLEANUP_SOURCE", "false"),
    ("LIBVIRT_INTEGRATION", "false"),
    ("LIBVIRT_URI", "qemu:///system"),
    ("LIBVIRT_BRIDGE", "virbr0"),
    ("LIBVIRT_POOL", "default"),
    ("LIBVIRT_AUTOSTART", "false"),
    ("CONVERSION_TIMEOUT", "60"),
    ("TEMP_DIR", "/var/cache/hyper2kvm"),
    ("VERBOSE_PROGRESS", "false"),
    ("NOTIFY_EMAIL", ""),
    ("WEBHOOK_URL", ""),
    ("RETENTION_DAYS", "7"),
    ("FAILED_RETENTION_DAYS", "3"),
    // Ours.
    ("ALLOWED_INPUT_DIRS", ""),
    ("RETRY_LIMIT", "2"),
    ("RETRY_BACKOFF", "30"),
    ("SETTLE_SECONDS", "10"),
    ("VIRTIO_WIN", ""),
    ("ALLOW_NO_VIRTIO", "false"),
    ("WORKFLOW_DIR", ""),
    ("METRICS_LISTEN", ""),
    ("WEBHOOK_RETRIES", "3"),
    ("WEBHOOK_TIMEOUT", "10"),
    ("SMTP_HOST", "localhost"),
    ("SMTP_PORT", "25"),
    ("SMTP_FROM", ""),
    ("OUTPUT_TARGET", "libvirt"),
    ("KUBEVIRT_NAMESPACE", ""),
    ("KUBEVIRT_DATAVOLUME_SOURCE", "upload"),
];

/// A setting that cannot be used, named with where it came from. The value checkers below
/// return a bare problem (`"0 is out of range (1-86400)"`); [`Config::load`] places it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `--instance` is not a plain name.
    #[error("--instance: {0:?} may only hold A-Z, a-z, 0-9, ., _ and -")]
    Instance(String),
    /// The config file exists but cannot be read.
    #[error("{}: cannot read the config file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of the config file is not `KEY=VALUE` with a known key and a well-quoted value.
    #[error("{}:{line}: {problem}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line number (from 1).
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// A value is malformed or out of range.
    #[error("{origin}: {key}: {problem}")]
    Value {
        /// Where it came from: `FILE:LINE`, `environment`, `--flag` or `default`.
        origin: String,
        /// The key.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

/// Where a value came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Default,
    File(PathBuf, usize),
    Env,
    Flag(&'static str),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => write!(f, "default"),
            Origin::File(p, line) => write!(f, "{}:{line}", p.display()),
            Origin::Env => write!(f, "environment"),
            Origin::Flag(name) => write!(f, "--{name}"),
        }
    }
}

/// What the command line gives.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--watch-dir`.
    pub watch_dir: Option<PathBuf>,
    /// `--output-dir`.
    pub output_dir: Option<PathBuf>,
    /// `--log-level`.
    pub log_level: Option<String>,
    /// `--instance`.
    pub instance: Option<String>,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--workflow-dir`.
    pub workflow_dir: Option<PathBuf>,
    /// `--metrics-listen`.
    pub metrics_listen: Option<String>,
}

/// `LIBVIRT_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Libvirt {
    /// Define the converted domain.
    pub integration: bool,
    /// Connection.
    pub uri: String,
    /// Bridge for the NICs (empty: libvirt's `default` network).
    pub bridge: String,
    /// Storage pool refreshed after a define.
    pub pool: String,
    /// Autostart the defined domain.
    pub autostart: bool,
}

/// How finished jobs are mailed (`NOTIFY_EMAIL`, `SMTP_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Recipients (`NOTIFY_EMAIL`, comma-separated).
    pub to: Vec<String>,
    /// `SMTP_HOST`.
    pub host: String,
    /// `SMTP_PORT`.
    pub port: u16,
    /// `SMTP_FROM` (default `hyper2kvm@HOSTNAME`).
    pub from: String,
}

/// Every setting, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `hyper2kvm@NAME`.
    pub instance: Option<String>,
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
    /// Where the status file goes.
    pub state_dir: PathBuf,
    /// Where manifests arrive.
    pub watch_dir: PathBuf,
    /// Where results go.
    pub output_dir: PathBuf,
    /// `LOG_LEVEL`.
    pub log_level: LevelFilter,
    /// Between full scans of the queue.
    pub poll_interval: Duration,
    /// Jobs at once.
    pub max_concurrent: usize,
    /// From `QEMU_CONVERT_OPTIONS` and `COMPRESS_LEVEL`.
    pub convert: ConvertDefaults,
    /// Delete a job's source disks after a verified success.
    pub cleanup_source: bool,
    /// `LIBVIRT_*`.
    pub libvirt: Libvirt,
    /// Per job.
    pub conversion_timeout: Duration,
    /// Work space (`TMPDIR` of the tools).
    pub temp_dir: PathBuf,
    /// Log progress lines.
    pub verbose_progress: bool,
    /// Where a plain-text mail per finished job goes (off when `NOTIFY_EMAIL` is empty).
    pub mail: Option<Mail>,
    /// `https://` or `http://` URL that gets a JSON POST per finished job.
    pub webhook_url: Option<String>,
    /// Deliveries tried again after the first fails (`WEBHOOK_RETRIES`, also for mail).
    pub webhook_retries: u32,
    /// Per delivery attempt (`WEBHOOK_TIMEOUT` seconds).
    pub webhook_timeout: Duration,
    /// `METRICS_LISTEN`: where `/metrics` and `/healthz` are served (off when empty).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// How long finished job records are kept.
    pub retention: Duration,
    /// How long failed job records are kept.
    pub failed_retention: Duration,
    /// When not empty, disks must lie inside one of these.
    pub allowed_input_dirs: Vec<PathBuf>,
    /// Retries of a transient failure.
    pub retry_limit: u32,
    /// First retry delay (doubles each time).
    pub retry_backoff: Duration,
    /// How long an unparseable or YAML manifest must stay unchanged to count as complete.
    pub settle: Duration,
    /// The virtio-win ISO or tree for Windows guests (empty: the defaults).
    pub virtio_win: Option<PathBuf>,
    /// Convert Windows guests without virtio drivers (SATA, e1000) instead of failing them.
    pub allow_no_virtio: bool,
    /// The workflow-directory protocol's root (contract §3b; off when unset).
    pub workflow_dir: Option<PathBuf>,
}

/// Strips one level of shell quoting from a config value.
fn unquote(v: &str) -> Result<String, String> {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(rest) = v.strip_prefix(q) {
            return rest
                .strip_suffix(q)
                .map(str::to_string)
                .ok_or_else(|| format!("unterminated {q} quote"));
        }
    }
    if v.contains(char::is_whitespace) {
        return Err("a value with spaces must be quoted".into());
    }
    Ok(v.to_string())
}

/// Parses `KEY=VALUE` lines (`#` comments, blank lines, optional `export `, quotes).
fn parse_file(path: &Path, text: &str) -> Result<Vec<(String, String, usize)>, ConfigError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let at =
            |problem: String| ConfigError::Syntax { path: path.to_path_buf(), line: n, problem };
        let Some((k, v)) = line.split_once('=') else {
            return Err(at(format!("{line:?} is not KEY=VALUE")));
        };
        let k = k.trim();
        if !KEYS.iter().any(|(key, _)| *key == k) {
            return Err(at(format!("{k}: unknown key")));
        }
        out.push((k.to_string(), unquote(v).map_err(|e| at(format!("{k}: {e}")))?, n));
    }
    Ok(out)
}

fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" | "" => Ok(false),
        _ => Err(format!("{v:?} is not true or false")),
    }
}

fn number(v: &str, lo: u64, hi: u64) -> Result<u64, String> {
    let n: u64 = v.parse().map_err(|_| format!("{v:?} is not a whole number"))?;
    if n < lo || n > hi {
        return Err(format!("{n} is out of range ({lo}-{hi})"));
    }
    Ok(n)
}

fn level(v: &str) -> Result<LevelFilter, String> {
    match v.to_ascii_lowercase().as_str() {
        "error" => Ok(LevelFilter::ERROR),
        "warn" | "warning" => Ok(LevelFilter::WARN),
        "info" => Ok(LevelFilter::INFO),
        "debug" => Ok(LevelFilter::DEBUG),
        "trace" => Ok(LevelFilter::TRACE),
        _ => Err(format!("{v:?} is not one of error, warn, info, debug, trace")),
    }
}

/// `QEMU_CONVERT_OPTIONS`: `-O qcow2|raw`, `-c`, `-p`, `-W`, `-m N`; anything else (an output
/// name, `-o`, `-B`, `-n`, `--target-image-opts`, …) could redirect or reshape the output and
/// is refused.
fn qemu_options(v: &str, level: u8) -> Result<ConvertDefaults, String> {
    let mut d = ConvertDefaults { compress: false, compress_level: level, ..Default::default() };
    let words: Vec<&str> = v.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        match words[i] {
            "-O" => {
                i += 1;
                d.format = match words.get(i) {
                    Some(&"qcow2") => TargetFormat::Qcow2,
                    Some(&"raw") => TargetFormat::Raw,
                    other => return Err(format!("-O {other:?}: the output is qcow2 or raw")),
                };
            }
            "-c" => d.compress = true,
            "-p" | "-W" => {}
            "-m" => {
                i += 1;
                let n = words.get(i).ok_or("-m needs a number")?;
                d.coroutines = number(n, 1, 16).map_err(|e| format!("-m: {e}"))? as u8;
            }
            w => {
                return Err(format!(
                    "{w:?} is not allowed (accepted: -O qcow2|raw, -c, -p, -W, -m N; nothing \
                     may name or redirect the output)"
                ));
            }
        }
        i += 1;
    }
    Ok(d)
}

/// `WEBHOOK_URL`: an `https://` (checked against the system's CA store) or `http://` URL.
/// `OUTPUT_TARGET` with `KUBEVIRT_NAMESPACE` and `KUBEVIRT_DATAVOLUME_SOURCE`: the KubeVirt
/// target's options, or `None` for libvirt only.
fn kubevirt_target(v: &Values<'_>) -> Result<Option<KubeVirtOptions>, ConfigError> {
    match v.get("OUTPUT_TARGET") {
        "libvirt" => return Ok(None),
        "kubevirt" => {}
        other => {
            return Err(v.error("OUTPUT_TARGET", format!("{other:?} is not libvirt or kubevirt")));
        }
    }
    let namespace = Some(v.get("KUBEVIRT_NAMESPACE").to_string()).filter(|s| !s.is_empty());
    if let Some(Err(e)) = namespace.as_deref().map(hyper2kvm::kubevirt::check_namespace) {
        return Err(v.error("KUBEVIRT_NAMESPACE", e.message().to_string()));
    }
    let source = v.get("KUBEVIRT_DATAVOLUME_SOURCE").parse().map_err(|e: hyper2kvm::Error| {
        v.error("KUBEVIRT_DATAVOLUME_SOURCE", e.message().to_string())
    })?;
    Ok(Some(KubeVirtOptions { namespace, source }))
}

fn webhook(u: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(u).map_err(|e| format!("{u:?} is not a URL: {e}"))?;
    match url.scheme() {
        "https" | "http" if url.host().is_some() => Ok(()),
        "https" | "http" => Err(format!("{u:?} names no host")),
        s => Err(format!("{u:?}: the scheme is {s}; webhooks are https:// or http://")),
    }
}

/// A comma-separated list of mail addresses (`ops@example.com, Jo <jo@example.com>`).
fn addresses(list: &str) -> Result<Vec<String>, String> {
    let out: Vec<String> =
        list.split(',').map(str::trim).filter(|a| !a.is_empty()).map(String::from).collect();
    for a in &out {
        a.parse::<lettre::message::Mailbox>()
            .map_err(|e| format!("{a:?} is not a mail address: {e}"))?;
    }
    if out.is_empty() {
        return Err("names no address".into());
    }
    Ok(out)
}

/// This machine's name, for the default sender.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The settings as text, each with where it came from.
struct Values<'a>(BTreeMap<&'a str, (String, Origin)>);

impl Values<'_> {
    fn get(&self, k: &str) -> &str {
        self.0.get(k).map(|(v, _)| v.as_str()).unwrap_or("")
    }

    fn origin(&self, k: &str) -> &Origin {
        self.0.get(k).map(|(_, o)| o).unwrap_or(&Origin::Default)
    }

    /// `r`, its problem placed at the key and where its value came from.
    fn check<T>(&self, k: &str, r: Result<T, String>) -> Result<T, ConfigError> {
        r.map_err(|problem| self.error(k, problem))
    }

    /// A problem with the value of `k`.
    fn error(&self, k: &str, problem: String) -> ConfigError {
        ConfigError::Value { origin: self.origin(k).to_string(), key: k.to_string(), problem }
    }
}

impl Config {
    /// The config file for `instance` when `--config` is not given.
    pub fn default_file(instance: Option<&str>) -> PathBuf {
        match instance {
            Some(n) => PathBuf::from(format!("/etc/hyper2kvm/hyper2kvm-{n}.conf")),
            None => PathBuf::from("/etc/hyper2kvm/hyper2kvm.conf"),
        }
    }

    /// The state directory when `--state-dir` is not given: systemd's `STATE_DIRECTORY` (the
    /// units set `StateDirectory=hyper2kvm` and `hyper2kvm/%i`), else `/var/lib/hyper2kvm`
    /// (`/var/lib/hyper2kvm/NAME` for an instance).
    pub fn default_state_dir(
        instance: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> PathBuf {
        if let Some(dir) =
            env("STATE_DIRECTORY").and_then(|s| s.split(':').next().map(PathBuf::from))
        {
            return dir;
        }
        match instance {
            Some(n) => PathBuf::from("/var/lib/hyper2kvm").join(n),
            None => PathBuf::from("/var/lib/hyper2kvm"),
        }
    }

    /// Reads and checks every setting. `env` looks up environment variables.
    pub fn load(
        flags: &Flags,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        if let Some(n) = &flags.instance
            && (n.is_empty()
                || !n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                || n.starts_with('.'))
        {
            return Err(ConfigError::Instance(n.clone()));
        }
        let instance = flags.instance.as_deref();
        let mut values: BTreeMap<&str, (String, Origin)> =
            KEYS.iter().map(|(k, d)| (*k, (d.to_string(), Origin::Default))).collect();
        if instance.is_some() {
            let n = instance.unwrap_or_default();
            values.insert("WATCH_DIR", (format!("/var/lib/hyper2kvm/{n}/queue"), Origin::Default));
            values
                .insert("OUTPUT_DIR", (format!("/var/lib/hyper2kvm/{n}/output"), Origin::Default));
        }
        let file = flags.config.clone().unwrap_or_else(|| Self::default_file(instance));
        let config_file = match std::fs::read_to_string(&file) {
            Ok(text) => {
                for (k, v, n) in parse_file(&file, &text)? {
                    let key = KEYS.iter().find(|(x, _)| *x == k).map(|(x, _)| *x).unwrap_or("");
                    values.insert(key, (v, Origin::File(file.clone(), n)));
                }
                Some(file)
            }
            Err(e) if flags.config.is_some() || e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ConfigError::Read { path: file, source: e });
            }
            Err(_) => None,
        };
        for (k, _) in KEYS {
            if let Some(v) = env(k) {
                values.insert(k, (v, Origin::Env));
            }
        }
        let flag_values = [
            ("WATCH_DIR", "watch-dir", flags.watch_dir.as_ref().map(|p| p.display().to_string())),
            (
                "OUTPUT_DIR",
                "output-dir",
                flags.output_dir.as_ref().map(|p| p.display().to_string()),
            ),
            ("LOG_LEVEL", "log-level", flags.log_level.clone()),
            (
                "WORKFLOW_DIR",
                "workflow-dir",
                flags.workflow_dir.as_ref().map(|p| p.display().to_string()),
            ),
            ("METRICS_LISTEN", "metrics-listen", flags.metrics_listen.clone()),
        ];
        for (k, name, v) in flag_values {
            if let Some(v) = v {
                values.insert(k, (v, Origin::Flag(name)));
            }
        }
        let v = Values(values);
        let get = |k: &str| v.get(k);
        let dir = |k: &str| -> Result<PathBuf, ConfigError> {
            if get(k).is_empty() {
                return Err(v.error(k, "is empty".into()));
            }
            Ok(PathBuf::from(get(k)))
        };
        let num = |k: &str, lo: u64, hi: u64| v.check(k, number(get(k), lo, hi));
        let flag = |k: &str| v.check(k, boolean(get(k)));
        let opt = |k: &str| Some(get(k).to_string()).filter(|s| !s.is_empty());
        let compress_level = num("COMPRESS_LEVEL", 1, 9)? as u8;
        let max_concurrent = match num("MAX_CONCURRENT", 0, 256)? {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n as usize,
        };
        let webhook_url = opt("WEBHOOK_URL");
        if let Some(u) = &webhook_url {
            v.check("WEBHOOK_URL", webhook(u))?;
        }
        let metrics_listen = match opt("METRICS_LISTEN") {
            None => None,
            Some(a) => Some(
                v.check(
                    "METRICS_LISTEN",
                    a.parse::<std::net::SocketAddr>()
                        .map_err(|_| format!("{a:?} is not an address and port (127.0.0.1:9187)")),
                )?,
            ),
        };
        let mail = match opt("NOTIFY_EMAIL") {
            None => None,
            Some(list) => Some(Mail {
                to: v.check("NOTIFY_EMAIL", addresses(&list))?,
                host: get("SMTP_HOST").to_string(),
                port: num("SMTP_PORT", 1, 65535)? as u16,
                from: match opt("SMTP_FROM") {
                    Some(f) => v.check("SMTP_FROM", addresses(&f))?.remove(0),
                    None => format!("hyper2kvm@{}", hostname()),
                },
            }),
        };
        let allowed_input_dirs = get("ALLOWED_INPUT_DIRS")
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect::<Vec<_>>();
        if let Some(p) = allowed_input_dirs.iter().find(|p| !p.is_absolute()) {
            return Err(
                v.error("ALLOWED_INPUT_DIRS", format!("{} is not an absolute path", p.display()))
            );
        }
        let days = |k: &str| num(k, 0, 36500).map(|d| Duration::from_secs(d * 86400));
        Ok(Config {
            instance: flags.instance.clone(),
            config_file,
            state_dir: flags
                .state_dir
                .clone()
                .unwrap_or_else(|| Self::default_state_dir(instance, env)),
            watch_dir: dir("WATCH_DIR")?,
            output_dir: dir("OUTPUT_DIR")?,
            log_level: v.check("LOG_LEVEL", level(get("LOG_LEVEL")))?,
            poll_interval: Duration::from_secs(num("POLL_INTERVAL", 1, 86400)?),
            max_concurrent,
            convert: ConvertDefaults {
                kubevirt: kubevirt_target(&v)?,
                ..v.check(
                    "QEMU_CONVERT_OPTIONS",
                    qemu_options(get("QEMU_CONVERT_OPTIONS"), compress_level),
                )?
            },
            cleanup_source: flag("CLEANUP_SOURCE")?,
            libvirt: Libvirt {
                integration: flag("LIBVIRT_INTEGRATION")?,
                uri: get("LIBVIRT_URI").to_string(),
                bridge: get("LIBVIRT_BRIDGE").to_string(),
                pool: get("LIBVIRT_POOL").to_string(),
                autostart: flag("LIBVIRT_AUTOSTART")?,
            },
            conversion_timeout: Duration::from_secs(num("CONVERSION_TIMEOUT", 1, 100_000)? * 60),
            temp_dir: dir("TEMP_DIR")?,
            verbose_progress: flag("VERBOSE_PROGRESS")?,
            mail,
            webhook_url,
            webhook_retries: num("WEBHOOK_RETRIES", 0, 20)? as u32,
            webhook_timeout: Duration::from_secs(num("WEBHOOK_TIMEOUT", 1, 600)?),
            metrics_listen,
            retention: days("RETENTION_DAYS")?,
            failed_retention: days("FAILED_RETENTION_DAYS")?,
            allowed_input_dirs,
            retry_limit: num("RETRY_LIMIT", 0, 100)? as u32,
            retry_backoff: Duration::from_secs(num("RETRY_BACKOFF", 0, 86400)?),
            settle: Duration::from_secs(num("SETTLE_SECONDS", 1, 3600)?),
            virtio_win: opt("VIRTIO_WIN").map(PathBuf::from),
            allow_no_virtio: flag("ALLOW_NO_VIRTIO")?,
            workflow_dir: opt("WORKFLOW_DIR").map(PathBuf::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(x, _)| *x == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn precedence_is_flags_then_environment_then_file_then_defaults() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("h.conf");
        std::fs::write(
            &f,
            "# comment\nWATCH_DIR=/file/queue\nOUTPUT_DIR=\"/file/out\"\nexport MAX_CONCURRENT=3\nLOG_LEVEL=debug\nCOMPRESS_LEVEL='2'\n",
        )
        .unwrap();
        let flags = Flags {
            config: Some(f.clone()),
            output_dir: Some("/flag/out".into()),
            ..Flags::default()
        };
        let c = Config::load(&flags, &env_of(&[("LOG_LEVEL", "warn"), ("WATCH_DIR", "/env/q")]))
            .unwrap();
        assert_eq!(c.output_dir, Path::new("/flag/out"), "flag over file");
        assert_eq!(c.watch_dir, Path::new("/env/q"), "environment over file");
        assert_eq!(c.log_level, LevelFilter::WARN, "environment over file");
        assert_eq!(c.max_concurrent, 3, "file over default");
        assert_eq!(c.poll_interval, Duration::from_secs(5), "default");
        assert_eq!(c.convert.compress_level, 2);
        assert!(c.convert.compress, "-c in the default QEMU_CONVERT_OPTIONS");
        assert_eq!(c.conversion_timeout, Duration::from_secs(3600));
        assert_eq!(c.config_file.as_deref(), Some(f.as_path()));
    }

    #[test]
    fn instances_get_their_own_directories_and_file() {
        let flags = Flags {
            instance: Some("vsphere".into()),
            config: None,
            state_dir: None,
            ..Flags::default()
        };
        assert_eq!(
            Config::default_file(flags.instance.as_deref()),
            Path::new("/etc/hyper2kvm/hyper2kvm-vsphere.conf")
        );
        let c = Config::load(&flags, &env_of(&[])).unwrap();
        assert_eq!(c.watch_dir, Path::new("/var/lib/hyper2kvm/vsphere/queue"));
        assert_eq!(c.output_dir, Path::new("/var/lib/hyper2kvm/vsphere/output"));
        assert_eq!(c.state_dir, Path::new("/var/lib/hyper2kvm/vsphere"));
        let bad = Flags { instance: Some("../x".into()), ..Flags::default() };
        assert!(Config::load(&bad, &env_of(&[])).unwrap_err().to_string().contains("--instance"));
    }

    #[test]
    fn bad_keys_and_values_name_where_they_came_from() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("h.conf");
        let flags = Flags { config: Some(f.clone()), ..Flags::default() };
        let cases = [
            ("WATCHDIR=/x\n", ":1: WATCHDIR: unknown key"),
            ("\n\nCOMPRESS_LEVEL=12\n", ":3: COMPRESS_LEVEL: 12 is out of range (1-9)"),
            ("MAX_CONCURRENT=two\n", "MAX_CONCURRENT: \"two\" is not a whole number"),
            ("CLEANUP_SOURCE=maybe\n", "CLEANUP_SOURCE: \"maybe\" is not true or false"),
            ("LOG_LEVEL=loud\n", "LOG_LEVEL: \"loud\" is not one of"),
            (
                "QEMU_CONVERT_OPTIONS=\"-O qcow2 /tmp/elsewhere.qcow2\"\n",
                "\"/tmp/elsewhere.qcow2\" is not allowed",
            ),
            ("QEMU_CONVERT_OPTIONS=\"-O vmdk\"\n", "the output is qcow2 or raw"),
            ("QEMU_CONVERT_OPTIONS=\"-o backing_file=/etc/x\"\n", "\"-o\" is not allowed"),
            ("WEBHOOK_URL=ftp://x/\n", "webhooks are https:// or http://"),
            ("METRICS_LISTEN=9187\n", "is not an address and port"),
            ("NOTIFY_EMAIL=not-an-address\n", "is not a mail address"),
            ("OUTPUT_DIR=/a b\n", "must be quoted"),
            ("just words\n", "is not KEY=VALUE"),
            ("ALLOWED_INPUT_DIRS=rel/dir\n", "is not an absolute path"),
            (
                "OUTPUT_TARGET=kubevirt\nKUBEVIRT_NAMESPACE=Vms\n",
                ":2: KUBEVIRT_NAMESPACE: \"Vms\" is not a Kubernetes namespace (a DNS label)",
            ),
        ];
        for (text, want) in cases {
            std::fs::write(&f, text).unwrap();
            let e = Config::load(&flags, &env_of(&[])).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("h.conf"), "{text:?}: {e}");
        }
        std::fs::write(&f, "").unwrap();
        let e = Config::load(&flags, &env_of(&[("POLL_INTERVAL", "0")])).unwrap_err();
        assert!(matches!(&e, ConfigError::Value { key, .. } if key == "POLL_INTERVAL"), "{e:?}");
        assert_eq!(e.to_string(), "environment: POLL_INTERVAL: 0 is out of range (1-86400)");
        let flags = Flags { log_level: Some("nope".into()), ..flags };
        let e = Config::load(&flags, &env_of(&[])).unwrap_err().to_string();
        assert!(e.starts_with("--log-level: LOG_LEVEL:"), "{e}");
        let missing = Flags { config: Some(t.path().join("none.conf")), ..Flags::default() };
        assert!(
            Config::load(&missing, &env_of(&[])).unwrap_err().to_string().contains("none.conf")
        );
    }

    #[test]
    fn the_packaged_examples_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/config");
        for name in [
            "hyper2kvm.conf.example",
            "hyper2kvm-vsphere.conf.example",
            "hyper2kvm-aws.conf.example",
        ] {
            let flags = Flags { config: Some(dir.join(name)), ..Flags::default() };
            let c = Config::load(&flags, &env_of(&[])).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(c.config_file.is_some(), "{name}");
        }
        // The ConfigMap of packaging/kubernetes: the KubeVirt target, metrics for the probes.
        let k8s = dir.join("../kubernetes/hyper2kvm.conf");
        let flags = Flags { config: Some(k8s), ..Flags::default() };
        let c = Config::load(&flags, &env_of(&[])).unwrap_or_else(|e| panic!("kubernetes: {e}"));
        assert!(c.convert.kubevirt.is_some(), "the ConfigMap does not target KubeVirt");
        assert!(c.metrics_listen.is_some(), "the ConfigMap has no METRICS_LISTEN for /healthz");
    }
}
