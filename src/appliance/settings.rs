//! What the daemon runs with: the configuration file, with the command line
//! laid over it.
//!
//! The packaged service (`--config /etc/sensor/sensor.toml`) and a quick
//! start from flags alone must run the same code, and a bad value must stop
//! the daemon before the first port is bound or the first probe is sent. So
//! the flags arrive here as plain data ([`Overrides`], no clap), [`merge`]
//! applies them to a parsed [`Config`] without any I/O (unit-tested), and
//! [`load`] only adds which file to read and the machine's identity. The proxy's flags are one struct
//! ([`ProxyOverrides`]) shared by `sensor run` and `sensor proxy`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::appliance::config::{self, Config, ConfigError, LogFormat};
use crate::appliance::identity;
use crate::serve::proxy::{Allowlist, ProxyConfig};

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A command-line value that cannot be used.
    #[error("{flag}: {problem}")]
    Flag { flag: &'static str, problem: String },
}

fn flag(flag: &'static str, problem: impl std::fmt::Display) -> SettingsError {
    SettingsError::Flag {
        flag,
        problem: problem.to_string(),
    }
}

/// The command line of `sensor run`, as data.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    /// Explicit profile files (else every `*.toml` of the profiles directory).
    pub profiles: Vec<PathBuf>,
    pub profiles_dir: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// Added to the configuration's.
    pub ca_bundles: Vec<PathBuf>,
    pub gone_after: Option<u32>,
    pub grace: Option<Duration>,
    /// `ADDR:PORT` of the service port.
    pub listen: Option<String>,
    pub proxy: ProxyOverrides,
    pub upstream: Option<String>,
    /// Further `--upstream` URLs: the fleet's other centrals (failover).
    pub fallback_upstreams: Vec<String>,
    pub token: Option<String>,
    pub accept_tokens: Vec<String>,
    /// `--admin-token`: administrator tokens of the fleet API (added to the file's).
    pub admin_tokens: Vec<String>,
    /// `--enroll-token`: exchanged for a credential at the first start.
    pub enroll_token: Option<String>,
    /// `--name`: the sensor's name (`[sensor] name`), as enrolled.
    pub name: Option<String>,
    /// `--offline-after`: a central's silence before a sensor is offline.
    pub offline_after: Option<Duration>,
    pub sensor_id: Option<String>,
    /// `text` or `json`.
    pub log_format: Option<String>,
}

/// The proxy's flags, the same for `sensor run` and `sensor proxy`.
#[derive(Clone, Debug, Default)]
pub struct ProxyOverrides {
    /// Added to the configuration's.
    pub allow: Vec<String>,
    pub auth_token: Option<String>,
    pub forward_http: bool,
    /// Added to the configuration's.
    pub resolve: Vec<String>,
    pub idle_timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub max_tunnels: Option<usize>,
    pub max_tunnels_per_agent: Option<usize>,
    /// The service certificate and key (both or neither).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl ProxyOverrides {
    /// Lays the flags over `c.proxy` (and the service certificate). Flag
    /// values are checked here, so an error names the flag; the merged whole
    /// is checked by [`crate::appliance::proxy::config`].
    pub fn apply(&self, c: &mut Config) -> Result<(), SettingsError> {
        Allowlist::parse(&self.allow).map_err(|e| flag("--allow", e))?;
        let mut scratch = ProxyConfig::default();
        for r in &self.resolve {
            scratch.add_resolve(r).map_err(|e| flag("--resolve", e))?;
        }
        let p = &mut c.proxy;
        p.allow.extend(self.allow.iter().cloned());
        p.resolve.extend(self.resolve.iter().cloned());
        if let Some(t) = &self.auth_token {
            p.auth_token = Some(t.clone());
            p.auth_token_file = None;
        }
        p.forward_plain_http |= self.forward_http;
        if let Some(t) = self.idle_timeout {
            p.idle_timeout = t;
        }
        if let Some(t) = self.connect_timeout {
            p.connect_timeout = t;
        }
        if let Some(n) = self.max_tunnels {
            p.max_tunnels = n;
        }
        if let Some(n) = self.max_tunnels_per_agent {
            p.max_tunnels_per_agent = n;
        }
        if self.tls_cert.is_some() {
            c.service.tls_cert = self.tls_cert.clone();
            c.service.tls_key = self.tls_key.clone();
        }
        Ok(())
    }
}

/// The configuration with the flags applied, and where it came from.
#[derive(Clone, Debug)]
pub struct Settings {
    pub config: Config,
    pub config_file: Option<PathBuf>,
    /// Explicit `--profile` files (else the profiles directory).
    pub profile_files: Vec<PathBuf>,
    pub sensor_id: String,
    /// Every administrator token: `--admin-token` flags and the lines of
    /// `[service] admin_token_file`, read and checked at load. The service
    /// port opens the fleet API (docs/fleet.md) to these bearer tokens only.
    pub admin_tokens: Vec<String>,
    /// More `--upstream` URLs after the first: other central processes of
    /// the same fleet, tried in order when the first does not answer.
    pub fallback_urls: Vec<String>,
    /// The CA bundles `--ca-bundle` added (the rest are the file's), so a
    /// problem with one names where it came from.
    pub ca_bundle_flags: Vec<PathBuf>,
}

/// Which configuration file to read. A bare `sensor run` is the installed
/// appliance and reads the default file when it exists; a run from
/// `--profile` flags is self-contained and reads none unless told.
pub fn config_file(o: &Overrides, exists: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    match &o.config {
        Some(p) => Some(p.clone()),
        None if o.profiles.is_empty() => {
            let default = PathBuf::from(config::DEFAULT_PATH);
            exists(&default).then_some(default)
        }
        None => None,
    }
}

/// Reads the configuration (if any) and applies the flags over it.
pub fn load(o: &Overrides) -> Result<Settings, SettingsError> {
    let config_file = config_file(o, Path::exists);
    let base = match &config_file {
        Some(p) => config::load(p)?,
        None => Config::default(),
    };
    let config = merge(base, o)?;
    let sensor_id = config.sensor.id.clone().unwrap_or_else(identity::derived_sensor_id);
    let admin_tokens = admin_tokens(&config)?;
    Ok(Settings {
        config,
        config_file,
        profile_files: o.profiles.clone(),
        sensor_id,
        admin_tokens,
        fallback_urls: o.fallback_upstreams.clone(),
        ca_bundle_flags: o.ca_bundles.clone(),
    })
}

/// The administrator tokens of `c`: the flags' and the file's (read now).
pub fn admin_tokens(c: &Config) -> Result<Vec<String>, SettingsError> {
    let mut tokens = c.service.admin_tokens.clone();
    if let Some(f) = &c.service.admin_token_file {
        tokens.extend(config::read_token_lines(f, "service.admin_token_file")?);
    }
    tokens.sort();
    tokens.dedup();
    Ok(tokens)
}

/// `c` with the flags applied. Pure.
pub fn merge(mut c: Config, o: &Overrides) -> Result<Config, SettingsError> {
    if let Some(d) = &o.profiles_dir {
        c.sensor.profiles_dir = d.clone();
    }
    if let Some(d) = &o.state_dir {
        c.sensor.state_dir = d.clone();
    }
    c.sensor.ca_bundles.extend(o.ca_bundles.iter().cloned());
    if let Some(n) = o.gone_after {
        if n == 0 {
            return Err(flag("--gone-after", "give 1 or more complete runs"));
        }
        c.sensor.gone_after = n;
    }
    if let Some(g) = o.grace {
        c.sensor.grace = g;
    }
    if let Some(l) = &o.listen {
        c.service.listen = Some(
            l.parse()
                .map_err(|_| flag("--listen", format!("`{l}`: write ADDR:PORT, e.g. 127.0.0.1:48999")))?,
        );
    }
    o.proxy.apply(&mut c)?;
    for url in &o.fallback_upstreams {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(flag("--upstream", format!("`{url}`: write an https:// URL")));
        }
    }
    if let Some(url) = &o.upstream {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(flag("--upstream", format!("`{url}`: write an https:// URL")));
        }
        let up = c.upstream.get_or_insert_with(|| config::Upstream {
            url: url.clone(),
            token: None,
            token_file: None,
            ca_bundle: None,
            client_cert: None,
            client_key: None,
            snapshot_every: Duration::from_secs(6 * 3600),
            outbox_max_records: None,
            outbox_max_bytes: None,
        });
        up.url = url.clone();
    }
    if let Some(t) = &o.token {
        let Some(up) = c.upstream.as_mut() else {
            return Err(flag(
                "--token",
                "give --upstream URL too (or [upstream] url in the config)",
            ));
        };
        up.token = Some(t.clone());
        up.token_file = None;
    }
    for (i, t) in o.accept_tokens.iter().enumerate() {
        if t.len() < 16 {
            return Err(flag("--accept-token", "use a token of 16 characters or more"));
        }
        // Flag tokens are not tied to one sensor id: the report names its sensor.
        c.intake.tokens.insert(format!("*{i}"), t.clone());
    }
    for t in &o.admin_tokens {
        if t.len() < config::MIN_TOKEN_LEN {
            return Err(flag("--admin-token", "use a token of 16 characters or more"));
        }
        if o.accept_tokens.contains(t) {
            return Err(flag(
                "--admin-token",
                "the same token is given with --accept-token: an administrator token must not be a report token",
            ));
        }
        c.service.admin_tokens.push(t.clone());
    }
    if let Some(f) = &o.log_format {
        c.log.format = match f.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(flag("--log-format", format!("`{other}`: use text or json"))),
        };
    }
    if let Some(id) = &o.sensor_id {
        c.sensor.id = Some(id.clone());
    }
    if let Some(n) = &o.name {
        c.sensor.name = Some(n.clone());
    }
    if let Some(t) = &o.enroll_token {
        if c.upstream.is_none() {
            return Err(flag(
                "--enroll-token",
                "give --upstream URL too (or [upstream] url in the config)",
            ));
        }
        c.fleet.enroll_token = Some(t.clone());
    }
    if let Some(d) = o.offline_after {
        if d.is_zero() {
            return Err(flag("--offline-after", "give 1 second or more"));
        }
        c.fleet.offline_after = d;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Config {
        config::parse(
            "[sensor]\nstate_dir = \"/tmp/s\"\ngone_after = 5\n\n[proxy]\nallow = [\"a.example:443\"]\n\
             idle_timeout = \"200s\"\n\n[upstream]\nurl = \"https://up.example\"\ntoken_file = \"/etc/t\"\n\
             snapshot_every = \"1h\"\n",
            "sensor.toml",
        )
        .unwrap()
    }

    #[test]
    fn flags_override_the_file_and_lists_add_to_it() {
        let o = Overrides {
            state_dir: Some("/tmp/other".into()),
            grace: Some(Duration::from_secs(7)),
            listen: Some("127.0.0.1:0".into()),
            token: Some("t0ken".into()),
            proxy: ProxyOverrides {
                allow: vec!["b.example:443".into()],
                auth_token: Some("agents".into()),
                max_tunnels: Some(9),
                ..ProxyOverrides::default()
            },
            ..Overrides::default()
        };
        let c = merge(file(), &o).unwrap();
        assert_eq!(c.sensor.state_dir, PathBuf::from("/tmp/other"));
        assert_eq!(c.sensor.gone_after, 5, "not given: the file's");
        assert_eq!(c.sensor.grace, Duration::from_secs(7));
        assert_eq!(c.service.listen, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(c.proxy.allow, ["a.example:443", "b.example:443"]);
        assert_eq!(c.proxy.auth_token.as_deref(), Some("agents"));
        assert_eq!(c.proxy.idle_timeout, Duration::from_secs(200));
        assert_eq!(c.proxy.max_tunnels, 9);
        let up = c.upstream.unwrap();
        assert_eq!(up.token.as_deref(), Some("t0ken"));
        assert_eq!(up.token_file, None, "a flag token replaces the file");
        assert_eq!(up.snapshot_every, Duration::from_secs(3600));
    }

    #[test]
    fn an_upstream_from_flags_alone_gets_the_defaults() {
        let o = Overrides {
            upstream: Some("http://127.0.0.1:9".into()),
            token: Some("t".into()),
            ..Overrides::default()
        };
        let up = merge(Config::default(), &o).unwrap().upstream.unwrap();
        assert_eq!(up.url, "http://127.0.0.1:9");
        assert_eq!(up.snapshot_every, Duration::from_secs(6 * 3600));
    }

    #[test]
    fn rejects_flags_that_cannot_be_used_naming_the_flag() {
        let cases: [(Overrides, &str); 9] = [
            (
                Overrides {
                    admin_tokens: vec!["short".into()],
                    ..Overrides::default()
                },
                "--admin-token",
            ),
            (
                Overrides {
                    admin_tokens: vec!["0123456789abcdef".into()],
                    accept_tokens: vec!["0123456789abcdef".into()],
                    ..Overrides::default()
                },
                "--admin-token",
            ),
            (
                Overrides {
                    gone_after: Some(0),
                    ..Overrides::default()
                },
                "--gone-after",
            ),
            (
                Overrides {
                    listen: Some("nowhere".into()),
                    ..Overrides::default()
                },
                "--listen",
            ),
            (
                Overrides {
                    token: Some("t".into()),
                    ..Overrides::default()
                },
                "--token",
            ),
            (
                Overrides {
                    upstream: Some("ftp://x".into()),
                    ..Overrides::default()
                },
                "--upstream",
            ),
            (
                Overrides {
                    accept_tokens: vec!["short".into()],
                    ..Overrides::default()
                },
                "--accept-token",
            ),
            (
                Overrides {
                    proxy: ProxyOverrides {
                        allow: vec!["no-port.example".into()],
                        ..ProxyOverrides::default()
                    },
                    ..Overrides::default()
                },
                "--allow",
            ),
            (
                Overrides {
                    proxy: ProxyOverrides {
                        resolve: vec!["a.example".into()],
                        ..ProxyOverrides::default()
                    },
                    ..Overrides::default()
                },
                "--resolve",
            ),
        ];
        for (o, name) in cases {
            let e = merge(Config::default(), &o).unwrap_err().to_string();
            assert!(e.starts_with(name), "{name}: {e}");
        }
    }

    #[test]
    fn admin_tokens_come_from_flags_and_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("admin.tokens");
        std::fs::write(&f, "filetoken-0123456789\nflagtoken-0123456789\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let cfg = dir.path().join("sensor.toml");
        std::fs::write(
            &cfg,
            format!("[service]\nadmin_token_file = {:?}\n", f.display().to_string()),
        )
        .unwrap();
        let o = Overrides {
            config: Some(cfg.clone()),
            admin_tokens: vec!["flagtoken-0123456789".into()],
            accept_tokens: vec!["reporttoken-0123456789".into()],
            ..Overrides::default()
        };
        let s = load(&o).unwrap();
        assert_eq!(s.admin_tokens, ["filetoken-0123456789", "flagtoken-0123456789"]);
        assert!(
            s.config.intake.tokens.values().any(|t| t == "reporttoken-0123456789"),
            "--accept-token stays a report token"
        );
        assert!(!s.admin_tokens.contains(&"reporttoken-0123456789".to_string()));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o604)).unwrap();
        let e = load(&o).unwrap_err().to_string();
        assert!(e.contains("service.admin_token_file"), "{e}");
    }

    #[test]
    fn the_default_file_is_read_only_by_a_bare_run() {
        let yes = |_: &Path| true;
        assert_eq!(
            config_file(&Overrides::default(), yes),
            Some(PathBuf::from(config::DEFAULT_PATH))
        );
        assert_eq!(config_file(&Overrides::default(), |_: &Path| false), None);
        let with_profile = Overrides {
            profiles: vec!["p.toml".into()],
            ..Overrides::default()
        };
        assert_eq!(config_file(&with_profile, yes), None);
        let told = Overrides {
            config: Some("/dev/null".into()),
            ..with_profile
        };
        assert_eq!(config_file(&told, yes), Some(PathBuf::from("/dev/null")));
    }
}
