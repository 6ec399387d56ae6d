//! Server configuration: defaults, then a TOML file (`--config` / `NEXUM_CONFIG`), then
//! `NEXUM_*` environment variables; validated at start with errors that name the setting.
//!
//! The master key is deliberately not a setting here: it is read from `NEXUM_MASTER_KEY` or
//! the key file by the vault alone, so it never lands in a config dump or a log.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Validated server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the embedded database, key file and compiled-artifact cache live.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `sqlite:…` or `postgres://…`; defaults to SQLite in `data_dir`.
    pub database_url: String,
    /// Key file when `NEXUM_MASTER_KEY` is not set.
    pub master_key_file: PathBuf,
    /// Non-public address ranges connectors may reach.
    pub allow_ranges: Vec<IpNet>,
    /// Seconds between health checks of a connection (0 disables them).
    pub health_check_interval_secs: u64,
    /// Requests per minute for new API keys unless given.
    pub default_key_rate_limit_per_minute: u32,
    /// Largest JSON request body.
    pub max_body_bytes: usize,
    /// Largest connector upload.
    pub max_upload_bytes: usize,
    /// Connector calls that may run at once.
    pub max_concurrent_calls: u32,
    /// Largest memory cap a connector may have (MiB).
    pub max_memory_mb: u32,
    /// Database pool size.
    pub db_max_connections: u32,
    /// `text` or `json` logs.
    pub log_format: LogFormat,
    /// How long a resolved connection (decrypted credentials, compiled connector) is reused
    /// before re-reading it; bounds staleness across nodes.
    pub cache_ttl_ms: u64,
    /// Publisher public keys (minisign base64) whose bundles this host installs, besides the
    /// first-party key.
    pub trusted_publisher_keys: Vec<String>,
    /// Install unsigned connectors (development only).
    pub allow_unsigned_connectors: bool,
    /// PEM certificates (read from the file `NEXUM_MAIL_ROOT_CERTS` names) that SMTP servers'
    /// TLS certificates may chain to besides the system's roots: a private relay's CA.
    pub mail_root_certs: Vec<String>,
    /// The server's public origin (e.g. `https://nexum.example.com`), used for the OAuth
    /// redirect URI `<public_url>/api/v1/oauth/callback`; defaults to `http://<listen>`.
    pub public_url: Option<String>,
    /// Where the browser goes after an OAuth flow when the flow names no `return_url`
    /// (otherwise a plain result page is shown).
    pub oauth_return_url: Option<String>,
    /// Origins (`https://app.example.com`) a flow's own `return_url` may point at; the
    /// default return URL's origin is always allowed.
    pub oauth_return_origins: Vec<String>,
    /// Seconds between sweeps that refresh OAuth2 tokens about to expire (0 disables).
    pub oauth_refresh_sweep_secs: u64,
    /// Consecutive failed refreshes after which a connection is `refresh_exhausted`.
    pub oauth_max_refresh_failures: u32,
    /// Timeout of one token endpoint request (ms).
    pub oauth_token_timeout_ms: u64,
    /// How long a claimed Idempotency-Key stays "in progress" without an answer before a
    /// retry may run the request (its first run died with its process). Longer than any
    /// request can take.
    pub idempotency_lease_secs: u64,
    /// Connector calls one workspace may run at once (its share of `max_concurrent_calls`);
    /// more answer 429 `workspace_busy`.
    pub max_calls_per_workspace: u32,
    /// OAuth token refreshes one workspace may run at once; more wait their turn.
    pub max_refreshes_per_workspace: u32,
    /// Redis holding rate-limit and quota counters shared by every node
    /// (`redis://127.0.0.1:6379`); without it each node counts for itself.
    pub redis_url: Option<String>,
    /// Requests per minute each client address may make to the endpoints that need no key
    /// (public marketplace, OAuth callback); 0 switches the limit off.
    pub public_rate_limit_per_minute: u32,
    /// Milliseconds between fan-outs of the event outbox to webhook endpoints (0: off).
    pub webhook_fanout_ms: u64,
    /// Delays before each webhook retry, in ms (default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
    /// 10 h; each jittered by ±20 %).
    pub webhook_retry_delays_ms: Vec<u64>,
    /// Milliseconds a webhook receiver has to answer (default 15 s).
    pub webhook_timeout_ms: u64,
    /// Milliseconds an endpoint may fail without one success before it is disabled
    /// (default 5 days).
    pub webhook_failure_window_ms: u64,
    /// Webhook deliveries each node runs at once (default 32).
    pub webhook_concurrency: u32,
    /// Workflow executions each node runs at once (default 64).
    pub workflow_concurrency: u32,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// A setting is missing or wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong (parse errors name the key).
        reason: String,
    },
    /// A setting has an invalid value.
    #[error("{setting}: {reason}")]
    Invalid {
        /// The setting, as the user spelled it (`NEXUM_LISTEN` or `listen`).
        setting: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    database_url: Option<String>,
    master_key_file: Option<PathBuf>,
    allow_ranges: Option<Vec<String>>,
    health_check_interval_secs: Option<u64>,
    default_key_rate_limit_per_minute: Option<u32>,
    max_body_bytes: Option<usize>,
    max_upload_bytes: Option<usize>,
    max_concurrent_calls: Option<u32>,
    max_memory_mb: Option<u32>,
    db_max_connections: Option<u32>,
    log_format: Option<String>,
    cache_ttl_ms: Option<u64>,
    trusted_publisher_keys: Option<Vec<String>>,
    allow_unsigned_connectors: Option<bool>,
    mail_root_certs: Option<PathBuf>,
    public_url: Option<String>,
    oauth_return_url: Option<String>,
    oauth_return_origins: Option<Vec<String>>,
    oauth_refresh_sweep_secs: Option<u64>,
    oauth_max_refresh_failures: Option<u32>,
    oauth_token_timeout_ms: Option<u64>,
    idempotency_lease_secs: Option<u64>,
    max_calls_per_workspace: Option<u32>,
    max_refreshes_per_workspace: Option<u32>,
    redis_url: Option<String>,
    public_rate_limit_per_minute: Option<u32>,
    webhook_fanout_ms: Option<u64>,
    webhook_retry_delays_ms: Option<Vec<u64>>,
    webhook_timeout_ms: Option<u64>,
    webhook_failure_window_ms: Option<u64>,
    webhook_concurrency: Option<u64>,
    workflow_concurrency: Option<u64>,
}

impl Config {
    /// Load from the process environment and an optional file.
    pub fn from_env(file: Option<&Path>) -> Result<Self, ConfigError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("NEXUM_CONFIG").map(PathBuf::from));
        Self::load(file.as_deref(), |k| std::env::var(k).ok())
    }

    /// Load with an explicit environment lookup (tests).
    pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let f: FileConfig = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::File {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?
            }
            None => FileConfig::default(),
        };
        let data_dir = env("NEXUM_DATA_DIR")
            .map(PathBuf::from)
            .or(f.data_dir)
            .unwrap_or_else(|| PathBuf::from("nexum-data"));
        let listen_raw = env("NEXUM_LISTEN")
            .map(|v| ("NEXUM_LISTEN", v))
            .or(f.listen.map(|v| ("listen", v)));
        let listen = match listen_raw {
            Some((setting, v)) => v
                .parse()
                .map_err(|_| invalid(setting, format!("`{v}` is not an address like 127.0.0.1:8080")))?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let database_url = env("DATABASE_URL")
            .or_else(|| env("NEXUM_DATABASE_URL"))
            .or(f.database_url)
            .unwrap_or_else(|| format!("sqlite:{}", data_dir.join("nexum.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(invalid("DATABASE_URL", "must start with sqlite: or postgres://"));
        }
        let master_key_file = env("NEXUM_MASTER_KEY_FILE")
            .map(PathBuf::from)
            .or(f.master_key_file)
            .unwrap_or_else(|| data_dir.join("master.keys"));
        let ranges: Vec<(String, String)> = match env("NEXUM_ALLOW_RANGES") {
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| ("NEXUM_ALLOW_RANGES".into(), s.into()))
                .collect(),
            None => f
                .allow_ranges
                .unwrap_or_default()
                .into_iter()
                .map(|s| ("allow_ranges".into(), s))
                .collect(),
        };
        let allow_ranges = ranges
            .into_iter()
            .map(|(setting, r)| {
                r.parse::<IpNet>()
                    .map_err(|_| invalid(&setting, format!("`{r}` is not a CIDR range like 10.0.0.0/8")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let num = |name: &str, file_value: Option<u64>, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
            let env_name = format!("NEXUM_{}", name.to_ascii_uppercase());
            let (setting, value) = match env(&env_name) {
                Some(v) => (
                    env_name.clone(),
                    v.parse::<u64>()
                        .map_err(|_| invalid(&env_name, format!("`{v}` is not a whole number")))?,
                ),
                None => (name.to_string(), file_value.unwrap_or(default)),
            };
            if !(min..=max).contains(&value) {
                return Err(invalid(&setting, format!("{value} is outside {min}..={max}")));
            }
            Ok(value)
        };
        let log_format = match env("NEXUM_LOG_FORMAT").or(f.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid(
                    "NEXUM_LOG_FORMAT",
                    format!("`{other}` is not `text` or `json`"),
                ));
            }
        };
        let trusted_publisher_keys = env("NEXUM_TRUSTED_PUBLISHER_KEYS")
            .map(|v| comma_list(&v))
            .or(f.trusted_publisher_keys)
            .unwrap_or_default();
        // Key ids name signers (installations record them, operator OAuth apps are bound to
        // them), so two trusted keys may not share one.
        let first_party = nexum_marketplace::signing::PublicKey::parse(FIRST_PARTY_PUBLIC_KEY)
            .map(|k| k.key_id)
            .unwrap_or_default();
        let mut key_ids = std::collections::BTreeSet::from([first_party]);
        for key in &trusted_publisher_keys {
            let parsed = nexum_marketplace::signing::PublicKey::parse(key)
                .map_err(|e| invalid("NEXUM_TRUSTED_PUBLISHER_KEYS", format!("`{key}`: {e}")))?;
            if !key_ids.insert(parsed.key_id.clone()) {
                return Err(invalid(
                    "NEXUM_TRUSTED_PUBLISHER_KEYS",
                    format!("two trusted keys share the key id {}", parsed.key_id),
                ));
            }
        }
        let mail_root_certs = match env("NEXUM_MAIL_ROOT_CERTS").map(PathBuf::from).or(f.mail_root_certs) {
            Some(path) => {
                let pem = std::fs::read_to_string(&path)
                    .map_err(|e| invalid("NEXUM_MAIL_ROOT_CERTS", format!("cannot read {}: {e}", path.display())))?;
                if !pem.contains("-----BEGIN CERTIFICATE-----") {
                    return Err(invalid(
                        "NEXUM_MAIL_ROOT_CERTS",
                        format!("{} holds no PEM certificate", path.display()),
                    ));
                }
                vec![pem]
            }
            None => Vec::new(),
        };
        let allow_unsigned_connectors = match env("NEXUM_ALLOW_UNSIGNED_CONNECTORS").as_deref() {
            Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => {
                return Err(invalid(
                    "NEXUM_ALLOW_UNSIGNED_CONNECTORS",
                    format!("`{other}` is not true or false"),
                ));
            }
            None => f.allow_unsigned_connectors.unwrap_or(false),
        };
        let origin = |setting: &str, value: Option<String>| -> Result<Option<String>, ConfigError> {
            let Some(v) = value else { return Ok(None) };
            let parsed = url::Url::parse(&v).map_err(|_| invalid(setting, format!("`{v}` is not a URL")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(invalid(setting, "must be an http or https URL"));
            }
            Ok(Some(v.trim_end_matches('/').to_string()))
        };
        let public_url = origin("NEXUM_PUBLIC_URL", env("NEXUM_PUBLIC_URL").or(f.public_url))?;
        let oauth_return_url = origin(
            "NEXUM_OAUTH_RETURN_URL",
            env("NEXUM_OAUTH_RETURN_URL").or(f.oauth_return_url),
        )?;
        let origins = env("NEXUM_OAUTH_RETURN_ORIGINS")
            .map(|v| comma_list(&v))
            .or(f.oauth_return_origins)
            .unwrap_or_default();
        let mut oauth_return_origins = Vec::new();
        for o in origins {
            let parsed = url::Url::parse(&o).map_err(|_| {
                invalid(
                    "NEXUM_OAUTH_RETURN_ORIGINS",
                    format!("`{o}` is not an origin like https://app.example.com"),
                )
            })?;
            oauth_return_origins.push(parsed.origin().ascii_serialization());
        }
        if let Some(u) = &oauth_return_url
            && let Ok(parsed) = url::Url::parse(u)
        {
            oauth_return_origins.push(parsed.origin().ascii_serialization());
        }
        let redis_url = match env("NEXUM_REDIS_URL").or(f.redis_url) {
            Some(u) if u.starts_with("redis://") || u.starts_with("rediss://") => Some(u),
            Some(_) => return Err(invalid("NEXUM_REDIS_URL", "must start with redis:// or rediss://")),
            None => None,
        };
        let webhook_retry_delays_ms = match env("NEXUM_WEBHOOK_RETRY_DELAYS_MS") {
            Some(v) => comma_list(&v)
                .iter()
                .map(|d| d.parse::<u64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    invalid(
                        "NEXUM_WEBHOOK_RETRY_DELAYS_MS",
                        "a comma-separated list of milliseconds",
                    )
                })?,
            None => f.webhook_retry_delays_ms.unwrap_or_else(|| {
                crate::webhooks::schedule::DEFAULT_SCHEDULE
                    .iter()
                    .map(|d| d.as_millis() as u64)
                    .collect()
            }),
        };
        let max_concurrent_calls = num(
            "max_concurrent_calls",
            f.max_concurrent_calls.map(u64::from),
            128,
            1,
            10_000,
        )? as u32;
        Ok(Self {
            webhook_retry_delays_ms,
            webhook_fanout_ms: num("webhook_fanout_ms", f.webhook_fanout_ms, 100, 0, 60_000)?,
            webhook_timeout_ms: num("webhook_timeout_ms", f.webhook_timeout_ms, 15_000, 100, 120_000)?,
            webhook_failure_window_ms: num(
                "webhook_failure_window_ms",
                f.webhook_failure_window_ms,
                5 * 86_400_000,
                1,
                30 * 86_400_000,
            )?,
            webhook_concurrency: num("webhook_concurrency", f.webhook_concurrency, 32, 1, 1024)? as u32,
            workflow_concurrency: num("workflow_concurrency", f.workflow_concurrency, 64, 1, 1024)? as u32,
            redis_url,
            oauth_return_origins,
            public_url,
            oauth_return_url,
            oauth_refresh_sweep_secs: num("oauth_refresh_sweep_secs", f.oauth_refresh_sweep_secs, 60, 0, 86_400)?,
            oauth_max_refresh_failures: num(
                "oauth_max_refresh_failures",
                f.oauth_max_refresh_failures.map(u64::from),
                3,
                1,
                1000,
            )? as u32,
            oauth_token_timeout_ms: num("oauth_token_timeout_ms", f.oauth_token_timeout_ms, 15_000, 100, 120_000)?,
            idempotency_lease_secs: num("idempotency_lease_secs", f.idempotency_lease_secs, 300, 1, 86_400)?,
            max_calls_per_workspace: num(
                "max_calls_per_workspace",
                f.max_calls_per_workspace.map(u64::from),
                u64::from((max_concurrent_calls / 2).max(1)),
                1,
                100_000,
            )? as u32,
            public_rate_limit_per_minute: num(
                "public_rate_limit_per_minute",
                f.public_rate_limit_per_minute.map(u64::from),
                600,
                0,
                1_000_000,
            )? as u32,
            max_refreshes_per_workspace: num(
                "max_refreshes_per_workspace",
                f.max_refreshes_per_workspace.map(u64::from),
                2,
                1,
                1_000,
            )? as u32,
            trusted_publisher_keys,
            allow_unsigned_connectors,
            mail_root_certs,
            listen,
            database_url,
            master_key_file,
            allow_ranges,
            health_check_interval_secs: num(
                "health_check_interval_secs",
                f.health_check_interval_secs,
                300,
                0,
                86_400,
            )?,
            default_key_rate_limit_per_minute: num(
                "default_key_rate_limit_per_minute",
                f.default_key_rate_limit_per_minute.map(u64::from),
                600,
                1,
                10_000_000,
            )? as u32,
            max_body_bytes: num(
                "max_body_bytes",
                f.max_body_bytes.map(|v| v as u64),
                1 << 20,
                1024,
                64 << 20,
            )? as usize,
            max_upload_bytes: num(
                "max_upload_bytes",
                f.max_upload_bytes.map(|v| v as u64),
                32 << 20,
                1024,
                512 << 20,
            )? as usize,
            max_concurrent_calls,
            max_memory_mb: num("max_memory_mb", f.max_memory_mb.map(u64::from), 128, 1, 4096)? as u32,
            db_max_connections: num("db_max_connections", f.db_max_connections.map(u64::from), 8, 1, 1000)? as u32,
            cache_ttl_ms: num("cache_ttl_ms", f.cache_ttl_ms, 5_000, 0, 3_600_000)?,
            log_format,
            data_dir,
        })
    }

    /// The host's trust policy: the first-party key, the configured publisher keys, and
    /// whether unsigned bundles are accepted.
    pub fn trust_policy(&self) -> nexum_marketplace::signing::TrustPolicy {
        let mut keys = vec![];
        for text in
            std::iter::once(FIRST_PARTY_PUBLIC_KEY).chain(self.trusted_publisher_keys.iter().map(String::as_str))
        {
            if let Ok(k) = nexum_marketplace::signing::PublicKey::parse(text) {
                keys.push(k);
            }
        }
        nexum_marketplace::signing::TrustPolicy {
            keys,
            allow_unsigned: self.allow_unsigned_connectors,
            pinned: Default::default(),
        }
    }

    /// Where precompiled components are cached.
    pub fn artifact_dir(&self) -> PathBuf {
        self.data_dir.join("artifacts")
    }
}

/// The first-party publisher key (minisign), trusted by every host. Its secret half is held
/// by the release process, never in this repository.
pub const FIRST_PARTY_PUBLIC_KEY: &str = "RWT2NAAVD3ptckzND8wnz/dk0QBNAgZ8CexuS4zWK/wDYKoy6T4apW/0";

/// The non-empty, trimmed items of a comma-separated setting.
fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn invalid(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_string(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(env: &[(&str, &str)], file: Option<&str>) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("nexum.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).expect("write");
        }
        Config::load(file.map(|_| path.as_path()), |k| env.get(k).cloned())
    }

    #[test]
    fn defaults_then_file_then_env() {
        let c = load(&[], None).expect("defaults");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(c.database_url.starts_with("sqlite:") && c.database_url.ends_with("nexum.db"));
        let c = load(&[], Some("listen = \"127.0.0.1:9000\"\nmax_memory_mb = 64")).expect("file");
        assert_eq!((c.listen.port(), c.max_memory_mb), (9000, 64));
        let c = load(
            &[("NEXUM_LISTEN", "127.0.0.1:9100")],
            Some("listen = \"127.0.0.1:9000\""),
        )
        .expect("env");
        assert_eq!(c.listen.port(), 9100);
    }

    #[test]
    fn errors_name_the_setting() {
        let e = load(&[("NEXUM_LISTEN", "nowhere")], None).expect_err("bad listen");
        assert!(e.to_string().starts_with("NEXUM_LISTEN:"), "{e}");
        let e = load(&[("NEXUM_MAX_MEMORY_MB", "0")], None).expect_err("range");
        assert!(e.to_string().starts_with("NEXUM_MAX_MEMORY_MB:"), "{e}");
        let e = load(&[], Some("lissen = \"x\"")).expect_err("unknown key");
        assert!(e.to_string().contains("lissen"), "{e}");
        let e = load(&[("NEXUM_ALLOW_RANGES", "127.0.0.0/8,banana")], None).expect_err("cidr");
        assert!(e.to_string().contains("banana"), "{e}");
        let e = load(&[("DATABASE_URL", "mysql://x")], None).expect_err("db");
        assert!(e.to_string().starts_with("DATABASE_URL"), "{e}");
    }
}
