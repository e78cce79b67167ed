//! The appliance's configuration file (`/etc/sensor/sensor.toml`).
//!
//! Like scan profiles, it is read strictly: an unknown key, a bad address or
//! a duration without a unit is an error naming the file, the line, the
//! field and the fix, and the daemon refuses to start (or keeps its previous
//! configuration on reload) rather than run something half-understood.
//! Every section is optional so that a config of two lines works, and the
//! command-line flags of `sensor run` override what the file says.
//! Parsing is pure (text in, [`Config`] out); secrets named by `*_file`
//! keys are read by [`read_secret`] when the daemon starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::appliance::profile::ProfileError as ConfigError;
use crate::appliance::profile::{line_at, line_of_key, parse_duration, toml_error};
use crate::serve::auth::Access;

/// Where the packaged sensor looks for its configuration.
pub const DEFAULT_PATH: &str = "/etc/sensor/sensor.toml";

/// A validated configuration. Defaults are the packaged appliance's.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub sensor: Sensor,
    pub log: Log,
    pub service: Service,
    pub upstream: Option<Upstream>,
    pub proxy: Proxy,
    pub intake: Intake,
    pub inventory: InventoryStore,
    /// `[alerts]`, `[[alerts.channel]]`, `[[alerts.rule]]`: see docs/alerts.md.
    pub alerts: crate::alert::config::AlertsConfig,
    /// `[console]`: the web console on the service port (docs/console.md).
    pub console: ConsoleSettings,
    /// The fleet, both sides: `[fleet]` (a central's) and `[upstream]
    /// enroll_token` / `poll_every` (a member's). docs/fleet.md.
    pub fleet: Fleet,
}

/// `[console]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsoleSettings {
    /// On by default wherever the service port is on.
    pub enabled: bool,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings { enabled: true }
    }
}

/// The fleet's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Fleet {
    /// Central: a sensor silent for longer is offline.
    pub offline_after: Duration,
    /// Central: how long an enrollment token can be redeemed.
    pub enrollment_ttl: Duration,
    /// Member: the one-time token exchanged for a credential at the first start.
    pub enroll_token: Option<String>,
    /// Member: how often assignments are fetched and a heartbeat is sent.
    pub poll_every: Duration,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet {
            offline_after: Duration::from_secs(90),
            enrollment_ttl: Duration::from_secs(24 * 3600),
            enroll_token: None,
            poll_every: Duration::from_secs(30),
        }
    }
}

/// Where the merged inventory of a central sensor lives.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct InventoryStore {
    /// `postgres://…`: reports from other sensors go there (and the
    /// endpoints API reads there); absent: the embedded SQLite store.
    pub url: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sensor {
    /// `None`: derived from the machine id when the daemon starts.
    pub id: Option<String>,
    pub name: Option<String>,
    pub state_dir: PathBuf,
    pub profiles_dir: PathBuf,
    pub ca_bundles: Vec<PathBuf>,
    pub gone_after: u32,
    pub grace: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Log {
    pub format: LogFormat,
    /// A tracing filter (`info`, `netsensor=debug,info`).
    pub level: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// `None`: no listener (no proxy, intake, health or metrics).
    pub listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Administrator tokens given on the command line (`--admin-token`).
    pub admin_tokens: Vec<String>,
    /// A file of administrator tokens, one per line (`#` comments), not
    /// readable by others: the fleet API's (docs/fleet.md) bearer tokens.
    pub admin_token_file: Option<PathBuf>,
    /// Who may read `GET /api/v1/status` (default: a `Read` token).
    pub status_access: Access,
    /// Who may read `GET /metrics` (default: loopback, or a `Read` token).
    pub metrics_access: Access,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Upstream {
    pub url: String,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub ca_bundle: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// How often a full snapshot of the inventory is sent.
    pub snapshot_every: Duration,
    /// The outbox cap (records, bytes); `None` keeps the defaults
    /// (100,000 records, 1 GiB). What happens when it is reached: docs/reporting.md.
    pub outbox_max_records: Option<u64>,
    pub outbox_max_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Proxy {
    /// Allowed destinations (`HOST:PORT`, `*.DOMAIN:PORT`, `IP:PORT`); empty: no tunnels.
    pub allow: Vec<String>,
    pub auth_token: Option<String>,
    pub auth_token_file: Option<PathBuf>,
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_tunnels: usize,
    pub max_tunnels_per_agent: usize,
    /// `NAME=ADDR` answers before DNS.
    pub resolve: Vec<String>,
    /// Forward plain-HTTP absolute-form requests to allowlisted destinations.
    pub forward_plain_http: bool,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Intake {
    /// Sensor id → the bearer token it presents.
    pub tokens: BTreeMap<String, String>,
    /// A TOML file of more `sensor-id = "token"` lines.
    pub tokens_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sensor: Sensor {
                id: None,
                name: None,
                state_dir: "/var/lib/sensor".into(),
                profiles_dir: "/etc/sensor/profiles.d".into(),
                ca_bundles: Vec::new(),
                gone_after: 3,
                grace: Duration::from_secs(30),
            },
            log: Log {
                format: LogFormat::Text,
                level: "info".into(),
            },
            service: Service {
                listen: None,
                tls_cert: None,
                tls_key: None,
                admin_tokens: Vec::new(),
                admin_token_file: None,
                status_access: Access::Token,
                metrics_access: Access::Loopback,
            },
            upstream: None,
            proxy: Proxy {
                allow: Vec::new(),
                auth_token: None,
                auth_token_file: None,
                idle_timeout: Duration::from_secs(300),
                connect_timeout: Duration::from_secs(10),
                max_tunnels: 1024,
                max_tunnels_per_agent: 256,
                resolve: Vec::new(),
                forward_plain_http: false,
            },
            intake: Intake::default(),
            inventory: InventoryStore::default(),
            alerts: crate::alert::config::AlertsConfig::default(),
            console: ConsoleSettings::default(),
            fleet: Fleet::default(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    sensor: RawSensor,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    service: RawService,
    upstream: Option<RawUpstream>,
    #[serde(default)]
    proxy: RawProxy,
    #[serde(default)]
    intake: RawIntake,
    #[serde(default)]
    inventory: RawInventory,
    #[serde(default)]
    alerts: crate::alert::config::RawAlerts,
    #[serde(default)]
    console: RawConsole,
    #[serde(default)]
    fleet: RawFleet,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConsole {
    enabled: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    offline_after: Option<String>,
    enrollment_ttl: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSensor {
    id: Option<String>,
    name: Option<String>,
    state_dir: Option<PathBuf>,
    profiles_dir: Option<PathBuf>,
    #[serde(default)]
    ca_bundles: Vec<PathBuf>,
    gone_after: Option<u32>,
    grace: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<String>,
    level: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawService {
    listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    admin_token_file: Option<PathBuf>,
    status_access: Option<Access>,
    metrics_access: Option<Access>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    url: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    ca_bundle: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    snapshot_every: Option<String>,
    outbox_max_records: Option<u64>,
    outbox_max_bytes: Option<u64>,
    enroll_token: Option<String>,
    poll_every: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawProxy {
    #[serde(default)]
    allow: Vec<String>,
    auth_token: Option<String>,
    auth_token_file: Option<PathBuf>,
    idle_timeout: Option<String>,
    connect_timeout: Option<String>,
    max_tunnels: Option<usize>,
    max_tunnels_per_agent: Option<usize>,
    #[serde(default)]
    resolve: Vec<String>,
    #[serde(default)]
    forward_plain_http: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIntake {
    #[serde(default)]
    tokens: BTreeMap<String, String>,
    tokens_file: Option<PathBuf>,
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: None,
        field: None,
        message: format!("cannot read the configuration: {e}"),
        fix: Some(format!(
            "create it (see packaging/sensor.toml) or pass --config with another path; {DEFAULT_PATH} is the default"
        )),
    })?;
    parse(&text, &file)
}

/// Validates a configuration's text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let mut ce = toml_error(text, file, &e);
        if ce.message.contains("unknown field") {
            ce.fix = Some("remove it or correct its spelling; docs/configuration.md lists every key".to_string());
        }
        ce
    })?;
    let err = |field: &str, message: String, fix: &str| ConfigError {
        file: file.into(),
        line: line_of_key(text, field.rsplit('.').next().unwrap_or(field)),
        field: Some(field.into()),
        message,
        fix: Some(fix.into()),
    };
    let duration = |field: &str, v: &Option<String>, default: Duration| -> Result<Duration, ConfigError> {
        match v {
            None => Ok(default),
            Some(s) => parse_duration(s).map_err(|m| err(field, m, "write a number and a unit: `30s`, `5m`, `6h`")),
        }
    };
    let mut c = Config::default();

    let s = raw.sensor;
    if let Some(id) = &s.id
        && (id.is_empty() || id.len() > 64 || !id.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)))
    {
        return Err(err(
            "sensor.id",
            format!("`{id}` is not a valid sensor id"),
            "use 1 to 64 letters, digits, `-`, `_` or `.`",
        ));
    }
    c.sensor.id = s.id;
    c.sensor.name = s.name;
    if let Some(d) = s.state_dir {
        c.sensor.state_dir = d;
    }
    if let Some(d) = s.profiles_dir {
        c.sensor.profiles_dir = d;
    }
    c.sensor.ca_bundles = s.ca_bundles;
    if let Some(n) = s.gone_after {
        if n == 0 {
            return Err(err(
                "sensor.gone_after",
                "is 0".into(),
                "give the number of complete runs (1 or more) without an endpoint before it is gone",
            ));
        }
        c.sensor.gone_after = n;
    }
    c.sensor.grace = duration("sensor.grace", &s.grace, c.sensor.grace)?;

    if let Some(f) = raw.log.format {
        c.log.format = match f.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(err(
                    "log.format",
                    format!("`{other}` is not a log format"),
                    "use \"text\" or \"json\"",
                ));
            }
        };
    }
    if let Some(l) = raw.log.level {
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&l) {
            return Err(err(
                "log.level",
                format!("`{l}` is not a log filter: {e}"),
                "use error, warn, info, debug or trace, or per module: \"netsensor=debug,info\"",
            ));
        }
        c.log.level = l;
    }

    if let Some(l) = raw.service.listen {
        c.service.listen = Some(l.parse().map_err(|_| {
            err(
                "service.listen",
                format!("`{l}` is not ADDR:PORT"),
                "write e.g. \"127.0.0.1:48999\" or \"[::]:48999\"",
            )
        })?);
    }
    if raw.service.tls_cert.is_some() != raw.service.tls_key.is_some() {
        return Err(err(
            "service.tls_cert",
            "tls_cert and tls_key go together".into(),
            "set both (PEM chain and its private key) or neither",
        ));
    }
    c.service.tls_cert = raw.service.tls_cert;
    c.service.tls_key = raw.service.tls_key;
    c.service.admin_token_file = raw.service.admin_token_file;
    if let Some(a) = raw.service.status_access {
        c.service.status_access = a;
    }
    if let Some(a) = raw.service.metrics_access {
        c.service.metrics_access = a;
    }

    if let Some(u) = raw.upstream {
        // An [upstream] section whose keys are all commented out means "no upstream".
        if let Some(url) = u.url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(err(
                    "upstream.url",
                    format!("`{url}` is not an http(s) URL"),
                    "write e.g. \"https://central.example:48999\"",
                ));
            }
            if u.token.is_some() && u.token_file.is_some() {
                return Err(err(
                    "upstream.token",
                    "both token and token_file are set".into(),
                    "keep one (token_file keeps the secret out of this file)",
                ));
            }
            if u.client_cert.is_some() != u.client_key.is_some() {
                return Err(err(
                    "upstream.client_cert",
                    "client_cert and client_key go together".into(),
                    "set both for mutual TLS, or neither",
                ));
            }
            c.upstream = Some(Upstream {
                url,
                token: u.token,
                token_file: u.token_file,
                ca_bundle: u.ca_bundle,
                client_cert: u.client_cert,
                client_key: u.client_key,
                snapshot_every: duration(
                    "upstream.snapshot_every",
                    &u.snapshot_every,
                    Duration::from_secs(6 * 3600),
                )?,
                outbox_max_records: u.outbox_max_records,
                outbox_max_bytes: u.outbox_max_bytes,
            });
            c.fleet.enroll_token = u.enroll_token;
            c.fleet.poll_every = duration("upstream.poll_every", &u.poll_every, c.fleet.poll_every)?;
            if u.outbox_max_records == Some(0) {
                return Err(err(
                    "upstream.outbox_max_records",
                    "is 0".into(),
                    "give 1 or more records",
                ));
            }
            if u.outbox_max_bytes.is_some_and(|b| b < 4096) {
                return Err(err(
                    "upstream.outbox_max_bytes",
                    "is under 4096".into(),
                    "give 4096 bytes or more",
                ));
            }
        } else if u.token.is_some() || u.token_file.is_some() || u.ca_bundle.is_some() {
            return Err(err(
                "upstream",
                "has settings but no url".into(),
                "add url = \"https://…\" or comment the section out",
            ));
        }
    }

    let p = raw.proxy;
    if let Err(e) = crate::serve::proxy::Allowlist::parse(&p.allow) {
        return Err(err(
            "proxy.allow",
            e.to_string(),
            "list HOST:PORT, *.DOMAIN:PORT or IP:PORT entries",
        ));
    }
    if p.auth_token.is_some() && p.auth_token_file.is_some() {
        return Err(err(
            "proxy.auth_token",
            "both auth_token and auth_token_file are set".into(),
            "keep one",
        ));
    }
    c.proxy.allow = p.allow;
    c.proxy.auth_token = p.auth_token;
    c.proxy.auth_token_file = p.auth_token_file;
    c.proxy.idle_timeout = duration("proxy.idle_timeout", &p.idle_timeout, c.proxy.idle_timeout)?;
    c.proxy.connect_timeout = duration("proxy.connect_timeout", &p.connect_timeout, c.proxy.connect_timeout)?;
    for (field, v) in [
        ("proxy.max_tunnels", &p.max_tunnels),
        ("proxy.max_tunnels_per_agent", &p.max_tunnels_per_agent),
    ] {
        if *v == Some(0) {
            return Err(err(field, "is 0".into(), "give a limit of 1 or more"));
        }
    }
    c.proxy.max_tunnels = p.max_tunnels.unwrap_or(c.proxy.max_tunnels);
    c.proxy.max_tunnels_per_agent = p.max_tunnels_per_agent.unwrap_or(c.proxy.max_tunnels_per_agent);
    let mut probe = crate::serve::proxy::ProxyConfig::default();
    for r in &p.resolve {
        probe
            .add_resolve(r)
            .map_err(|e| err("proxy.resolve", e.to_string(), "write NAME=ADDR"))?;
    }
    c.proxy.resolve = p.resolve;
    c.proxy.forward_plain_http = p.forward_plain_http;

    for (sensor, token) in &raw.intake.tokens {
        if !crate::report::intake::is_sensor_id(sensor) {
            return Err(err(
                "intake.tokens",
                format!("`{sensor}` is not a sensor id: no report can carry it, so its token would never be accepted"),
                "name the sensor by its id: 1 to 64 letters, digits, `-`, `_` or `.`",
            ));
        }
        if token.len() < 16 {
            return Err(err(
                "intake.tokens",
                format!("the token of `{sensor}` is shorter than 16 characters"),
                "use a long random token, e.g. `openssl rand -hex 32`",
            ));
        }
    }
    if let Some(url) = raw.inventory.url {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(err(
                "inventory.url",
                format!("`{}` is not a PostgreSQL URL", crate::store::central::redact(&url)),
                "write postgres://USER:PASSWORD@HOST:PORT/DATABASE, or remove it to keep the embedded SQLite store",
            ));
        }
        c.inventory.url = Some(url);
    }
    c.console.enabled = raw.console.enabled.unwrap_or(true);
    c.fleet.offline_after = duration("fleet.offline_after", &raw.fleet.offline_after, c.fleet.offline_after)?;
    c.fleet.enrollment_ttl = duration(
        "fleet.enrollment_ttl",
        &raw.fleet.enrollment_ttl,
        c.fleet.enrollment_ttl,
    )?;
    c.intake.tokens = raw.intake.tokens;
    c.intake.tokens_file = raw.intake.tokens_file;
    c.alerts = crate::alert::config::validate(raw.alerts, parse_duration).map_err(|e| ConfigError {
        file: file.into(),
        line: e.at.map(|at| line_at(text, at)),
        field: Some(e.field),
        message: e.message,
        fix: Some(e.fix),
    })?;
    Ok(c)
}

/// Reads a secret from a file (trimmed); the error names the key it came from.
pub fn read_secret(path: &Path, field: &str) -> Result<String, ConfigError> {
    let e = |message: String| ConfigError {
        file: path.display().to_string(),
        line: None,
        field: Some(field.into()),
        message,
        fix: Some("create the file with the secret on one line, readable by the sensor user".into()),
    };
    let text = std::fs::read_to_string(path).map_err(|x| e(format!("cannot read: {x}")))?;
    let secret = text.trim().to_string();
    if secret.is_empty() {
        return Err(e("is empty".into()));
    }
    Ok(secret)
}

/// The shortest token accepted (administrator and intake tokens).
pub const MIN_TOKEN_LEN: usize = 16;

/// Reads a file of tokens, one per line (blank lines and `#` comments
/// skipped). The file holds secrets that open the service port's
/// administration, so it must not be readable or writable by others
/// (0600 or 0640), and every token is 16 characters or more.
pub fn read_token_lines(path: &Path, field: &str) -> Result<Vec<String>, ConfigError> {
    let e = |message: String, fix: &str| ConfigError {
        file: path.display().to_string(),
        line: None,
        field: Some(field.into()),
        message,
        fix: Some(fix.into()),
    };
    let meta = std::fs::metadata(path).map_err(|x| {
        e(
            format!("cannot read: {x}"),
            "create the file with one token per line, readable by the sensor user only",
        )
    })?;
    check_private(&meta).map_err(|m| e(m, "chmod 600 (or 640 with the sensor's group) the file"))?;
    let text = std::fs::read_to_string(path)
        .map_err(|x| e(format!("cannot read: {x}"), "make it readable by the sensor user"))?;
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.len() < MIN_TOKEN_LEN || t.contains(char::is_whitespace) {
            return Err(ConfigError {
                line: Some(i + 1),
                ..e(
                    format!(
                        "line {} is not a token of {MIN_TOKEN_LEN} characters or more without spaces",
                        i + 1
                    ),
                    "use long random tokens, e.g. `openssl rand -hex 32`, one per line",
                )
            });
        }
        tokens.push(t.to_string());
    }
    if tokens.is_empty() {
        return Err(e("holds no token".into(), "write one token per line"));
    }
    Ok(tokens)
}

/// A secret's file must not be open to others (the `o` bits of its mode).
#[cfg(unix)]
fn check_private(meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o007 != 0 {
        return Err(format!("is open to other users (mode {mode:03o})"));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

/// Reads an intake tokens file: a TOML table of `sensor-id = "token"`.
pub fn read_tokens(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|x| ConfigError {
        file: file.clone(),
        line: None,
        field: Some("intake.tokens_file".into()),
        message: format!("cannot read: {x}"),
        fix: None,
    })?;
    let tokens: BTreeMap<String, String> = toml::from_str(&text).map_err(|x| ConfigError {
        file: file.clone(),
        line: x.span().map(|s| line_at(&text, s.start)),
        field: Some("intake.tokens_file".into()),
        message: x.message().to_string(),
        fix: Some("write one `sensor-id = \"token\"` per line".into()),
    })?;
    for (sensor, token) in &tokens {
        let problem = if !crate::report::intake::is_sensor_id(sensor) {
            Some(format!(
                "`{sensor}` is not a sensor id: its token would never be accepted"
            ))
        } else if token.len() < 16 {
            Some(format!("the token of `{sensor}` is shorter than 16 characters"))
        } else {
            None
        };
        if let Some(message) = problem {
            return Err(ConfigError {
                file,
                line: text
                    .lines()
                    .position(|l| l.trim_start().trim_start_matches('"').starts_with(sensor.as_str()))
                    .map(|i| i + 1),
                field: Some("intake.tokens_file".into()),
                message,
                fix: Some("one `sensor-id = \"token\"` per line: ids of 1-64 letters, digits, `-`, `_`, `.`; tokens of 16 characters or more".into()),
            });
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
[sensor]
id = "segment-a-01"
name = "Segment A"
state_dir = "/tmp/s"
profiles_dir = "/tmp/p"
ca_bundles = ["/etc/sensor/ca.d/corp.pem"]
gone_after = 2
grace = "45s"

[log]
format = "json"
level = "debug"

[service]
listen = "[::1]:48999"
tls_cert = "/etc/sensor/tls/service.pem"
tls_key = "/etc/sensor/tls/service.key"

[upstream]
url = "https://central.example:48999"
token_file = "/etc/sensor/upstream.token"
snapshot_every = "1h"
outbox_max_records = 5000

[proxy]
allow = ["acme.issuer.example:443", "*.issuer.example:443"]
idle_timeout = "10m"
resolve = ["acme.issuer.example=127.0.0.5"]

[intake]
tokens = { "segment-b" = "0123456789abcdef0123" }
"#;

    #[test]
    fn reads_every_section() {
        let c = parse(FULL, "sensor.toml").unwrap();
        assert_eq!(c.sensor.id.as_deref(), Some("segment-a-01"));
        assert_eq!(c.sensor.grace, Duration::from_secs(45));
        assert_eq!(c.sensor.gone_after, 2);
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.service.listen, Some("[::1]:48999".parse().unwrap()));
        let u = c.upstream.unwrap();
        assert_eq!(u.snapshot_every, Duration::from_secs(3600));
        assert_eq!((u.outbox_max_records, u.outbox_max_bytes), (Some(5000), None));
        assert_eq!(u.token_file.as_deref(), Some(Path::new("/etc/sensor/upstream.token")));
        assert_eq!(c.proxy.allow.len(), 2);
        assert_eq!(c.proxy.idle_timeout, Duration::from_secs(600));
        assert_eq!(c.intake.tokens["segment-b"], "0123456789abcdef0123");
    }

    #[test]
    fn an_empty_file_is_the_packaged_default() {
        assert_eq!(parse("", "sensor.toml").unwrap(), Config::default());
        // An [upstream] with everything commented out is no upstream.
        assert_eq!(parse("[upstream]\n", "x").unwrap().upstream, None);
    }

    #[test]
    fn every_mistake_names_file_line_field_and_fix() {
        let cases: &[(&str, &str, &str)] = &[
            ("[sensor]\nstate_dri = \"/x\"\n", "unknown field", ":2"),
            ("[sensr]\n", "unknown field", ":1"),
            ("[service]\nlisten = \"localhost\"\n", "`service.listen`", ":2"),
            ("[sensor]\ngrace = \"30\"\n", "`sensor.grace`", ":2"),
            ("[log]\nformat = \"xml\"\n", "`log.format`", ":2"),
            ("[service]\ntls_cert = \"/a\"\n", "`service.tls_cert`", ":2"),
            ("[upstream]\nurl = \"ftp://x\"\n", "`upstream.url`", ":2"),
            ("[upstream]\ntoken = \"t\"\n", "`upstream`", ""),
            ("[proxy]\nallow = [\"no-port\"]\n", "`proxy.allow`", ":2"),
            ("[proxy]\nmax_tunnels = 0\n", "`proxy.max_tunnels`", ":2"),
            ("[intake]\ntokens = { a = \"short\" }\n", "`intake.tokens`", ":2"),
            ("[sensor]\nid = \"has space\"\n", "`sensor.id`", ":2"),
            ("[inventory]\nurl = \"mysql://x\"\n", "`inventory.url`", ":2"),
            // Issue 17, defect 4: what the daemon refused, the check refuses too.
            ("[log]\nlevel = \"[[[[\"\n", "`log.level`", ":2"),
            (
                "[intake]\ntokens = { \"bad id\" = \"0123456789abcdef0123\" }\n",
                "`intake.tokens`: `bad id` is not a sensor id",
                ":2",
            ),
            ("[sensor]\ngrace = \"99999999999d\"\n", "`sensor.grace`", ":2"),
            ("[proxy]\nidle_timeout = \"400d\"\n", "longer than", ":2"),
            // Type errors name the field and the type it takes.
            (
                "[sensor]\ngone_after = \"3\"\n",
                "`sensor.gone_after`: is string \"3\", expected a whole number",
                ":2",
            ),
            ("[proxy]\nallow = \"a.example:443\"\n", "`proxy.allow`: is string", ":2"),
            (
                "[proxy]\nforward_plain_http = \"yes\"\n",
                "expected true or false",
                ":2",
            ),
            (
                "[upstream]\nurl = \"https://x\"\noutbox_max_records = 0\n",
                "`upstream.outbox_max_records`",
                ":3",
            ),
        ];
        for (text, expect, line) in cases {
            let e = parse(text, "sensor.toml").expect_err(text).to_string();
            assert!(e.starts_with(&format!("sensor.toml{line}")), "{text}: {e}");
            assert!(e.contains(expect), "{text}: {e}");
        }
    }

    #[test]
    fn the_packaged_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/sensor.toml");
        if path.exists() {
            let c = load(&path).unwrap();
            assert_eq!(c.service.listen, Some("127.0.0.1:48999".parse().unwrap()));
            assert!(c.proxy.allow.is_empty());
        }
    }

    #[test]
    fn secrets_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        std::fs::write(&p, "  s3cret\n").unwrap();
        assert_eq!(read_secret(&p, "upstream.token_file").unwrap(), "s3cret");
        std::fs::write(&p, "\n").unwrap();
        assert!(
            read_secret(&p, "upstream.token_file")
                .unwrap_err()
                .to_string()
                .contains("is empty")
        );
        std::fs::write(&p, "seg-a = \"0123456789abcdef\"\n").unwrap();
        assert_eq!(read_tokens(&p).unwrap()["seg-a"], "0123456789abcdef");
    }

    #[test]
    fn the_console_is_on_unless_turned_off() {
        assert!(parse("", "x").unwrap().console.enabled);
        assert!(!parse("[console]\nenabled = false\n", "x").unwrap().console.enabled);
        let e = parse("[console]\nenable = false\n", "x").unwrap_err().to_string();
        assert!(e.contains("enable"), "{e}");
    }

    #[test]
    fn admin_token_files_are_private_and_hold_long_tokens() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("admin");
        std::fs::write(&p, "# operators\n0123456789abcdef0123\n\n  fedcba9876543210fedc  \n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(
            read_token_lines(&p, "service.admin_token_file").unwrap(),
            ["0123456789abcdef0123", "fedcba9876543210fedc"]
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_token_lines(&p, "service.admin_token_file")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("service.admin_token_file") && e.contains("open to other users (mode 644)"),
            "{e}"
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&p, "short\n").unwrap();
        let e = read_token_lines(&p, "service.admin_token_file")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":1") && e.contains("16 characters"), "{e}");
        std::fs::write(&p, "# nothing\n").unwrap();
        assert!(
            read_token_lines(&p, "f")
                .unwrap_err()
                .to_string()
                .contains("holds no token")
        );
        assert!(read_token_lines(&dir.path().join("absent"), "f").is_err());
        let c = parse("[service]\nadmin_token_file = \"/etc/sensor/admin.tokens\"\n", "x").unwrap();
        assert_eq!(
            c.service.admin_token_file.as_deref(),
            Some(Path::new("/etc/sensor/admin.tokens"))
        );
    }
}
